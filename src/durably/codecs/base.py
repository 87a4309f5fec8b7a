"""The stored form of encoded values, and the chain of :class:`PayloadCodec` an App applies.

A value goes through the App's serializer (text), then through each payload codec in order
(bytes to bytes: compression, encryption...), and is stored as one line of ASCII text::

    $encoded:1:<label>+<label>...:<base64 of the bytes>

e.g. ``$encoded:1:zlib+aes-gcm@k2:AAECAw...``. Each label names the codec layer that made it
(``name``, or ``name@parameter`` such as the key id of an encryption), innermost first; a value
is decoded by undoing its layers in reverse order, each by the codec of the chain that owns the
layer's name. A codec may leave a value as it is (compression of a small value): a value that
no codec changed is stored as the serializer made it, so a database holds plain values
(written before codecs were enabled, or small) and encoded ones side by side, and reads both.
A plain value that happens to start with the marker is wrapped in an envelope with no layers,
so that it is never mistaken for an encoded one.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from durably.errors import ConfigurationError, SerializationError

__all__ = ["MARKER", "CodecChain", "PayloadCodec", "describe", "is_encoded"]

MARKER = "$encoded:1:"
"""What every encoded value starts with (the ``1`` is the envelope's format version)."""

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_LABEL = re.compile(r"([a-z0-9][a-z0-9-]{0,31})(?:@([A-Za-z0-9_.-]{1,64}))?")


@runtime_checkable
class PayloadCodec(Protocol):
    """A layer of encoding applied to every stored value, after the serializer: bytes to bytes.
    Pass a list to ``durably.App(codecs=[...])``; they apply in that order when writing (e.g.
    compression, then encryption) and in reverse when reading.

    ``names``: the layer names this codec writes and reads (lower-case letters, digits and
    ``-``), e.g. ``("zlib", "zstd")``; a stored value names its layers, and each is decoded by
    the codec of the App's chain that lists its name.

    See :class:`durably.codecs.Compression` and :class:`durably.codecs.Encryption`.
    """

    @property
    def names(self) -> Sequence[str]:
        """The layer names this codec writes and reads, e.g. ``("zlib", "zstd")``."""
        ...

    def encode(self, data: bytes) -> tuple[str, bytes] | None:
        """Encode ``data`` (the serializer's text as UTF-8, or the previous layer's output):
        ``(label, encoded bytes)``, where ``label`` is one of :attr:`names`, optionally followed
        by ``@`` and a parameter that decoding needs (letters, digits, ``_.-``; e.g. a key id:
        ``"aes-gcm@k2"``; it is stored in clear, so never a secret). None leaves the data as it
        is (no layer is recorded). Raising refuses the value (nothing is written)."""
        ...

    def decode(self, label: str, data: bytes) -> bytes:
        """Undo :meth:`encode` for a layer stored with ``label``. Raise (with a message that
        says what to do, and never a secret) when it cannot."""
        ...


def is_encoded(text: str) -> bool:
    """Whether stored ``text`` is an encoded value (starts with :data:`MARKER`)."""
    return text.startswith(MARKER)


def _split(text: str) -> tuple[list[str], str]:
    """The labels and the base64 part of an encoded value (ValueError if it is malformed)."""
    head, sep, body = text[len(MARKER) :].partition(":")
    if not sep:
        raise ValueError("no ':' after its layers")
    labels = head.split("+") if head else []
    for label in labels:
        if _LABEL.fullmatch(label) is None:
            raise ValueError(f"bad layer label {label[:80]!r}")
    return labels, body


def _shown(label: str) -> str:
    name, _, parameter = label.partition("@")
    return f"{name} key {parameter}" if parameter else name


def describe(text: str) -> str | None:
    """``"zlib, aes-gcm key k2, 123 bytes"`` for an encoded value (its layers and stored size;
    never decoded), ``"malformed, 123 bytes"`` for a damaged one; None for a plain value."""
    if not is_encoded(text):
        return None
    size = len(text)  # the envelope is ASCII: characters are bytes
    try:
        labels, _ = _split(text)
    except ValueError:
        return f"malformed, {size} bytes"
    return ", ".join([*(_shown(label) for label in labels), f"{size} bytes"])


class CodecChain:
    """The App's payload codecs, applied in order: :meth:`seal` what is about to be stored,
    :meth:`open` what was read."""

    def __init__(self, codecs: Sequence[PayloadCodec]) -> None:
        if isinstance(codecs, PayloadCodec) or not isinstance(codecs, Sequence | tuple):
            raise ConfigurationError(
                "codecs must be a list of payload codecs, e.g. "
                "durably.App(codecs=[durably.codecs.Compression(), durably.codecs.Encryption(...)])"
            )
        self.codecs = tuple(codecs)
        self._owner: dict[str, PayloadCodec] = {}
        for codec in self.codecs:
            kind = type(codec).__name__
            if not (
                callable(getattr(codec, "encode", None))
                and callable(getattr(codec, "decode", None))
            ):
                raise ConfigurationError(
                    f"{kind} is not a payload codec: it needs encode(data: bytes) -> "
                    "(label, bytes) | None and decode(label, data: bytes) -> bytes "
                    "(see durably.PayloadCodec)"
                )
            names = getattr(codec, "names", None)
            if isinstance(names, str) or not names:
                raise ConfigurationError(
                    f'payload codec {kind} has no names: set names = ("name", ...), the layer '
                    "names it writes and reads"
                )
            for name in names:
                if not isinstance(name, str) or _NAME.fullmatch(name) is None:
                    raise ConfigurationError(
                        f"payload codec {kind}: bad layer name {name!r} (lower-case letters, "
                        "digits and '-', at most 32)"
                    )
                if name in self._owner:
                    raise ConfigurationError(
                        f"two payload codecs read layer {name!r} "
                        f"({type(self._owner[name]).__name__} and {kind}): give each layer name "
                        "to one codec"
                    )
                self._owner[name] = codec

    def __bool__(self) -> bool:
        return bool(self.codecs)

    def __repr__(self) -> str:
        return f"CodecChain({list(self.codecs)!r})"

    def seal(self, text: str, what: str = "value", context: str = "") -> str:
        """``text`` (the serializer's) encoded by every codec of the chain, as stored text.
        Raises :class:`SerializationError` naming ``what`` (and ``context``: where it is from)
        if a codec refuses it."""
        data = text.encode("utf-8")
        labels: list[str] = []
        for codec in self.codecs:
            try:
                out = codec.encode(data)
            except SerializationError:
                raise
            except Exception as exc:
                raise SerializationError(
                    f"Cannot encode {what}{context}: payload codec {type(codec).__name__} raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if out is None:
                continue
            label, data = out
            match = _LABEL.fullmatch(label) if isinstance(label, str) else None
            if (
                match is None
                or self._owner.get(match.group(1)) is not codec
                or not isinstance(data, bytes)
            ):
                raise SerializationError(
                    f"Cannot encode {what}{context}: payload codec {type(codec).__name__} "
                    f"returned {label!r}, not (label, bytes) with a label of one of its names"
                )
            labels.append(label)
        if not labels and not text.startswith(MARKER):
            return text
        return MARKER + "+".join(labels) + ":" + base64.b64encode(data).decode("ascii")

    def open(self, text: str, what: str = "value") -> str:
        """Stored ``text`` decoded back to the serializer's text (a plain value as it is).
        Raises :class:`SerializationError` naming ``what`` when it cannot be."""
        if not text.startswith(MARKER):
            return text
        try:
            labels, body = _split(text)
            data = base64.b64decode(body, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise SerializationError(
                f"Cannot decode {what}: malformed encoded value ({exc})"
            ) from None
        for label in reversed(labels):
            name = label.partition("@")[0]
            codec = self._owner.get(name)
            if codec is None:
                raise SerializationError(
                    f"Cannot decode {what}: it is encoded with {_shown(label)}, and no payload "
                    f"codec of this App reads {name!r} layers ({self._known()}); add the codec "
                    "that wrote it to durably.App(codecs=[...])"
                )
            try:
                data = codec.decode(label, data)
            except SerializationError as exc:
                raise SerializationError(f"Cannot decode {what}: {exc.message}") from exc
            except Exception as exc:
                raise SerializationError(
                    f"Cannot decode {what}: payload codec {type(codec).__name__} raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SerializationError(
                f"Cannot decode {what}: its decoded bytes are not UTF-8 text"
            ) from None

    def _known(self) -> str:
        return (
            "its codecs read " + ", ".join(repr(n) for n in self._owner)
            if self._owner
            else "it has none"
        )
