"""How durably turns workflow inputs, step results, event payloads and errors into JSON text.

:class:`JsonSerializer` is the default :class:`Serializer`. Encoding is one ``json`` call with a
``default=`` hook (no Python pre-walk of the value):

* JSON-native values encode compactly; tuples become lists. NaN and infinity are rejected.
* dataclasses become dicts of their fields, pydantic v2 models ``model_dump(mode="json")``,
  enums their value, sets sorted lists (insertion order if the items cannot be sorted).
* ``datetime``, ``date``, ``time``, ``timedelta`` (seconds), ``bytes`` (base64), ``UUID`` and
  ``Decimal`` become one-key tagged objects such as ``{"$uuid": "..."}`` and come back as the same
  type on decode even without a type hint. A plain dict whose single key is one of these tags is
  decoded the same way, unless its value cannot be parsed, in which case it stays a dict.
* ``int``/``float``/``bool``/``None`` dict keys are turned into strings by ``json`` itself; a
  ``dict[int, V]`` hint turns them back. Any other non-str key is a :class:`SerializationError`.

Decoding with a type hint rebuilds dataclasses, pydantic models, enums, containers and unions
recursively; ``Any`` and hints it does not know return the JSON value unchanged.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import inspect
import json
import types
import typing
from collections import abc
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple, Protocol, runtime_checkable
from uuid import UUID

from durably import limits
from durably.errors import ConfigurationError, PayloadTooLargeError, SerializationError

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "JsonSerializer", "Serializer"]

DEFAULT_MAX_PAYLOAD_BYTES = 1_048_576
"""Default limit on the UTF-8 size of one encoded payload (1 MiB)."""

_ADVICE = (
    "Use JSON-compatible values, dataclasses, pydantic models, datetime, bytes; "
    "or pass a custom serializer to durably.App(serializer=...)."
)
_NONE_TYPE = type(None)


@runtime_checkable
class Serializer(Protocol):
    """What durably needs from a serializer: values to text and back. Pass one to
    ``durably.App(serializer=...)``; every value durably stores goes through these two methods
    (workflow inputs, one call per argument and one for the call, outputs, step results, error
    descriptions, event payloads, published state, child inputs, timer deadlines, recorded
    ``now``/``random``/``uuid4`` values). durably adds the size limit and error context itself.
    """

    def encode(
        self,
        value: Any,
        *,
        what: str = "value",
        workflow_id: str | None = None,
        step: str | None = None,
    ) -> str:
        """Encode ``value`` as text (valid UTF-8: no lone surrogates). ``what`` names the value,
        ``workflow_id`` and ``step`` where it comes from, for error messages; they are passed
        only if ``encode`` accepts them. Raising any exception refuses the value: durably
        reports it as a :class:`SerializationError` naming the value."""
        ...

    def decode(self, data: str, type_hint: Any = Any) -> Any:
        """Decode text made by :meth:`encode`; ``type_hint`` is the annotation of the parameter
        or return value it is for (``Any`` when none), which a serializer may use to rebuild
        types or ignore."""
        ...


class _Unsupported(Exception):
    def __init__(self, obj: object) -> None:
        super().__init__(type(obj))
        self.type_name = _type_name(type(obj))


class _Mismatch(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []  # innermost first


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return (
            tp.__qualname__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"
        )
    return repr(tp)


def _default(o: Any) -> Any:
    """``json`` hook for everything that is not JSON-native."""
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, datetime):
        return {"$datetime": o.isoformat()}
    if isinstance(o, date):
        return {"$date": o.isoformat()}
    if isinstance(o, time):
        return {"$time": o.isoformat()}
    if isinstance(o, timedelta):
        return {"$timedelta": o.total_seconds()}
    if isinstance(o, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(o).decode("ascii")}
    if isinstance(o, UUID):
        return {"$uuid": str(o)}
    if isinstance(o, Decimal):
        return {"$decimal": str(o)}
    if isinstance(o, set | frozenset):
        try:
            return sorted(o)
        except TypeError:
            return list(o)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
    if not isinstance(o, type) and callable(getattr(o, "model_dump", None)):
        return o.model_dump(mode="json")
    raise _Unsupported(o)


_OPTIONS: dict[str, Any] = {"allow_nan": False, "separators": (",", ":"), "default": _default}
_ENCODER = json.JSONEncoder(ensure_ascii=False, **_OPTIONS)

# Parsers of the tagged forms; a hint of one of these types also accepts the untagged JSON form.
_PARSERS: dict[type, Callable[[Any], Any]] = {
    datetime: datetime.fromisoformat,
    date: date.fromisoformat,
    time: time.fromisoformat,
    timedelta: lambda v: timedelta(seconds=v),
    bytes: lambda v: base64.b64decode(v, validate=True),
    UUID: UUID,
    Decimal: lambda v: Decimal(v if isinstance(v, str) else repr(v)),
}
_TAGS = {f"${cls.__name__.lower()}": parse for cls, parse in _PARSERS.items()}


def _object_hook(d: dict[str, Any]) -> Any:
    if len(d) == 1:
        for key, raw in d.items():
            tag = _TAGS.get(key)
            if tag is not None:
                try:
                    return tag(raw)
                except Exception:
                    return d
    return d


def where(workflow_id: str | None, step: str | None) -> str:
    """`` (workflow id 'x', step 'y')`` for error messages, or "" when neither is known."""
    parts = [f"workflow id {workflow_id!r}"] if workflow_id else []
    if step:
        parts.append(f"step {step!r}")
    return f" ({', '.join(parts)})" if parts else ""


def _encode_error(
    exc: Exception, what: str, workflow_id: str | None, step: str | None
) -> SerializationError:
    head = f"Cannot serialize {what}{where(workflow_id, step)}"
    text = str(exc)
    if isinstance(exc, _Unsupported):
        msg = f"{head}: values of type {exc.type_name} are not supported. {_ADVICE}"
    elif isinstance(exc, RecursionError):
        msg = f"{head}: it {limits.DEPTH_ADVICE}"
    elif isinstance(exc, TypeError) and text.startswith("keys must be"):
        key_type = text.rpartition(" not ")[2]
        msg = f"{head}: dict keys must be str, found a key of type {key_type}. Convert keys to str."
    elif isinstance(exc, ValueError) and "Circular reference" in text:
        msg = f"{head}: it contains a circular reference (an object that contains itself)."
    elif isinstance(exc, ValueError) and "Out of range float" in text:
        msg = f"{head}: NaN and infinity are not valid JSON. Use None or a string instead."
    else:
        msg = f"{head}: {type(exc).__name__}: {exc}. {_ADVICE}"
    return SerializationError(msg, workflow_id=workflow_id, step=step)


_SCALARS = frozenset({int, str, float, bool})
"""Types whose decoded JSON value of exactly that type needs no conversion."""


def _mismatch(hint: Any, value: Any) -> _Mismatch:
    return _Mismatch(f"expected {_type_name(hint)}, got {_type_name(type(value))}")


def _convert(value: Any, hint: Any) -> Any:
    """Convert decoded JSON ``value`` to ``hint``; raise :class:`_Mismatch` if it does not fit."""
    if hint is Any or hint is object or (hint is type(value) and hint in _SCALARS):
        return value
    if hint is None:
        hint = _NONE_TYPE
    origin = typing.get_origin(hint)
    if origin is None:
        if isinstance(hint, type):
            return _convert_class(value, hint, hint, ())
        supertype = getattr(hint, "__supertype__", None)  # typing.NewType
        return value if supertype is None else _convert(value, supertype)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and _NONE_TYPE in args:
            return None
        for member in args:
            if member is not _NONE_TYPE:
                try:
                    return _convert(value, member)
                except _Mismatch:
                    pass
        raise _mismatch(hint, value)
    if origin is typing.Annotated:
        return _convert(value, args[0])
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Mismatch(f"expected {_type_name(hint)}, got {value!r}")
    return _convert_class(value, origin, hint, args) if isinstance(origin, type) else value


def _at(value: Any, hint: Any, key: Any, attr: bool = False) -> Any:
    """:func:`_convert` an item of a container, recording where a mismatch happened."""
    try:
        return _convert(value, hint)
    except _Mismatch as m:
        m.path.append(f".{key}" if attr else f"[{key!r}]")
        raise


def _key(key: str, hint: Any) -> Any:
    if hint is int or hint is float:  # json turned int and float keys into strings
        try:
            return hint(key)
        except ValueError:
            pass  # reported by _at below
    return _at(key, hint, key)


_LISTS = (list, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection)
_SETS = (set, frozenset, abc.Set, abc.MutableSet)
_DICTS = (dict, abc.Mapping, abc.MutableMapping)


def _convert_class(value: Any, cls: type, hint: Any, args: tuple[Any, ...]) -> Any:
    if cls in _LISTS or cls in _SETS or cls is tuple:
        if not isinstance(value, list):
            raise _mismatch(hint, value)
        if cls is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Mismatch(f"expected {_type_name(hint)}, got {len(value)} items")
            return tuple(_at(v, h, i) for i, (v, h) in enumerate(zip(value, args, strict=True)))
        item_hint = args[0] if args else Any
        items = value if item_hint is Any else [_at(v, item_hint, i) for i, v in enumerate(value)]
        if cls in _LISTS:
            return items
        return (
            frozenset(items) if cls is frozenset else tuple(items) if cls is tuple else set(items)
        )
    if cls in _DICTS:
        if not isinstance(value, dict):
            raise _mismatch(hint, value)
        key_hint, value_hint = args if len(args) == 2 else (Any, Any)
        if key_hint is Any and value_hint is Any:
            return value
        return {_key(k, key_hint): _at(v, value_hint, k) for k, v in value.items()}
    if cls is bool or cls is str or cls is _NONE_TYPE:
        if type(value) is not cls:
            raise _mismatch(hint, value)
        return value
    if cls is int or cls is float:
        if isinstance(value, bool) or not isinstance(value, int if cls is int else int | float):
            raise _mismatch(hint, value)
        return cls(value)
    if isinstance(value, cls):
        return value
    if issubclass(cls, Enum):
        try:
            return cls(value)
        except ValueError:
            raise _Mismatch(f"{value!r} is not a valid {_type_name(cls)}") from None
    if dataclasses.is_dataclass(cls):
        return _convert_dataclass(value, cls)
    try:
        if callable(getattr(cls, "model_validate", None)):  # pydantic v2 model
            return cls.model_validate(value)  # type: ignore[attr-defined]
        parse = _PARSERS.get(cls)
        return value if parse is None else parse(value)
    except Exception as exc:
        raise _Mismatch(
            f"{_type_name(type(value))} does not fit {_type_name(cls)}: {exc}"
        ) from None


def _convert_dataclass(value: Any, cls: type) -> Any:
    if not isinstance(value, dict):
        raise _mismatch(cls, value)
    fields = _dataclass_fields(cls)
    missing = [name for name, _, required in fields if required and name not in value]
    if missing:
        raise _Mismatch(f"{_type_name(cls)} is missing field(s) {', '.join(map(repr, missing))}")
    kwargs = {name: _at(value[name], hint, name, True) for name, hint, _ in fields if name in value}
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise _Mismatch(f"{_type_name(cls)}(...) raised {type(exc).__name__}: {exc}") from None


@functools.lru_cache(maxsize=1024)
def _dataclass_fields(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type hint, required) for each ``__init__`` field of dataclass ``cls``."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable forward reference: use what is already a real type
        hints = {}
    return tuple(
        (
            f.name,
            hints.get(f.name, Any if isinstance(f.type, str) else f.type),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init
    )


class _CallHints(NamedTuple):
    positional: tuple[Any, ...]
    var_positional: Any
    named: dict[str, Any]
    var_keyword: Any
    result: Any


def _compute_call_hints(func: Callable[..., Any]) -> _CallHints:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        params = []
    callable_object = not inspect.isroutine(func) and not hasattr(func, "__wrapped__")
    target = type(func).__call__ if callable_object else func
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: no conversion
        hints = {}
    kind = inspect.Parameter
    by_kind = {p.kind: hints.get(p.name, Any) for p in params}
    return _CallHints(
        positional=tuple(
            hints.get(p.name, Any)
            for p in params
            if p.kind in (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD)
        ),
        var_positional=by_kind.get(kind.VAR_POSITIONAL, Any),
        named={p.name: hints.get(p.name, Any) for p in params if p.kind != kind.POSITIONAL_ONLY},
        var_keyword=by_kind.get(kind.VAR_KEYWORD, Any),
        result=hints.get("return", Any),
    )


_cached_call_hints = functools.lru_cache(maxsize=1024)(_compute_call_hints)


def _call_hints(func: Callable[..., Any]) -> _CallHints:
    try:
        return _cached_call_hints(func)
    except TypeError:  # unhashable callable
        return _compute_call_hints(func)


def decode_arguments(
    args: list[Any],
    kwargs: dict[str, Any],
    func: Callable[..., Any],
    decode: Callable[[Any, Any, str], Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A stored call's arguments, each passed through ``decode(value, hint, what)`` with the
    annotation of ``func``'s parameter it binds to (``what``: "argument 2", "keyword argument
    'cents'")."""
    hints = _call_hints(func)
    n = len(hints.positional)
    return (
        tuple(
            decode(v, hints.positional[i] if i < n else hints.var_positional, f"argument {i + 1}")
            for i, v in enumerate(args)
        ),
        {
            k: decode(v, hints.named.get(k, hints.var_keyword), f"keyword argument {k!r}")
            for k, v in kwargs.items()
        },
    )


def call_owner(step: str | None, name: str) -> str:
    """Whose arguments a call's are, for messages: " of step 's'", " of workflow 'w'" or ""."""
    return f" of step {step!r}" if step else f" of workflow {name!r}" if name else ""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(object_hook=_object_hook, parse_constant=_reject_constant)
"""One decoder for every call (``json.loads`` with hooks builds a new one each time)."""


def _loads(data: str, what: str) -> Any:
    try:
        return _DECODER.decode(data)
    except (ValueError, TypeError, RecursionError) as exc:
        raise SerializationError(
            f"Cannot decode {what}: the stored text is not valid JSON ({exc})."
        ) from exc


def _convert_as(value: Any, hint: Any, what: str) -> Any:
    if hint is Any:
        return value
    try:
        return _convert(value, hint)
    except (_Mismatch, RecursionError) as exc:
        reason = exc.reason if isinstance(exc, _Mismatch) else "nested too deeply"
        path = "".join(reversed(exc.path)).lstrip(".") if isinstance(exc, _Mismatch) else ""
        raise SerializationError(
            f"Cannot decode {what} as {_type_name(hint)}{f' at {path}' if path else ''}: "
            f"{reason}. Did the type change since the value was stored?"
        ) from None


class JsonSerializer:
    """The default :class:`Serializer`: compact JSON with tagged dates, bytes, UUIDs, decimals.

    ``max_payload_bytes`` caps the UTF-8 size of any one encoded value (must be positive).
    """

    def __init__(self, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
        if type(max_payload_bytes) is not int or max_payload_bytes <= 0:
            raise ConfigurationError(
                f"max_payload_bytes must be a positive integer, got {max_payload_bytes!r}."
            )
        self.max_payload_bytes = max_payload_bytes

    def encode(
        self,
        value: Any,
        *,
        what: str = "value",
        workflow_id: str | None = None,
        step: str | None = None,
    ) -> str:
        """Encode ``value`` as JSON text; ``what`` (e.g. "result of step 'withdraw'") names it in
        errors. Raises :class:`SerializationError` or :class:`PayloadTooLargeError`."""
        try:
            text = _ENCODER.encode(value)
        except Exception as exc:
            raise _encode_error(exc, what, workflow_id, step) from exc
        return self._check_size(text, what, workflow_id, step)

    def decode(self, data: str, type_hint: Any = Any) -> Any:
        """Decode JSON text, restoring tagged values and converting the result to ``type_hint``."""
        return _convert_as(_loads(data, "value"), type_hint, "value")

    def encode_call(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        workflow_id: str | None = None,
        step: str | None = None,
        name: str = "",
    ) -> str:
        """Encode a call's arguments as ``{"args": [...], "kwargs": {...}}``.

        Errors name the argument (1-based: "argument 2", "keyword argument 'cents'") and whose it
        is: "of step '<step>'" when ``step`` is given, else "of workflow '<name>'".
        """
        owner = call_owner(step, name)
        call = {"args": args, "kwargs": kwargs}
        try:
            text = _ENCODER.encode(call)
        except Exception as exc:  # slow path: find the argument at fault
            labelled = [(f"argument {i}", v) for i, v in enumerate(args, 1)]
            labelled += [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]
            for label, arg in labelled:
                try:
                    _ENCODER.encode(arg)
                except Exception as arg_exc:
                    raise _encode_error(arg_exc, label + owner, workflow_id, step) from arg_exc
            raise _encode_error(exc, "arguments" + owner, workflow_id, step) from exc
        return self._check_size(text, "arguments" + owner, workflow_id, step)

    def decode_call(
        self, data: str, func: Callable[..., Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Decode :meth:`encode_call` output, converting each argument to ``func``'s annotation."""
        call = _loads(data, "call arguments")
        if not (
            isinstance(call, dict)
            and isinstance(call.get("args"), list)
            and isinstance(call.get("kwargs"), dict)
        ):
            raise SerializationError(
                "Cannot decode call arguments: expected an object with 'args' and 'kwargs'."
            )
        return decode_arguments(call["args"], call["kwargs"], func, _convert_as)

    def decode_result(self, data: str, func: Callable[..., Any]) -> Any:
        """Decode a result of ``func``, converting it to ``func``'s return annotation."""
        what = f"result of {getattr(func, '__qualname__', None) or 'function'}"
        return _convert_as(_loads(data, what), _call_hints(func).result, what)

    def _check_size(self, text: str, what: str, workflow_id: str | None, step: str | None) -> str:
        # refuses lone surrogates and nesting deeper than limits.MAX_DEPTH: what is stored can
        # always be read back, shown, and encoded again
        context = where(workflow_id, step)
        size = limits.check_encoded(text, what, context, workflow_id=workflow_id, step=step)
        return check_size(text, size, self.max_payload_bytes, what, workflow_id, step)


def check_size(
    text: str, size: int, limit: int, what: str, workflow_id: str | None, step: str | None
) -> str:
    """``text`` (``size`` bytes in UTF-8) if it is within ``limit``, else raise
    :class:`PayloadTooLargeError` naming ``what``, the workflow and the step."""
    if size > limit:
        raise PayloadTooLargeError(
            f"Encoded {what}{where(workflow_id, step)} is {size} bytes, over the limit of "
            f"{limit} bytes. Raise it with durably.App(max_payload_bytes=...) "
            "or store large data elsewhere (a file, object storage, a table) and pass a "
            "reference such as a path, URL or id.",
            workflow_id=workflow_id,
            step=step,
        )
    return text
