"""How durably stores values: every payload it writes goes through the App's :class:`Serializer`.

A :class:`durably.Serializer` has two methods, ``encode`` and ``decode``. A :class:`Codec` is
durably's side of that contract: it builds everything durably stores on those two methods alone
(a call's arguments, error descriptions, timer deadlines, recorded ``now``/``random``/``uuid``
values), adds the payload size limit, and names the value at fault in every error. So a
serializer written to the protocol, or a :class:`JsonSerializer` subclass that overrides
``encode``/``decode``, sees every value that reaches the database.

The default :class:`JsonSerializer` keeps its specialised fast paths (a call's arguments in one
``json`` call, errors as plain JSON), but only while none of ``encode``, ``decode``,
``encode_call`` and ``decode_call`` is overridden, on its class or on the instance: a subclass
that overrides ``encode`` or ``decode`` is never bypassed.

A call's arguments are stored as ``encode({"args": [encode(a), ...], "kwargs": {k: encode(v)}})``
by the generic path, so that each argument is decoded by the serializer with its own parameter's
type hint.

Readers that show many values at once (``WorkflowInfo``, history, published state, runs) use the
lenient ``view*`` methods: a value this process cannot decode (written by another serializer, or
damaged) comes back as an :class:`Undecodable` holding the stored text, instead of failing the
whole read.

An App with payload codecs (``durably.App(codecs=[...])``, :mod:`durably.codecs`) gets a Codec
that passes every stored text through the chain after the serializer (and back before it); a
Codec without them reads an encoded value as an :class:`Undecodable` (shown as ``<encoded:
aes-gcm key k2, 123 bytes>``) and refuses to decode it with an error that says so.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from durably import limits
from durably.codecs.base import CodecChain, PayloadCodec, describe, is_encoded
from durably.errors import ConfigurationError, SerializationError
from durably.serialization import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    JsonSerializer,
    Serializer,
    call_owner,
    check_size,
    decode_arguments,
    where,
)
from durably.storage.base import PREVIEW_CHARS

__all__ = ["ChainedCodec", "Codec", "Undecodable", "codec_for", "to_json"]

_PROTOCOL_METHODS = ("encode", "decode")
_FAST_METHODS = ("encode", "decode", "encode_call", "decode_call")
_CONTEXT = ("what", "workflow_id", "step")


class _WireSerializer(JsonSerializer):
    """durably's JSON form of values for the HTTP API and ``--json`` output: never stored, so
    none of the storage checks (size, depth, lone surrogates) apply; a value already stored (say
    by an older durably that let lone surrogates through) is always shown."""

    def _check_size(self, text: str, what: str, workflow_id: str | None, step: str | None) -> str:
        return text


_WIRE = _WireSerializer(max_payload_bytes=2**62)
"""durably's JSON form of values, for the HTTP API and ``--json`` output (not for storage)."""


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A stored value this process could not decode: most often one written by an App with a
    custom serializer, read by a process without it (``durably show``, ``durably server``
    started with only ``--db``), or one encoded by payload codecs this process does not have
    (or whose key it lacks); ``str()`` of that one is ``<encoded: aes-gcm key k2, 123 bytes>``.
    ``text`` is the value exactly as stored, ``reason`` why it could not be decoded. Read it
    through the App that wrote it (or with its codecs) to see the value."""

    text: str
    reason: str

    def __str__(self) -> str:
        encoded = describe(self.text)
        if encoded is not None:
            return f"<encoded: {encoded}>"
        return f"<cannot decode (written by another serializer?); stored text: {self.text}>"


def _without_codecs(text: str, what: str, exc: SerializationError) -> SerializationError:
    """The error of decoding ``text`` with no payload codecs: for an encoded value, one that
    says so (raise it ``from None``); else ``exc`` itself (re-raise it as it is)."""
    encoded = describe(text)
    if encoded is None:
        return exc
    return SerializationError(
        f"Cannot decode {what}: it is encoded ({encoded}) and this App has no payload codecs; "
        "give it the codecs that wrote it (durably.App(codecs=[...]); the CLI and "
        "`durably server`: --app MODULE:APP or --codecs MODULE:OBJ)"
    )


def to_json(value: Any) -> Any:
    """A decoded value as JSON-ready data, in durably's JSON form (dates, bytes, UUIDs and
    decimals as one-key tagged objects such as ``{"$datetime": "..."}``); an
    :class:`Undecodable` as ``{"$undecodable": {"text": ..., "reason": ...}}``."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Undecodable):
        return {"$undecodable": {"text": value.text, "reason": value.reason}}
    if isinstance(value, dict) and any(isinstance(v, Undecodable) for v in value.values()):
        return {k: to_json(v) for k, v in value.items()}  # e.g. published states
    return json.loads(_WIRE.encode(value))


def _is_default_json(serializer: object) -> bool:
    """Whether ``serializer`` encodes and decodes exactly as :class:`JsonSerializer` does (so
    its fast paths, which bypass ``encode``/``decode``, write and read the same text)."""
    if not isinstance(serializer, JsonSerializer):
        return False
    cls, own = type(serializer), vars(serializer)
    return all(
        getattr(cls, name) is getattr(JsonSerializer, name) and name not in own
        for name in _FAST_METHODS
    )


def _takes_context(encode: Callable[..., Any]) -> bool:
    """Whether ``encode`` accepts the optional ``what``/``workflow_id``/``step`` keywords."""
    try:
        params = inspect.signature(encode).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return True
    names = {p.name for p in params if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    return names.issuperset(_CONTEXT)


class Codec:
    """durably's use of a :class:`Serializer`: everything it stores, built on the serializer's
    ``encode`` and ``decode`` alone, with the payload size limit and errors that name the
    value. An App holds one as ``app.codec``; see :func:`codec_for`."""

    def __init__(
        self, serializer: Serializer, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    ) -> None:
        missing = [m for m in _PROTOCOL_METHODS if not callable(getattr(serializer, m, None))]
        if missing:
            raise ConfigurationError(
                f"serializer {type(serializer).__name__} has no {' or '.join(missing)} method: "
                "a durably.Serializer needs encode(value, *, what, workflow_id, step) -> str and "
                "decode(text, type_hint) -> value"
            )
        self.serializer = serializer
        limit = getattr(serializer, "max_payload_bytes", max_payload_bytes)
        self.max_payload_bytes = limit if type(limit) is int and limit > 0 else max_payload_bytes
        self._name = type(serializer).__qualname__
        self._with_context = _takes_context(serializer.encode)

    # -- values --------------------------------------------------------------------------------

    def same_stored(self, a: str, b: str) -> bool:
        """Whether two stored texts hold the same value (with payload codecs, the same value may
        be stored as different texts)."""
        return a == b

    def encode(
        self,
        value: Any,
        *,
        what: str = "value",
        workflow_id: str | None = None,
        step: str | None = None,
    ) -> str:
        """``value`` as the text to store. Raises :class:`SerializationError` (naming ``what``,
        the workflow and the step) or :class:`PayloadTooLargeError`."""
        return self._encoded(value, what, workflow_id, step)

    def _encoded(self, value: Any, what: str, workflow_id: str | None, step: str | None) -> str:
        return self._check_size(
            self._encode(value, what, workflow_id, step), what, workflow_id, step
        )

    def _encode(self, value: Any, what: str, workflow_id: str | None, step: str | None) -> str:
        try:
            if self._with_context:
                text = self.serializer.encode(value, what=what, workflow_id=workflow_id, step=step)
            else:
                text = self.serializer.encode(value)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"Cannot serialize {what}{where(workflow_id, step)}: {self._name}.encode raised "
                f"{type(exc).__name__}: {exc}",
                workflow_id=workflow_id,
                step=step,
            ) from exc
        if not isinstance(text, str):
            raise SerializationError(
                f"Cannot serialize {what}{where(workflow_id, step)}: {self._name}.encode "
                f"returned {type(text).__name__}, not str (durably stores text)",
                workflow_id=workflow_id,
                step=step,
            )
        return text

    def _check_size(self, text: str, what: str, workflow_id: str | None, step: str | None) -> str:
        try:
            size = len(text) if text.isascii() else len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise SerializationError(
                f"Cannot store {what}{where(workflow_id, step)}: {self._name}.encode returned "
                "text with a lone surrogate, which is not valid UTF-8; escape it (e.g. "
                "json.dumps(..., ensure_ascii=True)) or encode binary data as base64",
                workflow_id=workflow_id,
                step=step,
            ) from None
        return check_size(text, size, self.max_payload_bytes, what, workflow_id, step)

    def decode(self, text: str, type_hint: Any = Any, *, what: str = "value") -> Any:
        """Decode stored ``text``, converting the result to ``type_hint``. Raises
        :class:`SerializationError` (naming ``what``) whatever the serializer raised."""
        try:
            return self.serializer.decode(text, type_hint)
        except SerializationError as exc:
            if describe(text) is None:
                raise
            raise _without_codecs(text, what, exc) from None
        except Exception as exc:
            error = SerializationError(
                f"Cannot decode {what}: {self._name}.decode raised {type(exc).__name__}: {exc}"
            )
            raise _without_codecs(text, what, error) from exc

    # -- calls ---------------------------------------------------------------------------------

    def encode_call(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        workflow_id: str | None = None,
        step: str | None = None,
        name: str = "",
    ) -> str:
        """A call's arguments as the text to store (a workflow's input, a step's arguments).
        Errors name the argument (1-based) and whose it is (the step, else workflow ``name``)."""
        return self._encoded_call(args, kwargs, workflow_id, step, name)

    def _encoded_call(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], workflow_id: str | None,
        step: str | None, name: str,
    ) -> str:  # fmt: skip
        owner = call_owner(step, name)
        call = {
            "args": [
                self._encode(a, f"argument {i}{owner}", workflow_id, step)
                for i, a in enumerate(args, 1)
            ],
            "kwargs": {
                k: self._encode(v, f"keyword argument {k!r}{owner}", workflow_id, step)
                for k, v in kwargs.items()
            },
        }
        return self.encode(call, what="arguments" + owner, workflow_id=workflow_id, step=step)

    def _call(self, text: str) -> tuple[list[str], dict[str, str]]:
        call = self.decode(text, Any, what="call arguments")
        args, kwargs = (call.get("args"), call.get("kwargs")) if isinstance(call, dict) else ([], 0)
        if not (
            isinstance(args, list)
            and isinstance(kwargs, dict)
            and all(isinstance(a, str) for a in args)
            and all(isinstance(v, str) for v in kwargs.values())
        ):
            raise SerializationError(
                "Cannot decode call arguments: expected what Codec.encode_call stores, an object "
                "with 'args' (encoded arguments) and 'kwargs'"
            )
        return args, kwargs

    def decode_call(
        self, text: str, func: Callable[..., Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Decode :meth:`encode_call` text, each argument converted to ``func``'s annotation."""
        encoded_args, encoded_kwargs = self._call(text)
        return decode_arguments(
            encoded_args,
            encoded_kwargs,
            func,
            lambda a, hint, what: self.decode(a, hint, what=what),
        )

    def decode_input(self, text: str) -> Any:
        """A stored call as ``{"args": [...], "kwargs": {...}}``, with no type conversion."""
        args, kwargs = self._call(text)
        return {
            "args": [self.decode(a, what=f"argument {i}") for i, a in enumerate(args, 1)],
            "kwargs": {
                k: self.decode(v, what=f"keyword argument {k!r}") for k, v in kwargs.items()
            },
        }

    # -- errors --------------------------------------------------------------------------------

    def encode_error(self, info: dict[str, Any]) -> str:
        """An error description (type, message, traceback...) as the text to store. Not held
        to the size limit; if the serializer refuses it, it is stored without its traceback
        and with its message cut to 2,000 characters. Lone surrogates in its texts are shown
        as U+FFFD (a description need not round-trip exactly, but must be storable)."""
        info = {k: limits.readable(v) if isinstance(v, str) else v for k, v in info.items()}
        try:
            return self._encode(info, "error", None, None)
        except SerializationError:
            short = {k: v for k, v in info.items() if k != "traceback"}
            short["message"] = str(info.get("message", ""))[:2000]
            return self._encode(short, "error", None, None)

    def decode_error(self, text: str) -> dict[str, Any]:
        """A stored error description (always a dict)."""
        info = self.decode(text, Any, what="error")
        return info if isinstance(info, dict) else {"message": str(info)}

    # -- lenient reads, for views --------------------------------------------------------------

    def view(self, text: str) -> Any:
        """:meth:`decode` with no type conversion, or an :class:`Undecodable`."""
        try:
            return self.decode(text)
        except (SerializationError, RecursionError) as exc:
            return Undecodable(text, str(exc))

    def view_input(self, text: str) -> Any:
        """:meth:`decode_input`, or an :class:`Undecodable`."""
        try:
            return self.decode_input(text)
        except (SerializationError, RecursionError) as exc:
            return Undecodable(text, str(exc))

    def view_error(self, text: str) -> dict[str, Any]:
        """:meth:`decode_error`, or a description of why it cannot be (with the stored text)."""
        try:
            return self.decode_error(text)
        except (SerializationError, RecursionError) as exc:
            return {"type": "durably.Undecodable", "message": str(exc), "text": text}

    def as_json(self, text: str) -> Any:
        """Stored ``text`` in durably's JSON form (see :func:`to_json`), for the HTTP API."""
        return to_json(self.view(text))

    def reveal(self, text: str) -> str:
        """Stored ``text`` as the serializer wrote it, for previews (lists show the start of
        each value's text): a plain value as it is; an encoded one as ``<encoded: ...>``."""
        encoded = describe(text)
        if encoded is None:
            return text
        if len(text) > PREVIEW_CHARS:  # a list's preview: the value was cut
            encoded = f"{encoded.rpartition(', ')[0]}, over {PREVIEW_CHARS} bytes"
        return f"<encoded: {encoded}>"

    def from_json(self, value: Any) -> Any:
        """A value received in durably's JSON form (an HTTP request's arguments or event data)
        as the Python value to hand to the serializer: tagged objects become datetimes, bytes,
        UUIDs... as a :class:`durably.Client` sent them."""
        if value is None or isinstance(value, str | int | float | bool):
            return value
        try:
            return _WIRE.decode(json.dumps(value, ensure_ascii=False))
        except RecursionError:
            raise SerializationError("Cannot decode the value: it is nested too deeply") from None


class _JsonCodec(Codec):
    """The :class:`Codec` of the default :class:`JsonSerializer`: its specialised call encoding
    (one ``json`` call per call) and plain ``json`` for errors. Same text as the generic path
    would store with it, but for the call envelope (one level instead of nested texts)."""

    serializer: JsonSerializer

    def _encoded(self, value: Any, what: str, workflow_id: str | None, step: str | None) -> str:
        return self.serializer.encode(value, what=what, workflow_id=workflow_id, step=step)

    def decode(self, text: str, type_hint: Any = Any, *, what: str = "value") -> Any:
        try:
            return self.serializer.decode(text, type_hint)
        except SerializationError as exc:
            if describe(text) is None:
                raise
            raise _without_codecs(text, what, exc) from None

    def _encoded_call(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], workflow_id: str | None,
        step: str | None, name: str,
    ) -> str:  # fmt: skip
        return self.serializer.encode_call(
            args, kwargs, workflow_id=workflow_id, step=step, name=name
        )

    def decode_call(
        self, text: str, func: Callable[..., Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        try:
            return self.serializer.decode_call(text, func)
        except SerializationError as exc:
            if describe(text) is None:
                raise
            raise _without_codecs(text, "call arguments", exc) from None

    def decode_input(self, text: str) -> Any:
        return self.decode(text, what="call arguments")  # the call's JSON object, as stored

    def encode_error(self, info: dict[str, Any]) -> str:
        # a message or traceback may hold lone surrogates: shown as U+FFFD, so it can be stored
        return limits.readable(json.dumps(info, ensure_ascii=False, default=repr))

    def from_json(self, value: Any) -> Any:
        return value  # its JSON form is what JsonSerializer stores: no need to decode the tags

    def as_json(self, text: str) -> Any:
        try:
            return json.loads(text)  # stored JSON is its own JSON form
        except (ValueError, RecursionError) as exc:
            error = _without_codecs(
                text, "value", SerializationError(f"Cannot decode value: {exc}")
            )
            return to_json(Undecodable(text, str(error)))


def codec_for(
    serializer: Serializer | Codec | None = None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    codecs: Sequence[PayloadCodec] = (),
) -> Codec:
    """The :class:`Codec` of ``serializer`` (default: a :class:`JsonSerializer` with
    ``max_payload_bytes``) followed by the payload ``codecs``; a Codec is returned as it is."""
    if isinstance(serializer, Codec):
        return serializer
    if serializer is None:
        serializer = JsonSerializer(max_payload_bytes)
    codec: Codec
    if _is_default_json(serializer):
        codec = _JsonCodec(serializer, max_payload_bytes)
    else:
        codec = Codec(serializer, max_payload_bytes)
    chain = CodecChain(codecs)
    return ChainedCodec(codec, chain) if chain else codec


class ChainedCodec(Codec):
    """A :class:`Codec` followed by payload codecs: what the serializer writes goes through
    ``chain`` before it is stored, and stored text back through it before the serializer reads
    it. Plain values (written before the codecs were enabled) are read as they are.

    Size: ``max_payload_bytes`` holds before the codecs (the serializer's text, as without
    codecs, so compression does not let larger values in) and after them (the stored text,
    which is what a database column holds: base64 makes encrypted values a third larger).
    Error descriptions are held to neither, as without codecs."""

    def __init__(self, inner: Codec, chain: CodecChain) -> None:
        super().__init__(inner.serializer, inner.max_payload_bytes)
        self.inner = inner
        self.chain = chain

    def _sealed(self, text: str, what: str, workflow_id: str | None, step: str | None) -> str:
        sealed = self.chain.seal(text, what, where(workflow_id, step))
        if sealed is not text and len(sealed) > self.max_payload_bytes:
            check_size(
                sealed, len(sealed), self.max_payload_bytes,
                f"{what} (after the App's payload codecs)", workflow_id, step,
            )  # fmt: skip
        return sealed

    def encode(
        self,
        value: Any,
        *,
        what: str = "value",
        workflow_id: str | None = None,
        step: str | None = None,
    ) -> str:
        text = self.inner.encode(value, what=what, workflow_id=workflow_id, step=step)
        return self._sealed(text, what, workflow_id, step)

    def encode_call(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        workflow_id: str | None = None,
        step: str | None = None,
        name: str = "",
    ) -> str:
        text = self.inner.encode_call(args, kwargs, workflow_id=workflow_id, step=step, name=name)
        return self._sealed(text, "arguments" + call_owner(step, name), workflow_id, step)

    def encode_error(self, info: dict[str, Any]) -> str:
        return self.chain.seal(self.inner.encode_error(info), "error")

    def same_stored(self, a: str, b: str) -> bool:
        if a == b:
            return True
        try:  # the same value encrypted twice differs (a random nonce per value)
            return self.chain.open(a) == self.chain.open(b)
        except SerializationError:
            return False

    def decode(self, text: str, type_hint: Any = Any, *, what: str = "value") -> Any:
        return self.inner.decode(self.chain.open(text, what), type_hint, what=what)

    def decode_call(
        self, text: str, func: Callable[..., Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return self.inner.decode_call(self.chain.open(text, "call arguments"), func)

    def decode_input(self, text: str) -> Any:
        return self.inner.decode_input(self.chain.open(text, "call arguments"))

    def decode_error(self, text: str) -> dict[str, Any]:
        return self.inner.decode_error(self.chain.open(text, "error"))

    def view(self, text: str) -> Any:
        try:
            plain = self.chain.open(text)
        except SerializationError as exc:
            return Undecodable(text, str(exc))
        return self.inner.view(plain)

    def view_input(self, text: str) -> Any:
        try:
            plain = self.chain.open(text, "call arguments")
        except SerializationError as exc:
            return Undecodable(text, str(exc))
        return self.inner.view_input(plain)

    def view_error(self, text: str) -> dict[str, Any]:
        try:
            plain = self.chain.open(text, "error")
        except SerializationError as exc:
            return {"type": "durably.Undecodable", "message": str(exc), "text": text}
        return self.inner.view_error(plain)

    def as_json(self, text: str) -> Any:
        try:
            plain = self.chain.open(text)
        except SerializationError as exc:
            return to_json(Undecodable(text, str(exc)))
        return self.inner.as_json(plain)

    def from_json(self, value: Any) -> Any:
        return self.inner.from_json(value)

    def reveal(self, text: str) -> str:
        """A plain value as it is; an encoded one decoded when it can be (previews of lists
        hold only the start of each value: a cut one cannot), else ``<encoded: ...>``."""
        if not is_encoded(text):
            return text
        try:
            return self.chain.open(text)
        except SerializationError:
            return super().reveal(text)
