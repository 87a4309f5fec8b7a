"""``Encryption``: a payload codec that encrypts every value with AES-GCM, under rotating keys.

Each encrypted value is stored as the layer label ``aes-gcm@<key id>`` (in clear) and the bytes
``nonce (12, random per value) + ciphertext + tag (16)``; the label is the associated data, so
a value cannot be passed off as encrypted under another key id or algorithm. Values are not
bound to their workflow (durably's read paths do not all know it): whoever can write the
database can move a ciphertext from one row to another, not read or alter it.

Keys never appear in an error, a log line or a ``repr``: only their ids do.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from typing import Any

from durably.errors import ConfigurationError, SerializationError

__all__ = ["KEYS_ENV", "Encryption"]

KEYS_ENV = "DURABLY_ENCRYPTION_KEYS"
"""The environment variable :meth:`Encryption.from_env` reads by default."""

_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NONCE = 12
_TAG = 16
_ADVICE = "use 16, 24 or 32 random bytes, e.g. os.urandom(32)"


def _aesgcm() -> tuple[Any, type[Exception]]:
    """cryptography's AESGCM class and its InvalidTag error."""
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ConfigurationError(
            "durably.codecs.Encryption needs the cryptography package: "
            "pip install 'durably[encryption]'"
        ) from None
    return AESGCM, InvalidTag


class Encryption:
    """Encrypt every stored value with AES-GCM (``pip install 'durably[encryption]'``).

    ``keys``: key id -> key (16, 24 or 32 bytes); ``active``: the id of the key new values are
    encrypted with (may be omitted when there is one key). Each value records its key id, so
    keys rotate: add a new key and make it active, keep the old ones for the values written
    with them (until those are purged or rewritten). A value whose key id is not in ``keys``
    cannot be read, with an error naming the key id.

    Key ids are stored in clear next to each value: letters, digits, ``_``, ``.``, ``-``.
    """

    names = ("aes-gcm",)

    def __init__(self, keys: Mapping[str, bytes], active: str | None = None) -> None:
        if not isinstance(keys, Mapping) or not keys:
            raise ConfigurationError(
                "Encryption needs keys: a dict of key id -> key bytes, e.g. "
                "Encryption(keys={'k1': key}) with key = os.urandom(32)"
            )
        aesgcm, self._invalid_tag = _aesgcm()
        self._ciphers: dict[str, Any] = {}
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or _KEY_ID.fullmatch(key_id) is None:
                shown = key_id if isinstance(key_id, str) and len(key_id) <= 64 else "(too long)"
                raise ConfigurationError(
                    f"Encryption key id {shown!r} is not valid: use 1 to 64 letters, digits, "
                    "'_', '.' or '-' (it is stored in clear with each value)"
                )
            if not isinstance(key, bytes | bytearray):
                raise ConfigurationError(
                    f"Encryption key {key_id!r} is a {type(key).__name__}, not bytes: {_ADVICE} "
                    "(decode a base64 or hex text first)"
                )
            if len(key) not in (16, 24, 32):
                raise ConfigurationError(
                    f"Encryption key {key_id!r} is {len(key)} bytes long; AES-GCM keys are 16, "
                    f"24 or 32 bytes: {_ADVICE}"
                )
            self._ciphers[key_id] = aesgcm(bytes(key))
        if active is None:
            if len(self._ciphers) > 1:
                raise ConfigurationError(
                    f"Encryption has {len(self._ciphers)} keys: say which one encrypts new "
                    f"values with active=... (one of {self._ids()})"
                )
            active = next(iter(self._ciphers))
        if active not in self._ciphers:
            raise ConfigurationError(
                f"Encryption active key {active!r} is not among its keys ({self._ids()})"
            )
        self.active = active
        """The id of the key new values are encrypted with."""
        self._label = f"aes-gcm@{active}"
        self._active_cipher = self._ciphers[active]

    @classmethod
    def from_env(cls, variable: str = KEYS_ENV) -> Encryption:
        """An Encryption from an environment variable holding ``ID:KEY[,ID:KEY...]``, each key
        base64 (standard or URL-safe); the first key is the active one. E.g.
        ``DURABLY_ENCRYPTION_KEYS=k2:<base64>,k1:<base64>``. Errors name the variable and the
        key id, never a key."""
        text = os.environ.get(variable, "").strip()
        if not text:
            raise ConfigurationError(
                f"${variable} is not set: set it to ID:KEY[,ID:KEY...] (keys in base64, the "
                "first one encrypts new values)"
            )
        keys: dict[str, bytes] = {}
        for position, part in enumerate(text.split(","), 1):
            key_id, sep, encoded = part.strip().partition(":")
            if not sep or not key_id:
                raise ConfigurationError(
                    f"${variable}: entry {position} is not ID:KEY (keys in base64, separated "
                    "by commas)"
                )
            if key_id in keys:
                raise ConfigurationError(f"${variable}: key id {key_id!r} is given twice")
            try:
                padded = encoded.strip() + "=" * (-len(encoded.strip()) % 4)
                keys[key_id] = base64.b64decode(
                    padded.replace("-", "+").replace("_", "/"), validate=True
                )
            except (binascii.Error, ValueError):
                raise ConfigurationError(
                    f"${variable}: the key of id {key_id!r} is not valid base64"
                ) from None
        return cls(keys, active=next(iter(keys)))

    def _ids(self) -> str:
        return ", ".join(repr(k) for k in self._ciphers)

    @property
    def key_ids(self) -> list[str]:
        """The ids of the keys it holds (the keys themselves are never shown)."""
        return list(self._ciphers)

    def __repr__(self) -> str:
        return f"Encryption(key_ids={self.key_ids!r}, active={self.active!r})"

    def encode(self, data: bytes) -> tuple[str, bytes]:
        """``("aes-gcm@<active key id>", nonce + ciphertext + tag)``, a new random nonce each
        time."""
        nonce = os.urandom(_NONCE)
        sealed: bytes = self._active_cipher.encrypt(nonce, data, self._label.encode("ascii"))
        return self._label, nonce + sealed

    def decode(self, label: str, data: bytes) -> bytes:
        """Decrypt a value encrypted under the key id its ``label`` names."""
        name, _, key_id = label.partition("@")
        cipher = self._ciphers.get(key_id) if name == "aes-gcm" else None
        if cipher is None:
            raise SerializationError(
                f"it was encrypted with key id {key_id!r}, which this App's Encryption does not "
                f"hold (its keys: {self._ids()}); add that key to Encryption(keys={{...}})"
            )
        if len(data) < _NONCE + _TAG:
            raise SerializationError(
                f"its aes-gcm layer (key id {key_id!r}) is too short: the stored value is damaged"
            )
        try:
            plain: bytes = cipher.decrypt(data[:_NONCE], data[_NONCE:], label.encode("ascii"))
        except self._invalid_tag:
            raise SerializationError(
                f"it cannot be decrypted with key id {key_id!r}: the key under that id is not "
                "the one that encrypted it, or the stored value was altered"
            ) from None
        return plain
