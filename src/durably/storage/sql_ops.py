"""The fenced write ops, each statement written once for every SQL dialect: one small handler
per op type (:class:`Ops`), rendered for a :class:`~durably.storage.dialect.Dialect` when a store
is built.

A handler applies one op inside the caller's transaction and says whether it was applied; ops
that make work runnable by any worker note a wake-up kind in ``wake``, which
:meth:`SqlStore.write <durably.storage.sql_store.SqlStore.write>` hands to the dialect's
``notify`` before it commits. The backends' group commits (many ops of one kind in one
statement, PostgreSQL's pipelining) live in their own modules and fall back on these handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durably.storage.base import (
    ConsumeEvent,
    ContinueAsNew,
    CreateWorkflow,
    DeliverCancel,
    FinishWorkflow,
    JournalEntry,
    Park,
    RecordAttempt,
    RecordEntry,
    SetState,
    StartChild,
    StepAttempt,
    WriteOp,
)
from durably.storage.dialect import Dialect
from durably.storage.rows import JOURNAL_COLUMNS, TERMINAL_SQL, WF_COLUMNS, entry_row, record_params

__all__ = ["FENCE", "INSERT_WORKFLOW", "UPSERT_ENTRY", "Ops"]

_LIVE = f"status NOT IN ({TERMINAL_SQL})"
_HELD = f"id = ? AND owner = ? AND epoch = ? AND {_LIVE}"
"""The workflow still has this owner and epoch, and has not finished."""

FENCE = "EXISTS (SELECT 1 FROM workflows WHERE " + _HELD + "{lock})"
"""The fence of a write: the workflow still has this owner and epoch, checked (on PostgreSQL)
while locking its row, so that no claim (SKIP LOCKED) can take it over before the write
commits."""
INSERT_WORKFLOW = (
    f"INSERT INTO workflows ({WF_COLUMNS}) VALUES ({', '.join('?' * 22)}) "
    "ON CONFLICT (id) DO NOTHING"
)
UPSERT_ENTRY = (
    "ON CONFLICT (workflow_id, seq) DO UPDATE SET status = EXCLUDED.status, "
    "result = EXCLUDED.result, error = EXCLUDED.error, attempts = EXCLUDED.attempts, "
    "owner = EXCLUDED.owner, epoch = EXCLUDED.epoch, finished_at = EXCLUDED.finished_at "
    "WHERE journal.status = 'waiting' AND journal.kind = EXCLUDED.kind "
    "AND journal.name = EXCLUDED.name"
)
"""How a journal entry lands on an existing one: only a ``waiting`` entry of the same kind and
name is replaced (a recorded result is never overwritten). Shared with the group statements."""
_INSERT_ENTRY = (
    f"INSERT INTO journal ({JOURNAL_COLUMNS}) SELECT {', '.join('?' * 13)} "
    f"WHERE {FENCE} {UPSERT_ENTRY}"
)
_INSERT_ATTEMPT = (
    "INSERT INTO step_attempts (workflow_id, seq, attempt, error, owner, epoch, started_at, "
    f"finished_at) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE {FENCE} ON CONFLICT DO NOTHING"
)
_DELIVER_CANCEL = f"UPDATE workflows SET cancel_key = ?, cancel_requested = 0 WHERE {_HELD}"
_FINISH = (
    "UPDATE workflows SET status = ?, output = ?, error = ?, finished_at = ?, updated_at = ?, "
    f"owner = NULL, lease_expires_at = NULL WHERE {_HELD} RETURNING parent_id, queue"
)
_WAKE = f"UPDATE workflows SET wake_at = ? WHERE id = ? AND {_LIVE}"
_HOLDER = "SELECT name, parent_id FROM workflows WHERE id = ?"
"""Who holds a child's id that its start found taken."""
_LOCK = "SELECT 1 FROM workflows WHERE " + _HELD + "{lock}"
_PARK = (
    "UPDATE workflows SET owner = NULL, lease_expires_at = NULL, updated_at = ?, "
    "wake_at = CASE WHEN cancel_requested = 1 "
    "  OR EXISTS (SELECT 1 FROM events e WHERE e.workflow_id = workflows.id "
    "    AND e.consumed_seq IS NULL AND e.name {in}) "
    "  OR EXISTS (SELECT 1 FROM workflows c WHERE c.parent_id = workflows.id "
    f"    AND c.id {{in}} AND c.status IN ({TERMINAL_SQL})) "
    f"THEN ? ELSE ? END WHERE {_HELD} RETURNING wake_at"
)
_CONSUME = (
    "UPDATE events SET consumed_seq = ? WHERE id = ? AND workflow_id = ? AND consumed_seq IS NULL"
)
_SET_STATE = (
    "INSERT INTO state (workflow_id, key, value, seq, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (workflow_id, key) DO UPDATE SET value = EXCLUDED.value, "
    "seq = EXCLUDED.seq, updated_at = EXCLUDED.updated_at WHERE EXCLUDED.seq >= state.seq"
)
_END_RUN = (
    "INSERT INTO workflow_runs (workflow_id, run, input, output, status, started_at, "
    "finished_at) SELECT id, run, input, ?, 'continued_as_new', started_at, ? "
    f"FROM workflows WHERE {_HELD}"
)
_NEW_RUN = (
    "UPDATE workflows SET input = ?, run = run + 1, owner = NULL, lease_expires_at = NULL, "
    "wake_at = NULL, cancel_key = NULL, started_at = ?, updated_at = ? WHERE id = ?"
)

Handler = Callable[[Any, Any, set[str]], bool]


def _entry_params(e: JournalEntry) -> tuple[Any, ...]:
    return (*entry_row(e), e.workflow_id, e.owner, e.epoch)


def _attempt_params(a: StepAttempt) -> tuple[Any, ...]:
    return (
        a.workflow_id, a.seq, a.attempt, a.error, a.owner, a.epoch, a.started_at,
        a.finished_at, a.workflow_id, a.owner, a.epoch,
    )  # fmt: skip


class Ops:
    """The write ops' statements rendered for one dialect, and their handlers."""

    def __init__(self, dialect: Dialect) -> None:
        d = self.dialect = dialect
        self.fence = d.sql("SELECT " + FENCE)
        self.insert_workflow = d.sql(INSERT_WORKFLOW)
        self.insert_entry = d.sql(_INSERT_ENTRY)
        self.insert_attempt = d.sql(_INSERT_ATTEMPT)
        self.deliver_cancel = d.sql(_DELIVER_CANCEL)
        self.finish = d.sql(_FINISH)
        self.wake = d.sql(_WAKE)
        self.lock = d.sql(_LOCK)
        self.park = d.sql(_PARK)
        self.holder = d.sql(_HOLDER)
        self.consume = d.sql(_CONSUME)
        self.set_state = d.sql(_SET_STATE)
        self.end_run = d.sql(_END_RUN)
        self.new_run = d.sql(_NEW_RUN)
        self.clear = {
            table: d.sql(f"DELETE FROM {table} WHERE workflow_id = ?")
            for table in ("journal", "step_attempts")
        }
        self.reset_state_seq = d.sql("UPDATE state SET seq = -1 WHERE workflow_id = ?")
        self.handlers: dict[type, Handler] = {
            CreateWorkflow: self._create,
            RecordEntry: self._record_entry,
            RecordAttempt: self._record_attempt,
            DeliverCancel: self._deliver_cancel,
            FinishWorkflow: self._finish,
            ConsumeEvent: self._consume_event,
            SetState: self._set_state,
            StartChild: self._start_child,
            Park: self._park,
            ContinueAsNew: self._continue_as_new,
        }

    def apply(self, conn: Any, op: WriteOp, wake: set[str]) -> bool:
        """Apply one write op inside the caller's transaction; whether it was applied."""
        return self.handlers[type(op)](conn, op, wake)

    def single(self, op: WriteOp) -> tuple[str, tuple[Any, ...]] | None:
        """The one statement that applies ``op`` (applied iff it touches one row), for the ops
        that have one and need no answer but its row count; else None."""
        if isinstance(op, RecordEntry):
            return self.insert_entry, _entry_params(op.entry)
        if isinstance(op, CreateWorkflow):
            return self.insert_workflow, record_params(op.record)
        if isinstance(op, RecordAttempt):
            return self.insert_attempt, _attempt_params(op.attempt)
        if isinstance(op, DeliverCancel):
            return self.deliver_cancel, (op.key, op.workflow_id, op.owner, op.epoch)
        return None

    @staticmethod
    def outcome(op: WriteOp, rowcount: int, wake: set[str]) -> bool:
        """Whether ``op``'s single statement, which touched ``rowcount`` rows, applied it;
        notes a wake-up for a workflow created unowned (not already claimed by its maker)."""
        done = rowcount == 1
        if done and isinstance(op, CreateWorkflow) and op.record.owner is None:
            wake.add("new")
        return done

    # -- handlers ------------------------------------------------------------------------------

    def _single(self, conn: Any, op: WriteOp, wake: set[str]) -> bool:
        statement = self.single(op)
        assert statement is not None
        return self.outcome(op, conn.execute(*statement).rowcount, wake)

    _create = _record_entry = _record_attempt = _deliver_cancel = _single

    def _fenced(self, conn: Any, workflow_id: str, owner: str, epoch: int) -> bool:
        row = conn.execute(self.fence, (workflow_id, owner, epoch)).fetchone()
        return bool(row and row[0])

    def _entry(self, conn: Any, e: JournalEntry) -> bool:
        return bool(conn.execute(self.insert_entry, _entry_params(e)).rowcount == 1)

    def _finish(self, conn: Any, op: FinishWorkflow, wake: set[str]) -> bool:
        rows = conn.execute(
            self.finish,
            (
                op.status.value, op.output, op.error, op.finished_at, op.finished_at,
                op.workflow_id, op.owner, op.epoch,
            ),
        ).fetchall()  # fmt: skip
        if not rows:
            return False
        parent, queue = rows[0]
        if queue != "default":  # a place in a limited queue may have opened: admit the next
            wake.add("slot")
        if parent is not None and conn.execute(self.wake, (op.finished_at, parent)).rowcount:
            wake.add("child")
        return True

    def _consume_event(self, conn: Any, op: ConsumeEvent, wake: set[str]) -> bool:
        e = op.entry
        if not self._fenced(conn, e.workflow_id, e.owner, e.epoch):
            return False
        conn.execute("SAVEPOINT consume")
        cur = conn.execute(self.consume, (e.seq, op.event_id, e.workflow_id))
        if cur.rowcount == 1 and self._entry(conn, e):
            conn.execute("RELEASE SAVEPOINT consume")
            return True
        conn.execute("ROLLBACK TO SAVEPOINT consume")
        conn.execute("RELEASE SAVEPOINT consume")
        return False

    def _set_state(self, conn: Any, op: SetState, wake: set[str]) -> bool:
        if not self._fenced(conn, op.workflow_id, op.owner, op.epoch):
            return False
        conn.execute(self.set_state, (op.workflow_id, op.key, op.value, op.seq, op.updated_at))
        return True

    def _start_child(self, conn: Any, op: StartChild, wake: set[str]) -> bool:
        op.conflicted = None  # a retried or split commit applies the op afresh
        if not self._entry(conn, op.entry):
            return False
        child = op.child
        if conn.execute(self.insert_workflow, record_params(child)).rowcount == 1:
            wake.add("new")
            return True
        row = conn.execute(self.holder, (child.id,)).fetchone()
        name, parent = (row[0], row[1]) if row is not None else ("", None)
        if row is not None and parent == child.parent_id and name == child.name:
            return True  # this parent started it before: the start is idempotent
        # held by another workflow: the waiting entry just written becomes the failed one
        conflicted = op.conflict(name, parent)
        if not self._entry(conn, conflicted):  # not the same call's entry: a bug of its maker
            raise ValueError(f"StartChild of {child.id!r}: its conflict entry does not match")
        op.conflicted = conflicted
        return True

    def _park(self, conn: Any, op: Park, wake: set[str]) -> bool:
        # With row locks: lock the row first, then decide in a new statement (a fresh READ
        # COMMITTED snapshot): an event, a finished child or a cancellation committed by the
        # time we hold the lock is seen, and one committed later updates wake_at after us (its
        # own update waits for our lock). SQLite's single writer gives the same order.
        held = (op.workflow_id, op.owner, op.epoch)
        if self.dialect.row_locks and conn.execute(self.lock, held).fetchone() is None:
            return False
        ids = self.dialect.ids
        rows = conn.execute(
            self.park, (op.now, ids(op.event_names), ids(op.child_ids), op.now, op.wake_at, *held)
        ).fetchall()
        if not rows:
            return False
        if (
            rows[0][0] is not None and rows[0][0] <= op.now
        ):  # runnable at once: any worker may take it
            wake.add("wake")
        return True

    def _continue_as_new(self, conn: Any, op: ContinueAsNew, wake: set[str]) -> bool:
        cur = conn.execute(
            self.end_run, (op.output, op.finished_at, op.workflow_id, op.owner, op.epoch)
        )
        if cur.rowcount != 1:
            return False
        for statement in self.clear.values():
            conn.execute(statement, (op.workflow_id,))
        # the next run numbers its calls from 0 again: its state writes must win over older ones
        conn.execute(self.reset_state_seq, (op.workflow_id,))
        conn.execute(self.new_run, (op.input, op.finished_at, op.finished_at, op.workflow_id))
        wake.add("new")
        return True
