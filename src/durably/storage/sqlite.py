"""The embedded SQLite backend: one file, WAL mode, full fsync on every commit by default.

Within a process all writes go through one connection guarded by a lock (no busy-waiting
between our own threads); reads use a connection per thread, which WAL lets run concurrently
with the writer. Across processes SQLite's file locks serialize writers (``busy_timeout``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from durably.errors import ConfigurationError, DatabaseUnavailableError
from durably.storage.base import WriteOp
from durably.storage.dialect import SQLITE
from durably.storage.sql_store import SqlStore
from durably.storage.sqlite_groups import MIN_GROUP, can_group, write_grouped

__all__ = ["SqliteStore"]


class SqliteStore(SqlStore):
    """A :class:`~durably.storage.base.Store` in one SQLite file.

    ``synchronous="full"`` (the default) fsyncs every commit, so an acknowledged step survives
    power loss; ``"normal"`` survives process crashes only and is faster on slow disks.
    """

    _dialect = SQLITE
    quick_reads = True  # a local file in WAL mode: readers never wait for writers

    def __init__(self, path: str | Path, *, synchronous: str = "full") -> None:
        if synchronous not in ("full", "normal"):
            raise ConfigurationError(f"synchronous must be 'full' or 'normal', got {synchronous!r}")
        self.path = str(path)
        self._synchronous = synchronous
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.exists():
                raise ConfigurationError(
                    f"cannot open SQLite database {self.path!r}: folder {str(parent)!r} does not "
                    "exist; create it or point DURABLY_DB / durably.App(...) elsewhere"
                )
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._grouping = can_group(self._writer)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False

    # -- connections -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous.upper()}")
            conn.execute("PRAGMA busy_timeout = 30000")
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnavailableError(
                f"cannot open SQLite database {self.path!r}: {exc}; check the path and that the "
                "file is a SQLite database"
            ) from exc
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:  # a read after close must not open (and leak) a new connection
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """This thread's reader (WAL: it runs alongside the writer)."""
        yield self._reader()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            self._writer.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    # -- writes ----------------------------------------------------------------------------

    def is_transient(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.OperationalError)  # locked, busy, disk I/O

    def _apply_batch(
        self, conn: sqlite3.Connection, ops: Sequence[WriteOp], wake: set[str]
    ) -> list[bool]:
        apply = self._ops.apply
        if self._grouping and len(ops) >= MIN_GROUP:
            conn.execute("SAVEPOINT durably_group")
            applied = write_grouped(conn, ops, lambda c, op: apply(c, op, wake))
            if applied is None:  # some op was not applied: find out which, one by one
                conn.execute("ROLLBACK TO durably_group")
                wake.clear()
            conn.execute("RELEASE durably_group")
            if applied is not None:
                return applied
        return [apply(conn, op, wake) for op in ops]
