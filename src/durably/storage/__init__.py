"""Storage backends behind one :class:`Store` interface, opened from a database URL."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from durably.errors import ConfigurationError
from durably.storage.base import Store

__all__ = ["DEFAULT_DATABASE", "Store", "open_store", "resolve_database_url", "sqlite_path"]

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

    ``postgresql://user:password@host:port/dbname`` (or ``postgres://``) opens the PostgreSQL
    backend (``pip install durably[postgres]``); ``?schema=name`` keeps its tables in that
    schema and ``?synchronous_commit=off`` relaxes the flush of each commit (see
    :class:`~durably.storage.postgres.PostgresStore`).
    """
    url = resolve_database_url(url)
    if url.startswith(("postgres://", "postgresql://")):
        return _open_postgres(url)
    path, options = _sqlite_parts(url)
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


def sqlite_path(url: str | None = None) -> str | None:
    """The SQLite file a database URL names (resolved as :func:`open_store` resolves it), or
    None if the URL is not a SQLite file (PostgreSQL, ``:memory:``, no path, unsupported: let
    :func:`open_store` report those).

    The path is as SQLite opens it: relative paths are relative to the current directory.
    """
    url = resolve_database_url(url)
    if url.startswith(("postgres://", "postgresql://")):
        return None
    try:
        path, _ = _sqlite_parts(url)
    except ConfigurationError:
        return None
    if not path or path == ":memory:":
        return None
    return path


def _sqlite_parts(url: str) -> tuple[str, dict[str, str]]:
    """The file path and the options of a SQLite URL or bare path."""
    if url.startswith("sqlite://"):
        parts = urlsplit(url)
        path = url[len("sqlite:///") :].split("?", 1)[0] if url.startswith("sqlite:///") else ""
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return path, options
    if "://" not in url:
        return url, {}
    scheme = url.split("://", 1)[0]
    raise ConfigurationError(
        f"unsupported database URL scheme {scheme + '://'!r}: durably supports SQLite "
        "('sqlite:///path/to/file.db', or a bare file path such as 'data/app.db') and "
        "PostgreSQL ('postgresql://user@host/dbname' or 'postgres://...'); pass one of those "
        "(or set DURABLY_DB)"
    )


def _open_postgres(url: str) -> Store:
    try:
        from durably.storage.postgres import PostgresStore
    except ImportError as exc:
        raise ConfigurationError(
            f"database URL {url.split('@')[-1]!r} needs the PostgreSQL driver, which is not "
            "installed: pip install 'durably[postgres]' (psycopg and psycopg-pool)"
        ) from exc
    return PostgresStore(url)
