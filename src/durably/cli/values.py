"""Reading the values people type: ``--input`` and ``--data`` JSON, ``--since``/``--until``
times and ``--status`` names."""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from durably import limits
from durably.errors import ConfigurationError
from durably.handle import status_filter

__all__ = ["parse_call", "parse_json", "parse_statuses", "parse_time"]

_CALL_KEYS = frozenset({"args", "kwargs"})
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_EXAMPLES = {
    "--input": """--input '[1, "two"]' or --input '{"kwargs": {"n": 1}}'""",
    "--data": """--data '{"by": "ana"}' or --data '"a string"' (any one JSON value)""",
}
"""A well-quoted example of each JSON flag (the event payload of --data is one value)."""


def _read(text: str, flag: str) -> str:
    """``text``, or the contents of the file ``@path``, or standard input for ``-``."""
    if text == "-":
        return sys.stdin.read()
    if text.startswith("@"):
        try:
            return Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"{flag} {text}: cannot read that file ({exc})") from None
    return text


def parse_json(text: str, flag: str) -> Any:
    """The JSON value of ``text`` (``@file`` and ``-`` read a file or standard input), or a
    ConfigurationError naming ``flag`` and where the JSON is broken."""
    source = _read(text, flag)
    try:
        # NaN and infinity pass here: the serializer refuses them, naming the value
        return limits.loads(source, flag, constants=True)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{flag} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            f"quote it for the shell, e.g. {_EXAMPLES.get(flag, _EXAMPLES['--data'])}"
        ) from None
    except ValueError as exc:  # an integer of over 4,300 digits
        raise ConfigurationError(f"{flag} holds a value durably cannot take: {exc}") from None


def parse_call(text: str | None, flag: str = "--input") -> tuple[list[Any], dict[str, Any]]:
    """A workflow's arguments from ``--input``: a JSON array is the positional arguments; an
    object whose keys are only ``args`` and/or ``kwargs`` gives both; any other value is the one
    positional argument. No input: no arguments."""
    if text is None:
        return [], {}
    value = parse_json(text, flag)
    if isinstance(value, list):
        return value, {}
    if isinstance(value, dict) and value and set(value) <= _CALL_KEYS:
        args = value.get("args", [])
        kwargs = value.get("kwargs", {})
        if not isinstance(args, list):
            raise ConfigurationError(f'{flag}: "args" must be a JSON array, got {args!r:.60}')
        if not isinstance(kwargs, dict):
            raise ConfigurationError(f'{flag}: "kwargs" must be a JSON object, got {kwargs!r:.60}')
        return args, kwargs
    return [value], {}


def parse_time(text: str, flag: str, now: float | None = None) -> float:
    """Epoch seconds from an ISO-8601 time (UTC when it names no zone), epoch seconds, or a
    duration ago such as ``30s``, ``15m``, ``2h``, ``1d``, ``1w`` (or ``1h30m``)."""
    value = text.strip()
    bad = ConfigurationError(
        f"{flag} takes an ISO-8601 time (2025-01-31T12:00:00Z), epoch seconds or a duration "
        f"ago (30s, 15m, 2h, 1d), got {text[:60]!r}"
    )
    if not value.isascii():  # float() and fromisoformat() would take other scripts' digits
        raise bad
    pos, total = 0, 0.0
    for match in _RELATIVE.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos and pos == len(value):
        if not math.isfinite(total):
            raise bad
        return (time.time() if now is None else now) - total
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_statuses(groups: Sequence[str] | None) -> list[str] | None:
    """The statuses of repeated, comma-separated ``--status`` values (None: no filter), each
    checked, with the message :meth:`durably.App.list_workflows` gives an unknown one."""
    wanted = [s.strip() for group in groups or [] for s in group.split(",") if s.strip()]
    statuses = status_filter(wanted)
    return None if statuses is None else [s.value for s in statuses]
