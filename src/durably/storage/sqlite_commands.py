"""SQLite: events, published state, children, runs, and lifecycle commands.

A mixin of :class:`~durably.storage.sqlite.SqliteStore`; each method is one transaction.
"""

from __future__ import annotations

import abc
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from durably.storage.base import (
    FAR_FUTURE,
    TERMINAL_STATUSES,
    ChildOutcome,
    InboxEvent,
    QueueClaim,
    RunRecord,
    Signals,
    Store,
    WorkflowRecord,
    WorkflowStatus,
)
from durably.storage.claiming import queue_filter
from durably.storage.rows import TERMINAL_SQL, WF_COLUMNS, record_params, to_record
from durably.storage.sqlite_ops import INSERT_WORKFLOW

__all__ = ["SqliteCommands"]

_TERMINAL_VALUES = frozenset(s.value for s in TERMINAL_STATUSES)
_TREE = (
    "WITH RECURSIVE tree(id) AS (SELECT ? UNION "
    "SELECT w.id FROM workflows w JOIN tree t ON w.parent_id = t.id) "
)


class SqliteCommands(Store):
    """The event, state and lifecycle half of the SQLite store."""

    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    @abc.abstractmethod
    def _reader(self) -> sqlite3.Connection: ...

    @staticmethod
    def _get(conn: sqlite3.Connection, workflow_id: str) -> WorkflowRecord | None:
        row = conn.execute(
            f"SELECT {WF_COLUMNS} FROM workflows WHERE id = ?", (workflow_id,)
        ).fetchone()
        return None if row is None else to_record(row)

    def finished_workflows(self, workflow_ids: Sequence[str]) -> dict[str, WorkflowRecord | None]:
        found: dict[str, WorkflowRecord | None] = dict.fromkeys(workflow_ids)
        rows = self._reader().execute(
            f"SELECT {WF_COLUMNS} FROM workflows WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(found)),),
        )
        for row in rows:
            if row[2] in _TERMINAL_VALUES:
                found[row[0]] = to_record(row)
            else:
                del found[row[0]]
        return found

    @staticmethod
    def _inbox(conn: sqlite3.Connection, ids_json: str, after: int) -> list[InboxEvent]:
        rows = conn.execute(
            "SELECT id, workflow_id, name, payload, created_at FROM events "
            "WHERE workflow_id IN (SELECT value FROM json_each(?)) AND consumed_seq IS NULL "
            "AND id > ? ORDER BY id",
            (ids_json, after),
        ).fetchall()
        return [InboxEvent(*row) for row in rows]

    @staticmethod
    def _finished_children(
        conn: sqlite3.Connection, ids_json: str
    ) -> Iterator[tuple[str, ChildOutcome]]:
        rows = conn.execute(
            "SELECT parent_id, id, status, output, error FROM workflows "
            "WHERE parent_id IN (SELECT value FROM json_each(?)) "
            f"AND status IN ({TERMINAL_SQL}) ORDER BY created_at",
            (ids_json,),
        ).fetchall()
        for r in rows:
            yield r[0], ChildOutcome(r[1], WorkflowStatus(r[2]), r[3], r[4])

    # -- events, state, children, runs ---------------------------------------------------------

    def send_event(
        self, workflow_id: str, name: str, payload: str | None, dedup_key: str | None, now: float
    ) -> tuple[WorkflowRecord | None, bool]:
        with self._transaction() as conn:
            rec = self._get(conn, workflow_id)
            if rec is None or rec.status in (
                WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED,
                WorkflowStatus.TERMINATED, WorkflowStatus.NEEDS_ATTENTION,
            ):  # fmt: skip
                return rec, False
            cur = conn.execute(
                "INSERT INTO events (workflow_id, name, payload, dedup_key, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (workflow_id, dedup_key) DO NOTHING",
                (workflow_id, name, payload, dedup_key, now),
            )
            if cur.rowcount != 1:
                return rec, False
            conn.execute(
                "UPDATE workflows SET wake_at = ? "
                "WHERE id = ? AND (wake_at IS NULL OR wake_at > ?)",
                (now, workflow_id, now),
            )
        return rec, True

    def poll_signals(self, workflow_ids: Sequence[str], after_event_id: int) -> Signals:
        ids = json.dumps(list(workflow_ids))
        conn = self._reader()
        signals = Signals(events=self._inbox(conn, ids, after_event_id))
        for parent, child in self._finished_children(conn, ids):
            signals.children.setdefault(parent, []).append(child)
        rows = conn.execute(
            "SELECT id FROM workflows WHERE id IN (SELECT value FROM json_each(?)) "
            "AND cancel_requested = 1",
            (ids,),
        ).fetchall()
        signals.cancel_requested = {row[0] for row in rows}
        return signals

    def get_state(self, workflow_id: str) -> dict[str, str]:
        rows = self._reader().execute(
            "SELECT key, value FROM state WHERE workflow_id = ? ORDER BY key", (workflow_id,)
        )
        return {key: value for key, value in rows}

    def list_children(self, parent_id: str) -> list[WorkflowRecord]:
        rows = self._reader().execute(
            f"SELECT {WF_COLUMNS} FROM workflows WHERE parent_id = ? ORDER BY created_at, id",
            (parent_id,),
        )
        return [to_record(row) for row in rows]

    def list_runs(self, workflow_id: str) -> list[RunRecord]:
        rows = self._reader().execute(
            "SELECT workflow_id, run, input, output, status, started_at, finished_at "
            "FROM workflow_runs WHERE workflow_id = ? ORDER BY run",
            (workflow_id,),
        )
        return [RunRecord(r[0], r[1], r[2], r[3], WorkflowStatus(r[4]), r[5], r[6]) for r in rows]

    def next_wake_at(
        self, names: Iterable[str], queues: Sequence[QueueClaim] | None = None
    ) -> float | None:
        sql = (
            "SELECT MIN(COALESCE(wake_at, 0)) FROM workflows "
            "WHERE status IN ('pending', 'running') AND owner IS NULL "
            "AND COALESCE(wake_at, 0) < ? AND name IN (SELECT value FROM json_each(?))"
        )
        params: list[Any] = [FAR_FUTURE, json.dumps(sorted(set(names)))]
        split = queue_filter(queues)
        if split is not None:
            sql += (
                " AND (queue IN (SELECT value FROM json_each(?)) OR (status = 'running' "
                "AND queue IN (SELECT value FROM json_each(?))))"
            )
            params += [json.dumps(split[0]), json.dumps(split[1])]
        row = self._reader().execute(sql, params).fetchone()
        return None if row[0] is None else float(row[0])

    # -- lifecycle commands --------------------------------------------------------------------

    def _wake_parent(self, conn: sqlite3.Connection, workflow_id: str, now: float) -> None:
        conn.execute(
            "UPDATE workflows SET wake_at = ? WHERE id = "
            "(SELECT parent_id FROM workflows WHERE id = ?)",
            (now, workflow_id),
        )

    def request_cancel(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            conn.execute(
                _TREE + "UPDATE workflows SET status = 'cancelled', finished_at = ?, "
                "updated_at = ?, owner = NULL, lease_expires_at = NULL "
                "WHERE id IN tree AND status = 'pending' AND epoch = 0",
                (workflow_id, now, now),
            )
            conn.execute(
                _TREE + "UPDATE workflows SET cancel_requested = 1, wake_at = ?, updated_at = ? "
                "WHERE id IN tree AND status IN ('pending', 'running', 'suspended')",
                (workflow_id, now, now),
            )
            self._wake_parent(conn, workflow_id, now)
            return self._get(conn, workflow_id)

    def terminate(self, workflow_id: str, error: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            conn.execute(
                _TREE + "UPDATE workflows SET status = 'terminated', error = ?, finished_at = ?, "
                "updated_at = ?, owner = NULL, lease_expires_at = NULL, epoch = epoch + 1 "
                f"WHERE id IN tree AND status NOT IN ({TERMINAL_SQL})",
                (workflow_id, error, now, now),
            )
            self._wake_parent(conn, workflow_id, now)
            return self._get(conn, workflow_id)

    def suspend(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE workflows SET status = 'suspended', owner = NULL, "
                "lease_expires_at = NULL, epoch = epoch + 1, updated_at = ? "
                "WHERE id = ? AND status IN ('pending', 'running')",
                (now, workflow_id),
            )
            return self._get(conn, workflow_id)

    def resume(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE workflows SET status = 'running', updated_at = ? "
                "WHERE id = ? AND status = 'suspended'",
                (now, workflow_id),
            )
            return self._get(conn, workflow_id)

    def retry(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            rec = self._get(conn, workflow_id)
            if rec is None or rec.status not in (
                WorkflowStatus.FAILED, WorkflowStatus.NEEDS_ATTENTION
            ):  # fmt: skip
                return rec
            conn.execute(
                "DELETE FROM journal WHERE workflow_id = ? AND status = 'failed' AND seq = "
                "(SELECT MAX(seq) FROM journal WHERE workflow_id = ?)",
                (workflow_id, workflow_id),
            )
            conn.execute(
                "UPDATE workflows SET status = 'running', output = NULL, error = NULL, "
                "finished_at = NULL, owner = NULL, lease_expires_at = NULL, wake_at = NULL, "
                "epoch = MAX(epoch, 1), updated_at = ? WHERE id = ?",
                (now, workflow_id),
            )
            return self._get(conn, workflow_id)

    def fork(
        self, workflow_id: str, new_id: str, from_seq: int, now: float
    ) -> tuple[WorkflowRecord | None, bool]:
        with self._transaction() as conn:
            src = self._get(conn, workflow_id)
            if src is None:
                return None, False
            existing = self._get(conn, new_id)
            if existing is not None:
                return existing, False
            fork = WorkflowRecord(
                id=new_id, name=src.name, status=WorkflowStatus.PENDING, input=src.input,
                created_at=now, updated_at=now, queue=src.queue, priority=src.priority,
                epoch=max(src.epoch, 1), version=src.version,
            )  # fmt: skip
            conn.execute(INSERT_WORKFLOW, record_params(fork))
            # copy resolved entries only: a wait still open in the source (an event, a child of
            # the source) is re-executed by the fork itself
            conn.execute(
                "INSERT INTO journal (workflow_id, seq, kind, name, status, result, error, "
                "attempts, owner, epoch, started_at, finished_at, key) "
                "SELECT ?, seq, kind, name, status, result, error, attempts, "
                "owner, epoch, started_at, finished_at, key FROM journal "
                "WHERE workflow_id = ? AND seq < ? AND seq < COALESCE((SELECT MIN(seq) "
                "FROM journal WHERE workflow_id = ? AND status = 'waiting'), ?)",
                (new_id, workflow_id, from_seq, workflow_id, from_seq),
            )
            return fork, True

    def purge(self, workflow_id: str) -> bool:
        with self._transaction() as conn:
            cur = conn.execute(
                f"DELETE FROM workflows WHERE id = ? AND status IN ({TERMINAL_SQL})",
                (workflow_id,),
            )
            if cur.rowcount != 1:
                return False
            for table in ("journal", "step_attempts", "events", "state", "workflow_runs"):
                conn.execute(f"DELETE FROM {table} WHERE workflow_id = ?", (workflow_id,))
            return True
