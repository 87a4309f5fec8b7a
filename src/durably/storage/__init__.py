"""Storage backends behind one :class:`Store` interface, opened from a database URL."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from durably.errors import ConfigurationError
from durably.storage.base import Store

__all__ = ["DEFAULT_DATABASE", "Store", "open_store", "resolve_database_url"]

DEFAULT_DATABASE = "sqlite:///durably.db"


def resolve_database_url(url: str | None) -> str:
    """The database URL to use: the argument, else ``$DURABLY_DB``, else ``./durably.db``."""
    if url:
        return url
    return os.environ.get("DURABLY_DB") or DEFAULT_DATABASE


def open_store(url: str | None = None) -> Store:
    """Open (without migrating) the store a URL names.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or a bare file path ending in
    ``.db``/``.sqlite``/``.sqlite3`` open the SQLite backend; ``?synchronous=normal`` relaxes
    fsync (see :class:`~durably.storage.sqlite.SqliteStore`).
    """
    url = resolve_database_url(url)
    if url.startswith(("postgres://", "postgresql://")):
        raise ConfigurationError(
            f"the PostgreSQL backend is not available in this version of durably ({url!r}); "
            "use a SQLite URL such as 'sqlite:///durably.db'"
        )
    if url.startswith("sqlite://"):
        parts = urlsplit(url)
        path = url[len("sqlite:///") :].split("?", 1)[0] if url.startswith("sqlite:///") else ""
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    elif "://" not in url:
        path, options = url, {}
    else:
        raise ConfigurationError(
            f"unsupported database URL {url!r}: use 'sqlite:///path/to/file.db' (or set DURABLY_DB)"
        )
    if not path or path == ":memory:":
        raise ConfigurationError(
            f"database URL {url!r} names no file: durably needs a SQLite file shared by its "
            "worker and clients, e.g. 'sqlite:///durably.db'"
        )
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {sorted(unknown)} in database URL {url!r}; "
            "supported: synchronous=full|normal"
        )
    from durably.storage.sqlite import SqliteStore

    return SqliteStore(path, synchronous=options.get("synchronous", "full"))
