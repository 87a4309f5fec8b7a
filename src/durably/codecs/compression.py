"""``Compression``: a payload codec that compresses values above a size threshold."""

from __future__ import annotations

import importlib
import threading
import zlib
from typing import Any, Literal

from durably.errors import ConfigurationError, SerializationError

__all__ = ["Compression"]

_ZSTD_ADVICE = "install the zstandard package: pip install 'durably[zstd]'"


def _zstandard(why: str) -> Any:
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        raise ConfigurationError(f"{why} needs zstd: {_ZSTD_ADVICE}") from None


class Compression:
    """Compress each stored value of at least ``threshold`` bytes (after serialization) with
    ``algorithm``: ``"zlib"`` (standard library) or ``"zstd"`` (faster, needs the
    ``zstandard`` package: ``pip install 'durably[zstd]'``). ``level``: the algorithm's
    level (default: zlib 6, zstd 3). A value that would not shrink (stored compressed values
    are base64, a third larger than the compressed bytes) is stored as it is.

    Reads both zlib and zstd layers whatever ``algorithm`` is, so the algorithm can change
    without rewriting stored values. Put it before an :class:`Encryption` in the chain
    (encrypted bytes do not compress)."""

    names = ("zlib", "zstd")

    def __init__(
        self,
        threshold: int = 1024,
        algorithm: Literal["zlib", "zstd"] = "zlib",
        level: int | None = None,
    ) -> None:
        if type(threshold) is not int or threshold < 0:
            raise ConfigurationError(
                f"Compression threshold must be a whole number of bytes, got {threshold!r}"
            )
        if algorithm not in self.names:
            raise ConfigurationError(
                f"Compression algorithm must be 'zlib' or 'zstd', got {algorithm!r}"
            )
        if level is not None and type(level) is not int:
            raise ConfigurationError(f"Compression level must be an int, got {level!r}")
        self.threshold = threshold
        self.algorithm = algorithm
        self.level = level
        self._compress: Any
        self._local = threading.local()  # a zstd context is not to be used by two threads at once
        if algorithm == "zstd":
            zstandard = _zstandard("Compression(algorithm='zstd')")
            zstd_level = 3 if level is None else level
            try:
                zstandard.ZstdCompressor(level=zstd_level)  # a bad level fails now
            except Exception as exc:
                raise ConfigurationError(f"zstd level {level!r} is not valid: {exc}") from None

            def compress(data: bytes) -> bytes:
                compressor = getattr(self._local, "compressor", None)
                if compressor is None:
                    compressor = self._local.compressor = zstandard.ZstdCompressor(zstd_level)
                out: bytes = compressor.compress(data)
                return out

            self._compress = compress
        else:
            zlib_level = 6 if level is None else level
            if not -1 <= zlib_level <= 9:
                raise ConfigurationError(f"zlib level must be from -1 to 9, got {level}")
            self._compress = lambda data: zlib.compress(data, zlib_level)

    def __repr__(self) -> str:
        return f"Compression(threshold={self.threshold}, algorithm={self.algorithm!r})"

    def encode(self, data: bytes) -> tuple[str, bytes] | None:
        """``(algorithm, compressed)``; None below the threshold or when it does not shrink."""
        if len(data) < self.threshold:
            return None
        out: bytes = self._compress(data)
        # stored as base64 (4 characters per 3 bytes) behind a short header: worth it only if
        # that is still smaller than the value as it is
        return (self.algorithm, out) if (len(out) + 2) // 3 * 4 + 24 < len(data) else None

    def decode(self, label: str, data: bytes) -> bytes:
        """Decompress a ``zlib`` or ``zstd`` layer."""
        try:
            if label == "zlib":
                return zlib.decompress(data)
            if label == "zstd":
                decompressor = getattr(self._local, "decompressor", None)
                if decompressor is None:
                    why = "reading a value compressed with zstd"
                    decompressor = _zstandard(why).ZstdDecompressor()
                    self._local.decompressor = decompressor
                out: bytes = decompressor.decompress(data)
                return out
        except ConfigurationError as exc:
            raise SerializationError(exc.message) from None
        except Exception as exc:
            raise SerializationError(
                f"its {label} layer cannot be decompressed ({type(exc).__name__}: {exc}): the "
                "stored value is damaged"
            ) from None
        raise SerializationError(f"Compression does not read {label!r} layers")
