"""Events, published state, children, runs, and lifecycle commands: each statement written once
for every SQL dialect.

A mixin of :class:`~durably.storage.sql_store.SqlStore`; each method is one transaction.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from durably.storage.base import (
    TERMINAL_STATUSES,
    ChildOutcome,
    InboxEvent,
    RunRecord,
    Signals,
    VersionCounts,
    WorkflowRecord,
    WorkflowStatus,
)
from durably.storage.dialect import Dialect
from durably.storage.rows import TERMINAL_SQL, WF_COLUMNS, record_params, to_record
from durably.storage.sql_bulk import SqlBulk
from durably.storage.sql_ops import INSERT_WORKFLOW

__all__ = ["CommandStatements", "SqlCommands"]

_W_COLUMNS = ", ".join(f"w.{c.strip()}" for c in WF_COLUMNS.split(","))
_TREE = (
    "WITH RECURSIVE tree(id) AS (SELECT CAST(? AS TEXT) UNION "
    "SELECT w.id FROM workflows w JOIN tree t ON w.parent_id = t.id) "
)
"""The workflow (first parameter) and its descendants."""


class CommandStatements:
    """The statements of :class:`SqlCommands`, rendered once for one dialect."""

    def __init__(self, d: Dialect) -> None:
        s = d.sql
        self.get = s(f"SELECT {WF_COLUMNS} FROM workflows WHERE id = ?")
        self.get_locked = s(f"SELECT {WF_COLUMNS} FROM workflows WHERE id = ?{{lock}}")
        self.insert_workflow = s(INSERT_WORKFLOW)
        # the ids with no row come back with NULLs; running ones are not sent at all
        self.finished = s(
            f"SELECT q.id, {_W_COLUMNS} FROM {{id_rows}} LEFT JOIN workflows w ON w.id = q.id "
            f"WHERE w.id IS NULL OR w.status IN ({TERMINAL_SQL})"
        )
        self.inbox = s(
            "SELECT id, workflow_id, name, payload, created_at FROM events "
            "WHERE workflow_id {in} AND consumed_seq IS NULL AND id > ? ORDER BY id"
        )
        self.finished_children = s(
            "SELECT parent_id, id, status, output, error, finished_at FROM workflows "
            f"WHERE parent_id {{in}} AND status IN ({TERMINAL_SQL}) ORDER BY created_at"
        )
        self.cancel_requested = s("SELECT id FROM workflows WHERE id {in} AND cancel_requested = 1")
        self.add_event = s(
            "INSERT INTO events (workflow_id, name, payload, dedup_key, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (workflow_id, dedup_key) DO NOTHING"
        )
        self.wake_for_event = s(
            "UPDATE workflows SET wake_at = ? WHERE id = ? AND (wake_at IS NULL OR wake_at > ?)"
        )
        self.state = s("SELECT key, value FROM state WHERE workflow_id = ? ORDER BY key{bytewise}")
        self.children = s(
            f"SELECT {WF_COLUMNS} FROM workflows WHERE parent_id = ? "
            "ORDER BY created_at, id{bytewise}"
        )
        self.runs = s(
            "SELECT workflow_id, run, input, output, status, started_at, finished_at "
            "FROM workflow_runs WHERE workflow_id = ? ORDER BY run"
        )
        self.wake_parent = s(
            "UPDATE workflows SET wake_at = ? WHERE id = "
            "(SELECT parent_id FROM workflows WHERE id = ?)"
        )
        # the workflow, its descendants and its parent, in id order: the order every multi-row
        # lock is taken in, so no deadlock with workers' writes
        self.lock_tree = s(
            _TREE + "SELECT id FROM workflows WHERE id IN (SELECT id FROM tree) "
            "OR id = (SELECT parent_id FROM workflows WHERE id = ?) ORDER BY id{lock}"
        )
        self.cancel_pending = s(
            _TREE + "UPDATE workflows SET status = 'cancelled', finished_at = ?, "
            "updated_at = ?, owner = NULL, lease_expires_at = NULL "
            "WHERE id IN (SELECT id FROM tree) AND status = 'pending' AND epoch = 0"
        )
        self.request_cancel = s(
            _TREE + "UPDATE workflows SET cancel_requested = 1, wake_at = ?, updated_at = ? "
            "WHERE id IN (SELECT id FROM tree) AND status IN ('pending', 'running', 'suspended')"
        )
        self.terminate = s(
            _TREE + "UPDATE workflows SET status = 'terminated', error = ?, finished_at = ?, "
            "updated_at = ?, owner = NULL, lease_expires_at = NULL, epoch = epoch + 1 "
            f"WHERE id IN (SELECT id FROM tree) AND status NOT IN ({TERMINAL_SQL})"
        )
        self.suspend = s(
            "UPDATE workflows SET status = 'suspended', owner = NULL, "
            "lease_expires_at = NULL, epoch = epoch + 1, updated_at = ? "
            "WHERE id = ? AND status IN ('pending', 'running')"
        )
        self.resume = s(
            "UPDATE workflows SET status = 'running', updated_at = ? "
            "WHERE id = ? AND status = 'suspended'"
        )
        self.drop_failed = s(
            "DELETE FROM journal WHERE workflow_id = ? AND status = 'failed' AND seq = "
            "(SELECT MAX(seq) FROM journal WHERE workflow_id = ?)"
        )
        self.rerun = s(
            "UPDATE workflows SET status = 'running', output = NULL, error = NULL, "
            "finished_at = NULL, owner = NULL, lease_expires_at = NULL, wake_at = NULL, "
            "epoch = {greatest}(epoch, 1), updated_at = ? WHERE id = ?"
        )
        # copy resolved entries only: a wait still open in the source (an event, a child of the
        # source) is re-executed by the fork itself
        self.copy_journal = s(
            "INSERT INTO journal (workflow_id, seq, kind, name, status, result, error, "
            "attempts, owner, epoch, started_at, finished_at, key) "
            "SELECT ?, seq, kind, name, status, result, error, attempts, "
            "owner, epoch, started_at, finished_at, key FROM journal "
            "WHERE workflow_id = ? AND seq < ? AND seq < COALESCE((SELECT MIN(seq) "
            "FROM journal WHERE workflow_id = ? AND status = 'waiting'), ?)"
        )
        self.count_versions = (
            f"SELECT version, status, COUNT(*) FROM workflows WHERE status NOT IN "
            f"({TERMINAL_SQL}) GROUP BY version, status"
        )
        moved = (
            "SET version = ?, owner = NULL, lease_expires_at = NULL, updated_at = ?, "
            "epoch = CASE WHEN owner IS NULL THEN epoch ELSE epoch + 1 END "
        )
        unfinished = f"version = ? AND status NOT IN ({TERMINAL_SQL})"
        self.move_version = s(
            f"WITH locked AS (SELECT id FROM workflows WHERE {unfinished} ORDER BY id{{lock}}) "
            f"UPDATE workflows {moved}WHERE id IN (SELECT id FROM locked) RETURNING id"
        )
        self.move_one = s(
            f"UPDATE workflows {moved}WHERE id = ? AND {unfinished} "
            "AND (SELECT COUNT(*) FROM journal WHERE workflow_id = ?) = ?"
        )


class SqlCommands(SqlBulk):
    """The event, state and lifecycle half of the SQL stores."""

    _dialect: Dialect
    _cmd: CommandStatements

    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """One write transaction: committed on exit, rolled back on error."""

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A connection for reads (each statement sees what was committed before it)."""

    def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one read."""
        with self._read() as conn:
            rows: list[Any] = conn.execute(query, params).fetchall()
        return rows

    def _get(self, conn: Any, workflow_id: str, *, lock: bool = False) -> WorkflowRecord | None:
        row = conn.execute(self._cmd.get_locked if lock else self._cmd.get, (workflow_id,))
        row = row.fetchone()
        return None if row is None else to_record(row)

    def finished_workflows(self, workflow_ids: Sequence[str]) -> dict[str, WorkflowRecord | None]:
        wanted = list(dict.fromkeys(workflow_ids))
        found: dict[str, WorkflowRecord | None] = {}
        for row in self._fetch(self._cmd.finished, (self._dialect.ids(wanted),)):
            found[row[0]] = None if row[1] is None else to_record(row[1:])
        return found

    def _inbox(self, conn: Any, ids: Any, after: int) -> list[InboxEvent]:
        rows = conn.execute(self._cmd.inbox, (ids, after)).fetchall()
        return [InboxEvent(*row) for row in rows]

    def _finished_children(self, conn: Any, ids: Any) -> Iterator[tuple[str, ChildOutcome]]:
        for r in conn.execute(self._cmd.finished_children, (ids,)).fetchall():
            yield r[0], ChildOutcome(r[1], WorkflowStatus(r[2]), r[3], r[4], r[5])

    # -- events, state, children, runs ---------------------------------------------------------

    def send_event(
        self, workflow_id: str, name: str, payload: str | None, dedup_key: str | None, now: float
    ) -> tuple[WorkflowRecord | None, bool]:
        with self._transaction() as conn:
            # lock the row: a workflow that finishes concurrently is seen finished, not missed
            rec = self._get(conn, workflow_id, lock=True)
            if rec is None or rec.status in TERMINAL_STATUSES:
                return rec, False
            cur = conn.execute(self._cmd.add_event, (workflow_id, name, payload, dedup_key, now))
            if cur.rowcount != 1:
                return rec, False
            conn.execute(self._cmd.wake_for_event, (now, workflow_id, now))
            self._dialect.notify(conn, ("event",))
        return rec, True

    def poll_signals(self, workflow_ids: Sequence[str], after_event_id: int) -> Signals:
        ids = self._dialect.ids(workflow_ids)
        with self._read() as conn:
            signals = Signals(events=self._inbox(conn, ids, after_event_id))
            for parent, child in self._finished_children(conn, ids):
                signals.children.setdefault(parent, []).append(child)
            rows = conn.execute(self._cmd.cancel_requested, (ids,)).fetchall()
        signals.cancel_requested = {row[0] for row in rows}
        return signals

    def get_state(self, workflow_id: str) -> dict[str, str]:
        return {key: value for key, value in self._fetch(self._cmd.state, (workflow_id,))}

    def list_children(self, parent_id: str) -> list[WorkflowRecord]:
        return [to_record(row) for row in self._fetch(self._cmd.children, (parent_id,))]

    def list_runs(self, workflow_id: str) -> list[RunRecord]:
        rows = self._fetch(self._cmd.runs, (workflow_id,))
        return [RunRecord(r[0], r[1], r[2], r[3], WorkflowStatus(r[4]), r[5], r[6]) for r in rows]

    # -- versions ------------------------------------------------------------------------------

    def count_versions(self) -> VersionCounts:
        counts: VersionCounts = {}
        for version, status, count in self._fetch(self._cmd.count_versions):
            counts.setdefault(version, {})[WorkflowStatus(status)] = int(count)
        return counts

    def move_version(
        self,
        from_version: str,
        to_version: str,
        now: float,
        only: Mapping[str, int] | None = None,
    ) -> list[str]:
        with self._transaction() as conn:
            if only is None:
                rows = conn.execute(self._cmd.move_version, (from_version, to_version, now))
                moved = sorted(row[0] for row in rows.fetchall())
            else:
                moved = []
                for workflow_id in sorted(only):  # rows locked in id order: no deadlock
                    self._get(conn, workflow_id, lock=True)
                    params = (to_version, now, workflow_id, from_version, workflow_id)
                    cur = conn.execute(self._cmd.move_one, (*params, only[workflow_id]))
                    if cur.rowcount == 1:
                        moved.append(workflow_id)
            if moved:
                self._dialect.notify(conn, ("command",))
        return moved

    # -- lifecycle commands --------------------------------------------------------------------

    def _lock_tree(self, conn: Any, workflow_id: str) -> None:
        """Lock the workflow, its descendants and its parent (in id order) before changing
        them, where writers lock rows."""
        if self._dialect.row_locks:
            conn.execute(self._cmd.lock_tree, (workflow_id, workflow_id))

    def request_cancel(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            self._lock_tree(conn, workflow_id)
            conn.execute(self._cmd.cancel_pending, (workflow_id, now, now))
            conn.execute(self._cmd.request_cancel, (workflow_id, now, now))
            conn.execute(self._cmd.wake_parent, (now, workflow_id))
            self._dialect.notify(conn, ("command",))
            return self._get(conn, workflow_id)

    def terminate(self, workflow_id: str, error: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            self._lock_tree(conn, workflow_id)
            conn.execute(self._cmd.terminate, (workflow_id, error, now, now))
            conn.execute(self._cmd.wake_parent, (now, workflow_id))
            self._dialect.notify(conn, ("command",))
            return self._get(conn, workflow_id)

    def suspend(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            conn.execute(self._cmd.suspend, (now, workflow_id))
            return self._get(conn, workflow_id)

    def resume(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            if conn.execute(self._cmd.resume, (now, workflow_id)).rowcount:
                self._dialect.notify(conn, ("command",))
            return self._get(conn, workflow_id)

    def retry(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            rec = self._get(conn, workflow_id, lock=True)
            if rec is None or rec.status not in (
                WorkflowStatus.FAILED, WorkflowStatus.NEEDS_ATTENTION
            ):  # fmt: skip
                return rec
            conn.execute(self._cmd.drop_failed, (workflow_id, workflow_id))
            conn.execute(self._cmd.rerun, (now, workflow_id))
            self._dialect.notify(conn, ("command",))
            return self._get(conn, workflow_id)

    def fork(
        self, workflow_id: str, new_id: str, from_seq: int, now: float
    ) -> tuple[WorkflowRecord | None, bool]:
        with self._transaction() as conn:
            src = self._get(conn, workflow_id)
            if src is None:
                return None, False
            fork = WorkflowRecord(
                id=new_id, name=src.name, status=WorkflowStatus.PENDING, input=src.input,
                created_at=now, updated_at=now, queue=src.queue, priority=src.priority,
                epoch=max(src.epoch, 1), version=src.version,
            )  # fmt: skip
            if conn.execute(self._cmd.insert_workflow, record_params(fork)).rowcount != 1:
                return self._get(conn, new_id), False
            conn.execute(
                self._cmd.copy_journal, (new_id, workflow_id, from_seq, workflow_id, from_seq)
            )
            self._dialect.notify(conn, ("new",))
            return fork, True
