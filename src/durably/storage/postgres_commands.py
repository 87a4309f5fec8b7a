"""PostgreSQL: events, published state, children, runs, and lifecycle commands.

A mixin of :class:`~durably.storage.postgres.PostgresStore`; each method is one transaction.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeAlias

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
from durably.storage.postgres_ops import INSERT_WORKFLOW, notify
from durably.storage.rows import TERMINAL_SQL, WF_COLUMNS, record_params, to_record

if TYPE_CHECKING:
    import psycopg

    Conn: TypeAlias = psycopg.Connection[tuple[Any, ...]]

__all__ = ["PostgresCommands"]

_W_COLUMNS = ", ".join(f"w.{c.strip()}" for c in WF_COLUMNS.split(","))
_TREE = (
    "WITH RECURSIVE tree(id) AS (SELECT %s::text UNION "
    "SELECT w.id FROM workflows w JOIN tree t ON w.parent_id = t.id) "
)


class PostgresCommands(Store):
    """The event, state and lifecycle half of the PostgreSQL store."""

    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[Conn]: ...

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Conn]: ...

    @staticmethod
    def _get(conn: Conn, workflow_id: str, *, lock: bool = False) -> WorkflowRecord | None:
        row = conn.execute(
            f"SELECT {WF_COLUMNS} FROM workflows WHERE id = %s"
            + (" FOR NO KEY UPDATE" if lock else ""),
            (workflow_id,),
        ).fetchone()
        return None if row is None else to_record(row)

    def finished_workflows(self, workflow_ids: Sequence[str]) -> dict[str, WorkflowRecord | None]:
        # the ids with no row come back with NULLs; running ones are not sent at all
        wanted = list(dict.fromkeys(workflow_ids))
        found: dict[str, WorkflowRecord | None] = {}
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT q.id, {_W_COLUMNS} FROM unnest(%s::text[]) AS q(id) "
                "LEFT JOIN workflows w ON w.id = q.id "
                f"WHERE w.id IS NULL OR w.status IN ({TERMINAL_SQL})",
                (wanted,),
            ).fetchall()
        for row in rows:
            found[row[0]] = None if row[1] is None else to_record(row[1:])
        return found

    @staticmethod
    def _inbox(conn: Conn, ids: list[str], after: int) -> list[InboxEvent]:
        rows = conn.execute(
            "SELECT id, workflow_id, name, payload, created_at FROM events "
            "WHERE workflow_id = ANY(%s::text[]) AND consumed_seq IS NULL "
            "AND id > %s ORDER BY id",
            (ids, after),
        ).fetchall()
        return [InboxEvent(*row) for row in rows]

    @staticmethod
    def _finished_children(conn: Conn, ids: list[str]) -> Iterator[tuple[str, ChildOutcome]]:
        rows = conn.execute(
            "SELECT parent_id, id, status, output, error FROM workflows "
            "WHERE parent_id = ANY(%s::text[]) "
            f"AND status IN ({TERMINAL_SQL}) ORDER BY created_at",
            (ids,),
        ).fetchall()
        for r in rows:
            yield r[0], ChildOutcome(r[1], WorkflowStatus(r[2]), r[3], r[4])

    # -- events, state, children, runs ---------------------------------------------------------

    def send_event(
        self, workflow_id: str, name: str, payload: str | None, dedup_key: str | None, now: float
    ) -> tuple[WorkflowRecord | None, bool]:
        with self._transaction() as conn:
            # lock the row: a workflow that finishes concurrently is seen finished, not missed
            rec = self._get(conn, workflow_id, lock=True)
            if rec is None or rec.status in TERMINAL_STATUSES:
                return rec, False
            cur = conn.execute(
                "INSERT INTO events (workflow_id, name, payload, dedup_key, created_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (workflow_id, dedup_key) DO NOTHING",
                (workflow_id, name, payload, dedup_key, now),
            )
            if cur.rowcount != 1:
                return rec, False
            conn.execute(
                "UPDATE workflows SET wake_at = %s "
                "WHERE id = %s AND (wake_at IS NULL OR wake_at > %s)",
                (now, workflow_id, now),
            )
            notify(conn, "event")
        return rec, True

    def poll_signals(self, workflow_ids: Sequence[str], after_event_id: int) -> Signals:
        ids = list(workflow_ids)
        with self._read() as conn:
            signals = Signals(events=self._inbox(conn, ids, after_event_id))
            for parent, child in self._finished_children(conn, ids):
                signals.children.setdefault(parent, []).append(child)
            rows = conn.execute(
                "SELECT id FROM workflows WHERE id = ANY(%s::text[]) AND cancel_requested = 1",
                (ids,),
            ).fetchall()
        signals.cancel_requested = {row[0] for row in rows}
        return signals

    def get_state(self, workflow_id: str) -> dict[str, str]:
        with self._read() as conn:
            rows = conn.execute(
                'SELECT key, value FROM state WHERE workflow_id = %s ORDER BY key COLLATE "C"',
                (workflow_id,),
            ).fetchall()
        return {key: value for key, value in rows}

    def list_children(self, parent_id: str) -> list[WorkflowRecord]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {WF_COLUMNS} FROM workflows WHERE parent_id = %s "
                'ORDER BY created_at, id COLLATE "C"',
                (parent_id,),
            ).fetchall()
        return [to_record(row) for row in rows]

    def list_runs(self, workflow_id: str) -> list[RunRecord]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT workflow_id, run, input, output, status, started_at, finished_at "
                "FROM workflow_runs WHERE workflow_id = %s ORDER BY run",
                (workflow_id,),
            ).fetchall()
        return [RunRecord(r[0], r[1], r[2], r[3], WorkflowStatus(r[4]), r[5], r[6]) for r in rows]

    def next_wake_at(
        self, names: Iterable[str], queues: Sequence[QueueClaim] | None = None
    ) -> float | None:
        query = (
            "SELECT MIN(COALESCE(wake_at, 0)) FROM workflows "
            "WHERE status IN ('pending', 'running') AND owner IS NULL "
            "AND COALESCE(wake_at, 0) < %s AND name = ANY(%s::text[])"
        )
        params: list[Any] = [FAR_FUTURE, sorted(set(names))]
        split = queue_filter(queues)
        if split is not None:
            query += (
                " AND (queue = ANY(%s::text[]) OR (status = 'running' AND queue = ANY(%s::text[])))"
            )
            params += list(split)
        with self._read() as conn:
            row = conn.execute(query, params).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    # -- lifecycle commands --------------------------------------------------------------------

    @staticmethod
    def _wake_parent(conn: Conn, workflow_id: str, now: float) -> None:
        conn.execute(
            "UPDATE workflows SET wake_at = %s WHERE id = "
            "(SELECT parent_id FROM workflows WHERE id = %s)",
            (now, workflow_id),
        )

    @staticmethod
    def _lock_tree(conn: Conn, workflow_id: str) -> None:
        """Lock the workflow, its descendants and its parent in id order before changing them
        (the order every multi-row lock is taken in: no deadlock with workers' writes)."""
        conn.execute(
            _TREE + "SELECT id FROM workflows WHERE id IN (SELECT id FROM tree) "
            "OR id = (SELECT parent_id FROM workflows WHERE id = %s) ORDER BY id "
            "FOR NO KEY UPDATE",
            (workflow_id, workflow_id),
        )

    def request_cancel(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            self._lock_tree(conn, workflow_id)
            conn.execute(
                _TREE + "UPDATE workflows SET status = 'cancelled', finished_at = %s, "
                "updated_at = %s, owner = NULL, lease_expires_at = NULL "
                "WHERE id IN (SELECT id FROM tree) AND status = 'pending' AND epoch = 0",
                (workflow_id, now, now),
            )
            conn.execute(
                _TREE + "UPDATE workflows SET cancel_requested = 1, wake_at = %s, "
                "updated_at = %s WHERE id IN (SELECT id FROM tree) "
                "AND status IN ('pending', 'running', 'suspended')",
                (workflow_id, now, now),
            )
            self._wake_parent(conn, workflow_id, now)
            notify(conn, "command")
            return self._get(conn, workflow_id)

    def terminate(self, workflow_id: str, error: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            self._lock_tree(conn, workflow_id)
            conn.execute(
                _TREE + "UPDATE workflows SET status = 'terminated', error = %s, "
                "finished_at = %s, updated_at = %s, owner = NULL, lease_expires_at = NULL, "
                "epoch = epoch + 1 "
                f"WHERE id IN (SELECT id FROM tree) AND status NOT IN ({TERMINAL_SQL})",
                (workflow_id, error, now, now),
            )
            self._wake_parent(conn, workflow_id, now)
            notify(conn, "command")
            return self._get(conn, workflow_id)

    def suspend(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE workflows SET status = 'suspended', owner = NULL, "
                "lease_expires_at = NULL, epoch = epoch + 1, updated_at = %s "
                "WHERE id = %s AND status IN ('pending', 'running')",
                (now, workflow_id),
            )
            return self._get(conn, workflow_id)

    def resume(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE workflows SET status = 'running', updated_at = %s "
                "WHERE id = %s AND status = 'suspended'",
                (now, workflow_id),
            )
            if cur.rowcount:
                notify(conn, "command")
            return self._get(conn, workflow_id)

    def retry(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        with self._transaction() as conn:
            rec = self._get(conn, workflow_id, lock=True)
            if rec is None or rec.status not in (
                WorkflowStatus.FAILED, WorkflowStatus.NEEDS_ATTENTION
            ):  # fmt: skip
                return rec
            conn.execute(
                "DELETE FROM journal WHERE workflow_id = %s AND status = 'failed' AND seq = "
                "(SELECT MAX(seq) FROM journal WHERE workflow_id = %s)",
                (workflow_id, workflow_id),
            )
            conn.execute(
                "UPDATE workflows SET status = 'running', output = NULL, error = NULL, "
                "finished_at = NULL, owner = NULL, lease_expires_at = NULL, wake_at = NULL, "
                "epoch = GREATEST(epoch, 1), updated_at = %s WHERE id = %s",
                (now, workflow_id),
            )
            notify(conn, "command")
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
            if conn.execute(INSERT_WORKFLOW, record_params(fork)).rowcount != 1:
                return self._get(conn, new_id), False
            # copy resolved entries only: a wait still open in the source (an event, a child of
            # the source) is re-executed by the fork itself
            conn.execute(
                "INSERT INTO journal (workflow_id, seq, kind, name, status, result, error, "
                "attempts, owner, epoch, started_at, finished_at, key) "
                "SELECT %s, seq, kind, name, status, result, error, attempts, "
                "owner, epoch, started_at, finished_at, key FROM journal "
                "WHERE workflow_id = %s AND seq < %s AND seq < COALESCE((SELECT MIN(seq) "
                "FROM journal WHERE workflow_id = %s AND status = 'waiting'), %s)",
                (new_id, workflow_id, from_seq, workflow_id, from_seq),
            )
            notify(conn, "new")
            return fork, True

    def purge(self, workflow_id: str) -> bool:
        with self._transaction() as conn:
            cur = conn.execute(
                f"DELETE FROM workflows WHERE id = %s AND status IN ({TERMINAL_SQL})",
                (workflow_id,),
            )
            if cur.rowcount != 1:
                return False
            for table in ("journal", "step_attempts", "events", "state", "workflow_runs"):
                conn.execute(f"DELETE FROM {table} WHERE workflow_id = %s", (workflow_id,))
            return True
