"""The SQL stores' shared half: every statement of the :class:`~durably.storage.base.Store`
contract written once, rendered for the backend's :class:`~durably.storage.dialect.Dialect`.

A backend subclasses :class:`SqlStore` with its dialect and supplies only what really differs:
its connections (``_transaction``, ``_read``), its group commit (``_apply_batch``), and its own
ways of listening or locking files. Every write goes through :meth:`SqlStore.write`, which hands
what the ops made runnable to the dialect's ``notify``.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Unpack

from durably.storage.base import (
    JournalEntry,
    StepAttempt,
    WorkerInfo,
    WorkflowRecord,
    WriteOp,
)
from durably.storage.claiming import ClaimStatements, SqlClaims
from durably.storage.dialect import Dialect
from durably.storage.rows import (
    JOURNAL_COLUMNS,
    TERMINAL_SQL,
    WF_COLUMNS,
    ListFilters,
    ListQuery,
    list_query,
    record_params,
    to_entry,
    to_record,
)
from durably.storage.schema import migrations
from durably.storage.sql_commands import CommandStatements
from durably.storage.sql_ops import INSERT_WORKFLOW, Ops
from durably.storage.sql_schedules import SqlSchedules

__all__ = ["SqlStore", "StoreStatements"]

_RELEASE = (
    "WITH locked AS (SELECT id FROM workflows WHERE owner = ? AND status NOT IN "
    f"({TERMINAL_SQL}){{ids}} ORDER BY id{{{{lock}}}}) "
    "UPDATE workflows SET owner = NULL, lease_expires_at = NULL "
    "WHERE id IN (SELECT id FROM locked)"
)
"""Multi-row changes lock their rows in id order first (where rows are locked): every multi-row
lock is taken in that order, so transactions of one worker (heartbeat, group commit) or of
commands never deadlock."""
_WORKER_COLUMNS = (
    "id, hostname, pid, started_at, heartbeat_at, workflows, queues, version, auto_upgrade"
)


class StoreStatements:
    """The statements of :class:`SqlStore`, rendered once for one dialect."""

    def __init__(self, d: Dialect) -> None:
        s = d.sql
        self.migrations = migrations(d)
        self.create_migrations = s(
            "CREATE TABLE IF NOT EXISTS durably_migrations "
            "(version {int} PRIMARY KEY, applied_at {real} NOT NULL)"
        )
        self.schema_version = "SELECT MAX(version) FROM durably_migrations"
        self.applied = s("INSERT INTO durably_migrations (version, applied_at) VALUES (?, ?)")
        self.insert_workflow = s(INSERT_WORKFLOW)
        self.get = s(f"SELECT {WF_COLUMNS} FROM workflows WHERE id = ?")
        self.renew = s(
            "WITH locked AS (SELECT id FROM workflows WHERE owner = ? ORDER BY id{lock}) "
            "UPDATE workflows SET lease_expires_at = ? WHERE id IN (SELECT id FROM locked) "
            "RETURNING id"
        )
        self.release_all = s(_RELEASE.format(ids=""))
        self.release_ids = s(_RELEASE.format(ids=" AND id {in}"))
        self.expire = s(
            "WITH locked AS (SELECT id FROM workflows WHERE owner {in} ORDER BY id{lock}) "
            "UPDATE workflows SET lease_expires_at = 0 WHERE id IN (SELECT id FROM locked) "
            "RETURNING id"
        )
        self.list = ListQuery(d.mark, s("status {in}"), d.ids, s("id{bytewise}"))
        self.journal = s(
            f"SELECT {JOURNAL_COLUMNS} FROM journal WHERE workflow_id = ? ORDER BY seq"
        )
        self.attempts = s(
            "SELECT workflow_id, seq, attempt, error, owner, epoch, started_at, finished_at "
            "FROM step_attempts WHERE workflow_id = ? ORDER BY seq, epoch, attempt"
        )
        self.register = s(
            f"INSERT INTO workers ({_WORKER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, "
            "started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at, "
            "workflows = EXCLUDED.workflows, queues = EXCLUDED.queues, "
            "version = EXCLUDED.version, auto_upgrade = EXCLUDED.auto_upgrade"
        )
        self.heartbeat = s("UPDATE workers SET heartbeat_at = ? WHERE id = ?")
        self.remove_worker = s("DELETE FROM workers WHERE id = ?")
        self.workers = f"SELECT {_WORKER_COLUMNS} FROM workers ORDER BY started_at"


@functools.cache
def statements(
    dialect: Dialect,
) -> tuple[Ops, CommandStatements, ClaimStatements, StoreStatements]:
    """Every statement of the SQL stores rendered for ``dialect``, once per process."""
    d = dialect
    return Ops(d), CommandStatements(d), ClaimStatements(d), StoreStatements(d)


class SqlStore(SqlClaims, SqlSchedules):
    """A :class:`~durably.storage.base.Store` over a SQL database (see the module docstring).

    A backend sets ``_dialect`` (its statements are then rendered, once) and provides
    ``_transaction`` and ``_read``; it may override ``_apply_batch`` with its group commit
    (and ``_writing``, the transaction a batch is written in).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_dialect" in cls.__dict__:
            cls._ops, cls._cmd, cls._claims, cls._sql = statements(cls._dialect)

    _ops: Ops
    _sql: StoreStatements

    # -- schema ----------------------------------------------------------------------------

    def migrate(self) -> None:
        self._migrate()

    def _migrate(self) -> None:
        """Apply every migration not yet applied, in one transaction (serialized across
        processes by the dialect's migration lock, or by the database's single writer)."""
        lock = self._dialect.migration_lock
        with self._transaction() as conn:
            if lock is not None:  # every migrating process queues here: each applied once
                conn.execute(lock)
            conn.execute(self._sql.create_migrations)
            row = conn.execute(self._sql.schema_version).fetchone()
            current = (row[0] if row else None) or 0
            for version, script in sorted(self._sql.migrations.items()):
                if version <= current:
                    continue
                for statement in script.split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(self._sql.applied, (version, time.time()))

    def schema_version(self) -> int:
        """The highest migration applied to this database (0 if none)."""
        rows = self._fetch(self._sql.schema_version)
        return int((rows[0][0] if rows else None) or 0)

    # -- writes ------------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> list[bool]:
        with self._writing(ops) as conn:
            wake: set[str] = set()
            applied = self._apply_batch(conn, ops, wake)
            if wake:  # what the ops made runnable, for workers listening (PostgreSQL)
                self._dialect.notify(conn, wake)
            return applied

    def _writing(self, ops: Sequence[WriteOp]) -> AbstractContextManager[Any]:
        """The transaction a batch of ops is written in."""
        return self._transaction()

    def _apply_batch(self, conn: Any, ops: Sequence[WriteOp], wake: set[str]) -> list[bool]:
        """Apply ``ops`` in order inside ``conn``'s transaction, noting in ``wake`` what they
        make runnable; per op, whether it was applied. One by one here; a backend overrides it
        with its group commit."""
        return [self._ops.apply(conn, op, wake) for op in ops]

    # -- workflows ---------------------------------------------------------------------------

    def create_workflow(self, record: WorkflowRecord) -> tuple[WorkflowRecord, bool]:
        with self._transaction() as conn:
            if conn.execute(self._sql.insert_workflow, record_params(record)).rowcount == 1:
                if record.owner is None:
                    self._dialect.notify(conn, ("new",))
                return record, True
            row = conn.execute(self._sql.get, (record.id,)).fetchone()
        assert row is not None  # the conflicting row is committed: ids are never deleted live
        return to_record(row), False

    def renew_leases(self, owner: str, until: float) -> set[str]:
        with self._transaction() as conn:
            rows = conn.execute(self._sql.renew, (owner, until)).fetchall()
        return {row[0] for row in rows}

    def release(self, owner: str, workflow_ids: Iterable[str] | None = None) -> None:
        with self._transaction() as conn:
            if workflow_ids is None:
                conn.execute(self._sql.release_all, (owner,))
            else:
                ids = self._dialect.ids(list(workflow_ids))
                conn.execute(self._sql.release_ids, (owner, ids))

    def expire_leases(self, owners: Iterable[str]) -> int:
        with self._transaction() as conn:
            # counted by the rows returned: sqlite3 reports no row count for a WITH statement
            rows = conn.execute(self._sql.expire, (self._dialect.ids(list(owners)),)).fetchall()
        return len(rows)

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        with self._read() as conn:
            return self._get(conn, workflow_id)

    def list_workflows(self, **filters: Unpack[ListFilters]) -> list[WorkflowRecord]:
        query, params = list_query(self._sql.list, **filters)
        return [to_record(row) for row in self._fetch(query, params)]

    def get_journal(self, workflow_id: str) -> list[JournalEntry]:
        return [to_entry(row) for row in self._fetch(self._sql.journal, (workflow_id,))]

    def get_attempts(self, workflow_id: str) -> list[StepAttempt]:
        return [StepAttempt(*row) for row in self._fetch(self._sql.attempts, (workflow_id,))]

    # -- workers -----------------------------------------------------------------------------

    def register_worker(self, info: WorkerInfo) -> None:
        with self._transaction() as conn:
            conn.execute(
                self._sql.register,
                (
                    info.id, info.hostname, info.pid, info.started_at, info.heartbeat_at,
                    json.dumps(info.workflows), json.dumps(info.queues), info.version,
                    json.dumps(info.auto_upgrade),
                ),
            )  # fmt: skip

    def heartbeat_worker(self, worker_id: str, now: float) -> None:
        with self._transaction() as conn:
            conn.execute(self._sql.heartbeat, (now, worker_id))

    def remove_worker(self, worker_id: str) -> None:
        with self._transaction() as conn:
            conn.execute(self._sql.remove_worker, (worker_id,))

    def list_workers(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                json.loads(r[5]),
                json.loads(r[6]),
                r[7],
                json.loads(r[8] or "[]"),
            )
            for r in self._fetch(self._sql.workers)
        ]
