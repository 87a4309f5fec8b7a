"""Storage backends behind one :class:`Store` interface, opened from a database URL.

The modules, from the contract down:

- ``base``: the :class:`Store` contract and its records and write ops; ``rows``: row mapping.
- ``dialect``: how each SQL backend spells what differs (placeholders, id lists, row locks,
  notifications, column types), as slots the shared statements are rendered with, once.
- ``sql_store``, ``claiming``, ``sql_commands``, ``sql_ops``, ``schema``: every statement and
  migration written once, for every dialect (``SqlStore`` implements the whole contract).
- ``sqlite``, ``postgres`` (with ``postgres_ops``, ``*_groups``): only what really differs:
  connections and pool, SQLite's single writer, PostgreSQL's LISTEN, each group commit.

A new SQL backend is a :class:`~durably.storage.dialect.Dialect`, its connection code, and the
store contract suite (``tests/test_store_contract*.py``) green.
"""

from __future__ import annotations

import os
import shlex
from urllib.parse import parse_qs, parse_qsl, urlsplit

from durably.errors import ConfigurationError, DatabaseUnavailableError
from durably.storage.base import Store
from durably.storage.urls import check_schema_name, redact_url

__all__ = [
    "DEFAULT_DATABASE",
    "Store",
    "check_database_url",
    "missing_database",
    "open_store",
    "redact_url",
    "resolve_database_url",
    "sqlite_path",
]

DEFAULT_DATABASE = "sqlite:///durably.db"


def resolve_database_url(url: str | None) -> str:
    """The database URL to use: the argument, else ``$DURABLY_DB``, else ``./durably.db``."""
    if url:
        return url
    return os.environ.get("DURABLY_DB") or DEFAULT_DATABASE


def check_database_url(url: str) -> None:
    """Refuse at once what can be told from a database URL alone, before anything connects:
    a PostgreSQL ``?schema=`` that PostgreSQL would truncate, or a system schema."""
    if url.startswith(("postgres://", "postgresql://")):
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
        schema = next((v for k, v in reversed(query) if k == "schema"), "")
        if schema:
            check_schema_name(schema)


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
            f"database URL {redact_url(url)!r} names no file: durably needs a SQLite file "
            "shared by its worker and clients, e.g. 'sqlite:///durably.db'"
        )
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(sorted(unknown))} in database URL "
            f"{redact_url(url)!r}; a SQLite database supports only synchronous=full|normal "
            "(e.g. 'durably.db?synchronous=normal')"
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


def missing_database(db: str | None) -> DatabaseUnavailableError | None:
    """The error of a command that would open ``db`` (``--db``, else ``$DURABLY_DB``, else
    ``./durably.db``) when it names a SQLite file that does not exist, else None.

    Opening such a URL would create an empty database (an App migrates on first use), so a
    typo would list nothing instead of failing: only ``durably worker`` and ``durably migrate``
    create a database. PostgreSQL URLs, and URLs that name no file, are left to the store.
    """
    url = resolve_database_url(db)
    path = sqlite_path(url)
    if path is None or os.path.lexists(path) or not os.path.isdir(os.path.dirname(path) or "."):
        return None  # a missing folder is a bad URL, which the store reports (exit 2)
    if db:
        source = "from --db"
    elif os.environ.get("DURABLY_DB"):
        source = "from $DURABLY_DB"
    else:
        source = "the default: neither --db nor $DURABLY_DB is set"
    return DatabaseUnavailableError(
        f"no database exists at {os.path.abspath(path)!r} ({source}); nothing was created. "
        "Check the path, or create the database first: "
        f"`durably migrate --db {shlex.quote(url)}`, or start a worker on it"
    )


def _sqlite_parts(url: str) -> tuple[str, dict[str, str]]:
    """The file path and the options of a SQLite URL or bare path (``durably.db?synchronous=
    normal``: a bare path takes options after ``?`` too, so a file name cannot hold a ``?``)."""
    if url.startswith("sqlite://"):
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        return _path_options(path)
    if "://" not in url:
        return _path_options(url)
    scheme = url.split("://", 1)[0]
    raise ConfigurationError(
        f"unsupported database URL scheme {scheme + '://'!r}: durably supports SQLite "
        "('sqlite:///path/to/file.db', or a bare file path such as 'data/app.db') and "
        "PostgreSQL ('postgresql://user@host/dbname' or 'postgres://...'); pass one of those "
        "(or set DURABLY_DB)"
    )


def _path_options(path: str) -> tuple[str, dict[str, str]]:
    path, _, query = path.partition("?")
    # blank values kept: 'synchronous=' or a bare 'synchronous' is refused, not ignored
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    return path, options


def _open_postgres(url: str) -> Store:
    try:
        from durably.storage.postgres import PostgresStore
    except ImportError as exc:
        raise ConfigurationError(
            f"database URL {redact_url(url)!r} needs the PostgreSQL driver, which is not "
            "installed: pip install 'durably[postgres]' (psycopg and psycopg-pool)"
        ) from exc
    return PostgresStore(url)
