"""What durably accepts as input, in one place: the limits, and the checks every surface uses.

The Python API (:class:`durably.App`, :class:`durably.Client`), the CLI and the HTTP and Dapr
routes all call these checks, so a value is refused the same way, with the same message, on
every path and on every backend, before anything is written. Nothing that cannot be read back
is ever stored:

* **Text** (workflow names, event names, dedup keys, state keys, list filters) is at most a
  stated length, holds no NUL character (PostgreSQL cannot store one) and no lone surrogate
  (``"\\ud800"``: not Unicode text, so it cannot be encoded as UTF-8 for a database or an HTTP
  answer).
* **Values** (arguments, step results, outputs, event payloads, published state) are refused by
  the serializer when their JSON holds a lone surrogate or nests deeper than :data:`MAX_DEPTH`.
* **Counts** (``limit``, ``from_step``) are whole numbers in range; typed ones (CLI flags,
  query parameters) are ASCII digits only, so ``"²"`` or Arabic-Indic digits are refused
  instead of being read as numbers.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from durably.errors import ConfigurationError, SerializationError
from durably.ids import MAX_ID_LENGTH

__all__ = [
    "DEPTH_ADVICE",
    "MAX_COUNT",
    "MAX_DEDUP_KEY_LENGTH",
    "MAX_DEPTH",
    "MAX_NAME_LENGTH",
    "MAX_REASON_LENGTH",
    "WRAPPER_DEPTH",
    "check_count",
    "check_dedup_key",
    "check_depth",
    "check_encoded",
    "check_epoch",
    "check_event",
    "check_event_name",
    "check_filters",
    "check_from_step",
    "check_name",
    "check_text",
    "loads",
    "parse_count",
    "readable",
    "too_deep",
]

MAX_DEPTH = 100
"""How deeply a stored JSON document may nest arrays and objects (durably's one-key tagged
objects such as ``{"$datetime": ...}`` count as a level; a workflow's arguments are stored in a
``{"args": [...], "kwargs": {...}}`` call, two levels, so an argument may nest 98). Decoding
with a type hint takes about three Python frames per level, so 100 levels stay under a third of
Python's default recursion limit (1000), with room for the caller's own stack; real data rarely
nests past 20 levels. One limit for every document means whatever was stored can be decoded and
encoded again (to show it) within the same limit."""

WRAPPER_DEPTH = 2
"""Levels a request body (or ``--input``) may add around the values it carries, on top of
:data:`MAX_DEPTH`, when it is checked before the values are encoded."""

MAX_NAME_LENGTH = 200
"""Longest workflow name, event name, published-state key or ``name=`` filter, in characters."""

MAX_DEDUP_KEY_LENGTH = 512
"""Longest event dedup key, in characters: with the workflow id it stays under PostgreSQL's
unique-index row limit (about 2,700 bytes) even at four UTF-8 bytes per character."""

MAX_REASON_LENGTH = 10_000
"""Longest free text given to a command (a terminate ``reason``), in characters."""

MAX_COUNT = 2**31 - 1
"""Largest count an input takes (a list ``limit``, a fork's ``from_step``): a 32-bit integer,
which both backends store and compare natively."""

_MAX_DIGITS = len(str(MAX_COUNT))
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def readable(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (for error messages and tracebacks,
    which are stored and shown but need not round-trip exactly)."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _flaw(value: str, *, nul: bool = True) -> str | None:
    """Why ``value`` cannot be stored as text (a NUL only if ``nul``), or None."""
    if nul and "\x00" in value:
        return "holds a NUL character (\\x00)"
    if not value.isascii():
        found = _SURROGATE.search(value)
        if found is not None:
            return f"holds a lone surrogate ({found.group()!r}), which is not valid Unicode text"
    return None


def _show(value: str) -> str:
    return repr(value[:60]) + ("..." if len(value) > 60 else "")


def check_text(value: object, what: str, *, max_length: int, allow_empty: bool = False) -> str:
    """``value`` if it is a string of at most ``max_length`` characters with no NUL and no lone
    surrogate (and not empty unless ``allow_empty``); else a :class:`ConfigurationError`."""
    if not isinstance(value, str) or not (value or allow_empty):
        kind = "a string" if allow_empty else "a non-empty string"
        raise ConfigurationError(f"{what} must be {kind}, got {repr(value)[:60]}")
    if len(value) > max_length:
        raise ConfigurationError(
            f"{what} is {len(value)} characters long, over the limit of {max_length}"
        )
    flaw = _flaw(value)
    if flaw is not None:
        raise ConfigurationError(f"{what} {_show(value)} {flaw}; use plain text")
    return value


def check_name(value: object, what: str) -> str:
    """A workflow name, state key or ``name=`` filter: :func:`check_text` with
    :data:`MAX_NAME_LENGTH`."""
    return check_text(value, what, max_length=MAX_NAME_LENGTH)


def check_event_name(name: object) -> str:
    """An event name: 1 to :data:`MAX_NAME_LENGTH` characters, no control character, no ``/``
    and not ``.`` or ``..`` (it is one segment of an HTTP route), no lone surrogate."""
    text = check_name(name, "event name")
    if "/" in text or text in (".", "..") or _CONTROL.search(text):
        raise ConfigurationError(
            f"invalid event name {_show(text)}: it may not contain '/' or control characters, "
            "nor be '.' or '..'; use e.g. letters, digits, '_', '-', '.' and ':'"
        )
    return text


def check_filters(
    name: object, id_prefix: object, created_after: object, created_before: object
) -> tuple[float | None, float | None]:
    """Check the filters of ``list_workflows`` (each may be None): a name, an id prefix of at
    most ``MAX_ID_LENGTH`` characters, finite epoch seconds; returns the two times as floats."""
    if name is not None:
        check_name(name, "name filter")
    if id_prefix is not None:
        check_text(id_prefix, "id_prefix", max_length=MAX_ID_LENGTH, allow_empty=True)
    return (
        None if created_after is None else check_epoch(created_after, "created_after"),
        None if created_before is None else check_epoch(created_before, "created_before"),
    )


def check_dedup_key(key: object) -> str | None:
    """An event's dedup key (None: no deduplication): 1 to :data:`MAX_DEDUP_KEY_LENGTH`
    characters of text."""
    if key is None:
        return None
    return check_text(key, "dedup_key", max_length=MAX_DEDUP_KEY_LENGTH)


def check_count(value: object, what: str, minimum: int, maximum: int = MAX_COUNT) -> int:
    """``value`` if it is an ``int`` (not a bool) from ``minimum`` to ``maximum``; else a
    :class:`ConfigurationError` saying the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        small = not isinstance(value, int) or value.bit_length() < 64
        shown = repr(value)[:60] if small else "a huge number"
        raise ConfigurationError(
            f"{what} must be a whole number >= {minimum} and <= {maximum}, got {shown}"
        )
    return value


def parse_count(text: str, what: str, minimum: int, maximum: int = MAX_COUNT) -> int:
    """The count typed in ``text`` (a CLI flag, a query parameter): ASCII digits only, from
    ``minimum`` to ``maximum``; else a :class:`ConfigurationError`."""
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > _MAX_DIGITS:
        raise ConfigurationError(
            f"{what} must be a whole number >= {minimum} and <= {maximum} in digits 0-9, "
            f"got {_show(text)}"
        )
    return check_count(int(text), what, minimum, maximum)


def check_epoch(value: object, what: str) -> float:
    """``value`` (epoch seconds: an int or float) as a finite float; else a
    :class:`ConfigurationError`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    small = not isinstance(value, int) or value.bit_length() < 64
    shown = repr(value)[:60] if small else "a huge number"
    raise ConfigurationError(f"{what} must be finite epoch seconds, got {shown}")


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON ``text`` nests arrays and objects more than ``limit`` levels deep.

    No parsing and no recursion: strings are cut out, then each pass removes the innermost
    ``[]`` and ``{}`` pairs (one level), at most ``limit`` passes."""
    if text.count("[") + text.count("{") <= limit:
        return False
    skeleton = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(limit):
        skeleton, removed = _EMPTY_PAIR.subn("", skeleton)
        if not skeleton or not removed:
            return False  # flat now, or not JSON (the parser reports that)
    return bool(skeleton)


DEPTH_ADVICE = (
    f"is nested too deeply (more than {MAX_DEPTH} levels of arrays and objects); "
    "flatten the data, or store it elsewhere and pass a reference"
)
"""What a too-deep value is told (after its name)."""


def _depth_message(what: str) -> str:
    return f"{what} {DEPTH_ADVICE}"


def check_depth(text: str, what: str, *, extra: int = 0) -> None:
    """A :class:`SerializationError` if the JSON ``text`` nests deeper than :data:`MAX_DEPTH`
    (plus ``extra`` levels of a wrapper around the value)."""
    if too_deep(text, MAX_DEPTH + extra):
        raise SerializationError(_depth_message(what))


def loads(text: str, what: str, *, extra: int = WRAPPER_DEPTH, constants: bool = False) -> Any:
    """The JSON value of an input ``text`` (a request body, ``--input``): ``json.loads``
    (NaN and infinity refused unless ``constants``; its ``ValueError`` is left to the caller),
    then a :class:`SerializationError` if it nests deeper than :data:`MAX_DEPTH` (+ ``extra``)."""
    try:
        value = json.loads(text) if constants else json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise SerializationError(_depth_message(what)) from None
    check_depth(text, what, extra=extra)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_encoded(
    text: str,
    what: str,
    context: str,
    *,
    workflow_id: str | None = None,
    step: str | None = None,
) -> int:
    """Check the JSON ``text`` the serializer made of ``what`` (``context`` names the workflow
    and step in messages): no lone surrogate, no deeper than :data:`MAX_DEPTH`. Returns its
    UTF-8 size; raises :class:`SerializationError` naming the workflow and step."""
    if text.isascii():
        size = len(text)
    else:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            flaw = _flaw(text, nul=False) or "is not valid Unicode text"
            raise SerializationError(
                f"Cannot serialize {what}{context}: a string in it {flaw}, so it could not be "
                "stored or read back. Fix the text (decode bytes with errors='replace') or pass "
                "binary data as bytes",
                workflow_id=workflow_id,
                step=step,
            ) from None
    if too_deep(text):
        wrapped = (
            " (as stored: arguments sit in a 2-level call object)" if "argument" in what else ""
        )
        raise SerializationError(
            f"Cannot serialize {what}{context}: it {DEPTH_ADVICE}{wrapped}",
            workflow_id=workflow_id,
            step=step,
        )
    return size


def check_event(name: object, dedup_key: object) -> None:
    """Refuse an event name or dedup key that :mod:`durably.limits` does not accept (App,
    Client and CLI)."""
    check_event_name(name)
    check_dedup_key(dedup_key)


def check_from_step(from_step: object) -> None:
    """Refuse a fork point that is not a whole number from 0 to ``MAX_COUNT`` (App and
    Client)."""
    check_count(from_step, "from_step", 0)
