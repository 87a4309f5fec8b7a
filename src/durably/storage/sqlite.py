"""The embedded SQLite backend: one file, WAL mode, full fsync on every commit by default.

Within a process all writes go through one connection guarded by a lock (no busy-waiting
between our own threads); reads use a connection per thread, which WAL lets run concurrently
with the writer. Across processes SQLite's file locks serialize writers (``busy_timeout``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from durably.errors import ConfigurationError, DatabaseUnavailableError
from durably.storage.base import (
    ClaimedWorkflow,
    JournalEntry,
    QueueClaim,
    StepAttempt,
    WorkerInfo,
    WorkflowRecord,
    WorkflowStatus,
    WriteOp,
)
from durably.storage.claiming import QueuePlanner
from durably.storage.rows import (
    JOURNAL_COLUMNS,
    TERMINAL_SQL,
    WF_COLUMNS,
    ListQuery,
    list_query,
    record_params,
    to_entry,
    to_record,
)
from durably.storage.sqlite_commands import SqliteCommands
from durably.storage.sqlite_groups import MIN_GROUP, can_group, write_grouped
from durably.storage.sqlite_ops import INSERT_WORKFLOW, apply
from durably.storage.sqlite_schema import MIGRATIONS

__all__ = ["SqliteStore"]

_LIST = ListQuery("?", "status IN (SELECT value FROM json_each(?))", json.dumps, "id")
"""How SQLite spells the parts of the list query that differ (ids compare bytewise)."""


class SqliteStore(QueuePlanner, SqliteCommands):
    """A :class:`~durably.storage.base.Store` in one SQLite file.

    ``synchronous="full"`` (the default) fsyncs every commit, so an acknowledged step survives
    power loss; ``"normal"`` survives process crashes only and is faster on slow disks.
    """

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

    def migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS durably_migrations "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            row = conn.execute("SELECT MAX(version) FROM durably_migrations").fetchone()
            current = row[0] or 0
            for version in sorted(v for v in MIGRATIONS if v > current):
                for statement in MIGRATIONS[version].split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO durably_migrations (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )

    def schema_version(self) -> int:
        """The highest migration applied to this database (0 if none)."""
        row = self._reader().execute("SELECT MAX(version) FROM durably_migrations").fetchone()
        return int(row[0] or 0)

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

    # -- workflows ---------------------------------------------------------------------------

    def create_workflow(self, record: WorkflowRecord) -> tuple[WorkflowRecord, bool]:
        with self._transaction() as conn:
            cur = conn.execute(INSERT_WORKFLOW, record_params(record))
            if cur.rowcount == 1:
                return record, True
            row = conn.execute(
                f"SELECT {WF_COLUMNS} FROM workflows WHERE id = ?", (record.id,)
            ).fetchone()
        return to_record(row), False

    def is_transient(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.OperationalError)  # locked, busy, disk I/O

    def write(self, ops: Sequence[WriteOp]) -> list[bool]:
        with self._transaction() as conn:
            if self._grouping and len(ops) >= MIN_GROUP:
                conn.execute("SAVEPOINT durably_group")
                applied = write_grouped(conn, ops, apply)
                if applied is None:  # some op was not applied: find out which, one by one
                    conn.execute("ROLLBACK TO durably_group")
                conn.execute("RELEASE durably_group")
                if applied is not None:
                    return applied
            return [apply(conn, op) for op in ops]

    def claim(
        self,
        owner: str,
        names: Iterable[str],
        now: float,
        lease_seconds: float,
        limit: int,
        queues: Sequence[QueueClaim] | None = None,
    ) -> list[ClaimedWorkflow]:
        wanted = sorted(set(names))
        with self._transaction() as conn:
            rows = self._claim_rows(conn, owner, wanted, now, lease_seconds, limit, queues)
            claims = {row[0]: ClaimedWorkflow(to_record(row)) for row in rows}
            replayed = [wid for wid, c in claims.items() if c.record.epoch > 1]
            if replayed:
                for row in conn.execute(
                    f"SELECT {JOURNAL_COLUMNS} FROM journal "
                    "WHERE workflow_id IN (SELECT value FROM json_each(?)) "
                    "ORDER BY workflow_id, seq",
                    (json.dumps(replayed),),
                ):
                    claims[row[0]].journal.append(to_entry(row))
            if claims:
                ids = json.dumps(list(claims))
                for event in self._inbox(conn, ids, 0):
                    claims[event.workflow_id].events.append(event)
                for parent, child in self._finished_children(conn, ids):
                    claims[parent].children.append(child)
        ordered = sorted(claims.values(), key=lambda c: (-c.record.priority, c.record.created_at))
        return ordered

    def _take(
        self,
        conn: sqlite3.Connection,
        owner: str,
        names: list[str],
        now: float,
        lease_seconds: float,
        limit: int,
        queues: list[str] | None,
        status: str | None,
    ) -> list[tuple[Any, ...]]:
        # INDEXED BY: without ANALYZE statistics SQLite may pick an index that cannot serve the
        # ORDER BY and sort every runnable row on each claim
        params: list[Any] = [owner, now + lease_seconds, now, now]
        if status is None:
            where = "INDEXED BY workflows_runnable WHERE status IN ('pending', 'running') "
            if queues is not None:
                where += "AND queue IN (SELECT value FROM json_each(?)) "
                params.append(json.dumps(queues))
        else:  # one queue's admitted or pending workflows, in the queue index's order
            assert queues is not None and len(queues) == 1
            where = "INDEXED BY workflows_queue_admitted WHERE queue = ? AND status = ? "
            params += [queues[0], status]
        params += [json.dumps(names), now, owner, now, limit]
        return conn.execute(
            "UPDATE workflows SET owner = ?, epoch = epoch + 1, lease_expires_at = ?, "
            "status = 'running', updated_at = ?, started_at = COALESCE(started_at, ?) "
            f"WHERE id IN (SELECT id FROM workflows {where}"
            "  AND name IN (SELECT value FROM json_each(?)) "
            "  AND (owner IS NULL OR (lease_expires_at < ? AND owner <> ?)) "
            "  AND (wake_at IS NULL OR wake_at <= ?) "
            "  ORDER BY priority DESC, created_at LIMIT ?) "
            f"RETURNING {WF_COLUMNS}",
            params,
        ).fetchall()

    def _lock_queue(self, conn: sqlite3.Connection, queue: str) -> None:
        """Nothing to do: claims run in BEGIN IMMEDIATE transactions, one writer at a time."""

    def _count_admitted(self, conn: sqlite3.Connection, queue: str, since: float | None) -> int:
        if since is None:
            row = conn.execute(
                "SELECT COUNT(*) FROM workflows INDEXED BY workflows_queue_admitted "
                "WHERE queue = ? AND status = 'running'",
                (queue,),
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT COUNT(*) FROM workflows INDEXED BY workflows_queue_started "
                "WHERE queue = ? AND started_at >= ?",
                (queue, since),
            ).fetchone()
        return int(row[0])

    def renew_leases(self, owner: str, until: float) -> set[str]:
        with self._transaction() as conn:
            rows = conn.execute(
                "UPDATE workflows SET lease_expires_at = ? WHERE owner = ? RETURNING id",
                (until, owner),
            ).fetchall()
        return {row[0] for row in rows}

    def release(self, owner: str, workflow_ids: Iterable[str] | None = None) -> None:
        with self._transaction() as conn:
            sql = (
                "UPDATE workflows SET owner = NULL, lease_expires_at = NULL "
                f"WHERE owner = ? AND status NOT IN ({TERMINAL_SQL})"
            )
            if workflow_ids is None:
                conn.execute(sql, (owner,))
            else:
                conn.execute(
                    sql + " AND id IN (SELECT value FROM json_each(?))",
                    (owner, json.dumps(list(workflow_ids))),
                )

    def expire_leases(self, owners: Iterable[str]) -> int:
        owners_json = json.dumps(list(owners))
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE workflows SET lease_expires_at = 0 "
                "WHERE owner IN (SELECT value FROM json_each(?))",
                (owners_json,),
            )
            return cur.rowcount

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        row = (
            self._reader()
            .execute(f"SELECT {WF_COLUMNS} FROM workflows WHERE id = ?", (workflow_id,))
            .fetchone()
        )
        return None if row is None else to_record(row)

    def list_workflows(
        self,
        *,
        statuses: Sequence[WorkflowStatus] | None = None,
        name: str | None = None,
        limit: int = 100,
        created_after: float | None = None,
        created_before: float | None = None,
        id_prefix: str | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[WorkflowRecord]:
        sql, params = list_query(
            _LIST, statuses=statuses, name=name, limit=limit, created_after=created_after,
            created_before=created_before, id_prefix=id_prefix, before=before,
        )  # fmt: skip
        rows = self._reader().execute(sql, params).fetchall()
        return [to_record(row) for row in rows]

    def get_journal(self, workflow_id: str) -> list[JournalEntry]:
        rows = (
            self._reader()
            .execute(
                f"SELECT {JOURNAL_COLUMNS} FROM journal WHERE workflow_id = ? ORDER BY seq",
                (workflow_id,),
            )
            .fetchall()
        )
        return [to_entry(row) for row in rows]

    def get_attempts(self, workflow_id: str) -> list[StepAttempt]:
        rows = (
            self._reader()
            .execute(
                "SELECT workflow_id, seq, attempt, error, owner, epoch, started_at, finished_at "
                "FROM step_attempts WHERE workflow_id = ? ORDER BY seq, epoch, attempt",
                (workflow_id,),
            )
            .fetchall()
        )
        return [StepAttempt(*row) for row in rows]

    # -- workers -----------------------------------------------------------------------------

    def register_worker(self, info: WorkerInfo) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO workers "
                "(id, hostname, pid, started_at, heartbeat_at, workflows, queues) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    info.id, info.hostname, info.pid, info.started_at, info.heartbeat_at,
                    json.dumps(info.workflows), json.dumps(info.queues),
                ),
            )  # fmt: skip

    def heartbeat_worker(self, worker_id: str, now: float) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ?", (now, worker_id))

    def remove_worker(self, worker_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def list_workers(self) -> list[WorkerInfo]:
        rows = (
            self._reader()
            .execute(
                "SELECT id, hostname, pid, started_at, heartbeat_at, workflows, queues "
                "FROM workers ORDER BY started_at"
            )
            .fetchall()
        )
        return [
            WorkerInfo(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]))
            for r in rows
        ]
