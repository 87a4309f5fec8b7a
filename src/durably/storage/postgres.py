"""The PostgreSQL backend: psycopg 3 with a connection pool, for many workers on many hosts.

Every method borrows a pooled connection (autocommit off) and runs one transaction (READ
COMMITTED). ``claim`` uses ``FOR UPDATE SKIP LOCKED`` so concurrent workers never wait on, or
share, a workflow. A store lives in a schema of its own (``durably`` unless ``schema=`` or
``?schema=name`` in the URL names another): it is created if missing and set as
``search_path`` on every pooled connection, so durably's tables never meet the user's.

Writes that make work runnable send ``NOTIFY durably`` in their transaction; :meth:`listen`
holds one extra, unpooled connection that LISTENs and wakes the worker at once (see
:class:`PostgresListener`).
"""

from __future__ import annotations

import logging
import select
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from durably.errors import ConfigurationError, DatabaseUnavailableError
from durably.storage import urls
from durably.storage.base import RecordAttempt, RecordEntry, WriteOp
from durably.storage.dialect import CHANNEL, POSTGRES
from durably.storage.postgres_ops import write_batch
from durably.storage.sql_store import SqlStore

__all__ = ["PostgresListener", "PostgresStore", "check_conninfo"]

_ALONE = (RecordEntry, RecordAttempt)
"""Ops written alone in autocommit mode: one statement, fenced while locking the row, no
notification (a sequential workflow's every step)."""

Conn: TypeAlias = psycopg.Connection[tuple[Any, ...]]

log = logging.getLogger("durably.storage.postgres")


def _check_connection(conn: Conn) -> None:
    """The pool's check of a connection it is about to lend: a round trip only if the server
    sent something while it sat idle (a server shutting down or killing the session says so
    before it closes the socket); raises if the connection is dead, so the pool replaces it."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        readable = [True]
    if readable or conn.broken:
        ConnectionPool.check_connection(conn)


RECONNECT_SECONDS = 5.0
"""How long the pool retries a failed connection (with backoff) before it waits for demand."""

SYNCHRONOUS_COMMIT = ("on", "off")
"""Values of the ``?synchronous_commit=`` URL option: ``on`` (the default: every acknowledged
step is on disk) or ``off`` (commits are acknowledged before they are flushed)."""


def _split_url(url: str) -> tuple[str, str | None, str | None]:
    """The URL without durably's own options, and the ``schema`` and ``synchronous_commit``
    options (None when absent)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = ("schema", "synchronous_commit")
    schema = next((v for k, v in reversed(query) if k == "schema"), None)
    sync = next((v for k, v in reversed(query) if k == "synchronous_commit"), None)
    if sync is not None and sync not in SYNCHRONOUS_COMMIT:
        raise ConfigurationError(
            f"synchronous_commit must be 'on' or 'off' in the database URL, got {sync!r}; "
            "'off' trades the last moments of acknowledged steps on a server crash for speed"
        )
    rest = urlencode([(k, v) for k, v in query if k not in own])
    return urlunsplit(parts._replace(query=rest)), schema or None, sync


def _one_line(exc: BaseException, *secret_bearing: str) -> str:
    """A driver's error on one line, with the secrets of the URLs it may echo hidden."""
    return urls.scrub(" ".join(str(exc).split()), *secret_bearing)


def check_conninfo(url: str, conninfo: str) -> None:
    """Refuse a URL libpq cannot parse, or parses otherwise than it reads (a password with an
    unencoded ``@`` or ``/`` would be read as part of the host, and echoed in its errors)."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"database URL {urls.redact_url(url)} is not a valid PostgreSQL URL "
            f"({_one_line(exc, url, conninfo)}); percent-encode special characters in the user "
            "name and password (e.g. '@' as %40, '/' as %2F, '%' as %25)"
        ) from None
    password = urls.url_password(conninfo)
    if password is not None and unquote(password) != params.get("password"):
        raise ConfigurationError(
            f"the password in database URL {urls.redact_url(url)} holds a character that must "
            "be percent-encoded ('@' as %40, '/' as %2F, '%' as %25): PostgreSQL would read "
            "part of it as the host or the database name"
        )


class PostgresStore(SqlStore):
    """A :class:`~durably.storage.base.Store` in a PostgreSQL database.

    ``url`` is a ``postgresql://user:password@host:port/dbname`` URL (libpq options such as
    ``sslmode`` may be added as query parameters). durably's tables live in schema ``durably``,
    or in ``schema`` (or ``?schema=name``): a name PostgreSQL keeps as written (63 bytes at
    most) and not a system schema, else :class:`ConfigurationError`.

    Every acknowledged step is flushed to disk by default (the server's ``synchronous_commit``).
    ``?synchronous_commit=off`` opts out for durably's connections: commits are acknowledged
    before their WAL is flushed, so a crash of the *server* (not of a worker) can lose the last
    fraction of a second of acknowledged steps, which then run again; the database stays
    consistent and fencing is unchanged. For users who fear process crashes, not power loss.
    """

    _dialect = POSTGRES

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        conninfo, url_schema, self.synchronous_commit = _split_url(url)
        check_conninfo(url, conninfo)
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self.schema = urls.check_schema_name(schema or url_schema or urls.DEFAULT_SCHEMA)
        self._where = urls.redact_url(url)
        """The database as messages name it: no password, no secret option."""
        self._closed = False
        try:
            conn = psycopg.connect(
                conninfo, autocommit=False, connect_timeout=max(1, int(connect_timeout))
            )
        except psycopg.Error as exc:
            raise DatabaseUnavailableError(
                f"cannot connect to PostgreSQL at {self._where} "
                f"({_one_line(exc, url, conninfo)}); check that the server is running and "
                "reachable, and the user, password and database name in the URL (or DURABLY_DB)"
            ) from None  # the driver's own error may echo parts of the URL
        with conn:
            self._create_schema(conn)
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": False},
            configure=self._configure,
            # a connection the server dropped (restart, failover, idle kill) is replaced when
            # it is borrowed, so a call right after a restart does not fail on a dead one
            check=_check_connection,
            # with the server down, a caller waits at most connect_timeout for a connection,
            # and reconnection attempts give up after RECONNECT_SECONDS (to start again, from
            # a short delay, at the next demand): the pool's backoff otherwise grows without a
            # cap, and a server back after a long outage would go unnoticed for minutes
            timeout=connect_timeout,
            reconnect_timeout=RECONNECT_SECONDS,
            open=False,
            name="durably",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise DatabaseUnavailableError(
                f"cannot open a connection pool to PostgreSQL at {self._where} within "
                f"{connect_timeout}s; check that the server accepts more connections"
            ) from exc

    def _create_schema(self, conn: Conn) -> None:
        """Create the store's schema unless it exists (which needs no privilege on the
        database)."""
        try:
            # several processes may start at once: serialize the creation
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", ("durably.schema." + self.schema,)
            )
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
            conn.commit()
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailableError(
                f"lost the connection to PostgreSQL at {self._where} while creating schema "
                f"{self.schema!r} ({_one_line(exc, self._conninfo)}); retry"
            ) from None
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"cannot create the PostgreSQL schema {self.schema!r} for durably's tables at "
                f"{self._where} ({_one_line(exc, self._conninfo)}); create it first "
                f'(CREATE SCHEMA "{self.schema}" AUTHORIZATION the_user) or grant the user '
                "CREATE on the database, or name a schema the user owns with ?schema=NAME"
            ) from None

    def _configure(self, conn: Conn) -> None:
        if self.schema:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        if self.synchronous_commit is not None:
            conn.execute(
                sql.SQL("SET synchronous_commit TO {}").format(sql.Literal(self.synchronous_commit))
            )
        if self.schema or self.synchronous_commit is not None:
            conn.commit()

    @contextmanager
    def _transaction(self) -> Iterator[Conn]:
        """One transaction on a pooled connection: committed on exit, rolled back on error."""
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Conn]:
        """A pooled connection in autocommit mode: one round trip per statement (no BEGIN and
        COMMIT around it), each its own transaction. For reads (which see no common snapshot)
        and single-statement writes."""
        with self._pool.connection() as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                conn.autocommit = False

    def migrate(self) -> None:
        try:
            self._migrate()
        except psycopg.OperationalError:
            raise  # the connection, not the schema: transient
        except (psycopg.errors.DuplicateTable, psycopg.errors.DuplicateObject) as exc:
            raise ConfigurationError(
                f"cannot create durably's tables in PostgreSQL schema {self.schema!r} at "
                f"{self._where}: {exc.diag.message_primary or 'a name is taken'}, by another "
                "application's table; nothing was changed. durably keeps its tables in a schema "
                "of its own: name a new (or durably's own) schema with ?schema=NAME in the "
                f"database URL (the default is {urls.DEFAULT_SCHEMA!r}), or move that table away"
            ) from None
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"cannot create or upgrade durably's tables in PostgreSQL schema "
                f"{self.schema!r} at {self._where} ({_one_line(exc, self._conninfo)}); nothing "
                "was changed. Check that the user may create tables in that schema, and that "
                "its tables are durably's own (else name another schema with ?schema=NAME)"
            ) from None

    def listen(self, callback: Callable[[str], None]) -> PostgresListener:
        """LISTEN on a dedicated connection (in a daemon thread) and call ``callback(kind)`` on
        each wake-up of this store's schema; reconnects on its own. Returns once listening (or
        after ``connect_timeout`` if the server cannot be reached: it keeps retrying)."""
        listener = PostgresListener(
            self._conninfo, self.schema, callback, connect_timeout=self._connect_timeout
        )
        listener.start()
        return listener

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()

    # -- writes ----------------------------------------------------------------------------

    def is_transient(self, error: Exception) -> bool:
        # connection lost, server shutting down, deadlock or serialization failure; not this
        # store closed (PoolClosed is an OperationalError too, but no retry can succeed)
        if isinstance(error, PoolClosed):
            return False
        return isinstance(error, psycopg.OperationalError | PoolTimeout)

    def _writing(self, ops: Sequence[WriteOp]) -> AbstractContextManager[Conn]:
        if len(ops) == 1 and type(ops[0]) in _ALONE:
            # one statement that checks its own fence (locking the workflow's row) and wakes
            # nobody: its own transaction, one round trip instead of BEGIN, it and COMMIT
            return self._read()
        return self._transaction()

    def _apply_batch(self, conn: Conn, ops: Sequence[WriteOp], wake: set[str]) -> list[bool]:
        return write_batch(conn, ops, wake)


class PostgresListener:
    """One LISTEN connection (autocommit, not pooled) served by a daemon thread.

    Calls ``callback(kind)`` for each notification of its schema. When the connection is lost
    it logs, backs off (0.1 s doubling up to 5 s), reconnects, LISTENs again and calls
    ``callback("reconnect")``: notifications sent meanwhile are lost, so the receiver looks for
    work once. Calling the listener (or :meth:`stop`) stops it.
    """

    def __init__(
        self,
        conninfo: str,
        schema: str | None,
        callback: Callable[[str], None],
        *,
        connect_timeout: float = 10.0,
    ) -> None:
        self._conninfo = conninfo
        self._schema = schema
        self._callback = callback
        self._connect_timeout = connect_timeout
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None
        self.application_name = f"durably-listener-{uuid.uuid4().hex[:12]}"
        """Shown in ``pg_stat_activity``: tells this listener's backend apart."""
        self.backend_pid: int | None = None
        """The server process of the current connection (None while disconnected)."""
        self.reconnects = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="durably-listen", daemon=True)
        self._thread.start()
        self._listening.wait(self._connect_timeout)

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def __call__(self) -> None:
        self.stop()

    def _fire(self, kind: str) -> None:
        try:
            self._callback(kind)
        except Exception:  # a broken receiver must not kill the listener
            log.exception("durably listener callback failed")

    def _run(self) -> None:
        backoff = 0.1
        missed = False  # notifications may have been sent while we were not listening
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, application_name=self.application_name,
                    connect_timeout=max(1, int(self._connect_timeout)),
                ) as conn:  # fmt: skip
                    if self._schema:
                        conn.execute(
                            sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema))
                        )
                    row = conn.execute("SELECT COALESCE(current_schema(), '')").fetchone()
                    prefix = f"{row[0] if row else ''}:"
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                    self.backend_pid = conn.info.backend_pid
                    self._listening.set()
                    if missed:
                        self.reconnects += 1
                        # a warning, like the loss it ends: at the default log level an
                        # operator sees both that the connection dropped and that it is back
                        log.warning("durably listener reconnected")
                        self._fire("reconnect")
                    missed = False
                    backoff = 0.1
                    while not self._stopping.is_set():
                        for n in conn.notifies(timeout=0.5):
                            if n.payload.startswith(prefix):
                                self._fire(n.payload[len(prefix) :])
                            if self._stopping.is_set():
                                break
            except Exception as exc:  # psycopg.Error mostly; anything else must not end it
                self.backend_pid = None
                missed = True
                if self._stopping.is_set():
                    break
                log.warning(
                    "durably listener lost its connection (%s); reconnecting in %.1fs",
                    _one_line(exc, self._conninfo), backoff,
                )  # fmt: skip
                self._listening.set()  # start() must not wait: the worker polls meanwhile
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.backend_pid = None
