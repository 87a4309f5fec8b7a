"""PostgreSQL fenced write ops, one small handler per op type (the same semantics as
:mod:`durably.storage.sqlite_ops`). Row mapping is shared with the SQLite backend
(:mod:`durably.storage.rows`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

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
from durably.storage.batching import SINGLE, fenced_id, runs
from durably.storage.postgres_groups import Group
from durably.storage.rows import (
    JOURNAL_COLUMNS,
    TERMINAL_SQL,
    WF_COLUMNS,
    entry_row,
    record_params,
)

if TYPE_CHECKING:
    import psycopg

    Conn: TypeAlias = psycopg.Connection[tuple[Any, ...]]

__all__ = ["CHANNEL", "INSERT_WORKFLOW", "apply_batch", "notify"]

CHANNEL = "durably"
"""The LISTEN/NOTIFY channel. A payload is ``<schema>:<kind>``: stores in other schemas of the
same database share the channel and ignore each other's wake-ups."""
_NOTIFY = "SELECT pg_notify('" + CHANNEL + "', COALESCE(current_schema(), '') || ':' || %s)"


def notify(conn: Conn, *kinds: str) -> None:
    """Wake listening workers (``kind``: what is new) when the caller's transaction commits.
    PostgreSQL delivers a notification only at commit and folds duplicates in one transaction."""
    for kind in sorted(set(kinds)):
        conn.execute(_NOTIFY, (kind,))


FENCE = (
    "EXISTS (SELECT 1 FROM workflows WHERE id = %s AND owner = %s AND epoch = %s "
    f"AND status NOT IN ({TERMINAL_SQL}) FOR NO KEY UPDATE)"
)
"""The fence of a write: the workflow still has this owner and epoch, checked while locking its
row, so that no claim (SKIP LOCKED) can take it over before the write commits."""
INSERT_WORKFLOW = (
    f"INSERT INTO workflows ({WF_COLUMNS}) VALUES ({', '.join(['%s'] * 22)}) "
    "ON CONFLICT (id) DO NOTHING"
)
_INSERT_ENTRY = (
    f"INSERT INTO journal ({JOURNAL_COLUMNS}) "
    "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s "
    f"WHERE {FENCE} ON CONFLICT (workflow_id, seq) DO UPDATE SET status = EXCLUDED.status, "
    "result = EXCLUDED.result, error = EXCLUDED.error, attempts = EXCLUDED.attempts, "
    "owner = EXCLUDED.owner, epoch = EXCLUDED.epoch, finished_at = EXCLUDED.finished_at "
    "WHERE journal.status = 'waiting' AND journal.kind = EXCLUDED.kind "
    "AND journal.name = EXCLUDED.name"
)
_INSERT_ATTEMPT = (
    "INSERT INTO step_attempts (workflow_id, seq, attempt, error, owner, epoch, started_at, "
    f"finished_at) SELECT %s, %s, %s, %s, %s, %s, %s, %s WHERE {FENCE} "
    "ON CONFLICT DO NOTHING"
)
_FINISH = (
    "WITH fin AS (UPDATE workflows SET status = %s, output = %s, error = %s, "
    "finished_at = %s, updated_at = %s, owner = NULL, lease_expires_at = NULL "
    f"WHERE id = %s AND owner = %s AND epoch = %s AND status NOT IN ({TERMINAL_SQL}) "
    "RETURNING parent_id, queue), "
    "woke AS (UPDATE workflows SET wake_at = %s WHERE id = (SELECT parent_id FROM fin) "
    f"AND status NOT IN ({TERMINAL_SQL}) RETURNING 1) "
    "SELECT queue, (SELECT count(*) FROM woke) FROM fin"
)
"""Finish a workflow and wake its parent in one statement (so it can be pipelined): one row,
(queue, parents woken), if applied."""
_LOCK = (
    "SELECT 1 FROM workflows "
    f"WHERE id = %s AND owner = %s AND epoch = %s AND status NOT IN ({TERMINAL_SQL}) "
    "FOR NO KEY UPDATE"
)
_PARK = (
    "UPDATE workflows SET owner = NULL, lease_expires_at = NULL, updated_at = %s, "
    "wake_at = CASE WHEN cancel_requested = 1 "
    "  OR EXISTS (SELECT 1 FROM events e WHERE e.workflow_id = workflows.id "
    "    AND e.consumed_seq IS NULL AND e.name = ANY(%s::text[])) "
    "  OR EXISTS (SELECT 1 FROM workflows c WHERE c.parent_id = workflows.id "
    "    AND c.id = ANY(%s::text[]) "
    f"    AND c.status IN ({TERMINAL_SQL})) "
    "THEN %s ELSE %s END "
    f"WHERE id = %s AND owner = %s AND epoch = %s AND status NOT IN ({TERMINAL_SQL}) "
    "RETURNING wake_at"
)


_LOCK_MANY = "SELECT id FROM workflows WHERE id = ANY(%s::text[]) ORDER BY id FOR NO KEY UPDATE"
_LOCK_MANY_AND_PARENTS = (
    "SELECT id FROM workflows WHERE id = ANY(%s::text[] || ARRAY(SELECT parent_id "
    "FROM workflows WHERE id = ANY(%s::text[]))) "
    "ORDER BY id FOR NO KEY UPDATE"
)
"""The batch's workflows, and the parents its finishing children wake, in id order (one
``= ANY`` of an array, so that the primary key index serves it)."""


_SINGLE = SINGLE
"""The op kinds applied by one statement each (see :func:`_single_statement`)."""
_SELF_LOCKING = (RecordEntry, RecordAttempt, DeliverCancel, CreateWorkflow)
"""Ops whose one statement checks its fence while locking the workflow's row: a batch of these
for a single workflow (a step of a sequential workflow) needs no lock statement ahead."""


def _fenced(conn: Conn, workflow_id: str, owner: str, epoch: int) -> bool:
    row = conn.execute(f"SELECT {FENCE}", (workflow_id, owner, epoch)).fetchone()
    return bool(row and row[0])


def _entry_params(e: JournalEntry) -> tuple[Any, ...]:
    return (*entry_row(e), e.workflow_id, e.owner, e.epoch)


def _entry(conn: Conn, e: JournalEntry) -> bool:
    return conn.execute(_INSERT_ENTRY, _entry_params(e)).rowcount == 1


def _attempt_params(a: StepAttempt) -> tuple[Any, ...]:
    return (
        a.workflow_id, a.seq, a.attempt, a.error, a.owner, a.epoch, a.started_at,
        a.finished_at, a.workflow_id, a.owner, a.epoch,
    )  # fmt: skip


_DELIVER_CANCEL = (
    "UPDATE workflows SET cancel_key = %s, cancel_requested = 0 "
    f"WHERE id = %s AND owner = %s AND epoch = %s AND status NOT IN ({TERMINAL_SQL})"
)


def _single_statement(op: WriteOp) -> tuple[str, tuple[Any, ...]] | None:
    """The one statement that applies ``op`` (applied iff it touches one row), if there is one."""
    if isinstance(op, RecordEntry):
        return _INSERT_ENTRY, _entry_params(op.entry)
    if isinstance(op, CreateWorkflow):
        return INSERT_WORKFLOW, record_params(op.record)
    if isinstance(op, RecordAttempt):
        return _INSERT_ATTEMPT, _attempt_params(op.attempt)
    if isinstance(op, DeliverCancel):
        return _DELIVER_CANCEL, (op.key, op.workflow_id, op.owner, op.epoch)
    if isinstance(op, FinishWorkflow):
        return _FINISH, (
            op.status.value, op.output, op.error, op.finished_at, op.finished_at,
            op.workflow_id, op.owner, op.epoch, op.finished_at,
        )  # fmt: skip
    return None


def _consume_event(conn: Conn, op: ConsumeEvent, wake: set[str]) -> bool:
    e = op.entry
    if not _fenced(conn, e.workflow_id, e.owner, e.epoch):
        return False
    conn.execute("SAVEPOINT consume")
    cur = conn.execute(
        "UPDATE events SET consumed_seq = %s "
        "WHERE id = %s AND workflow_id = %s AND consumed_seq IS NULL",
        (e.seq, op.event_id, e.workflow_id),
    )
    if cur.rowcount == 1 and _entry(conn, e):
        conn.execute("RELEASE SAVEPOINT consume")
        return True
    conn.execute("ROLLBACK TO SAVEPOINT consume")
    conn.execute("RELEASE SAVEPOINT consume")
    return False


def _set_state(conn: Conn, op: SetState, wake: set[str]) -> bool:
    if not _fenced(conn, op.workflow_id, op.owner, op.epoch):
        return False
    conn.execute(
        "INSERT INTO state (workflow_id, key, value, seq, updated_at) "
        "VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (workflow_id, key) DO UPDATE SET value = EXCLUDED.value, "
        "seq = EXCLUDED.seq, updated_at = EXCLUDED.updated_at WHERE EXCLUDED.seq >= state.seq",
        (op.workflow_id, op.key, op.value, op.seq, op.updated_at),
    )
    return True


def _start_child(conn: Conn, op: StartChild, wake: set[str]) -> bool:
    if not _entry(conn, op.entry):
        return False
    if conn.execute(INSERT_WORKFLOW, record_params(op.child)).rowcount == 1:
        wake.add("new")
    return True


def _park(conn: Conn, op: Park, wake: set[str]) -> bool:
    # Lock the row first, then decide in a new statement (a fresh READ COMMITTED snapshot): an
    # event, a finished child or a cancellation committed by the time we hold the lock is seen,
    # and one committed later updates wake_at after us (its own update waits for our lock).
    if conn.execute(_LOCK, (op.workflow_id, op.owner, op.epoch)).fetchone() is None:
        return False
    row = conn.execute(
        _PARK,
        (
            op.now, list(op.event_names), list(op.child_ids), op.now, op.wake_at,
            op.workflow_id, op.owner, op.epoch,
        ),
    ).fetchone()  # fmt: skip
    if row is None:
        return False
    if row[0] is not None and row[0] <= op.now:  # runnable at once: any worker may take it
        wake.add("wake")
    return True


def _continue_as_new(conn: Conn, op: ContinueAsNew, wake: set[str]) -> bool:
    cur = conn.execute(
        "INSERT INTO workflow_runs (workflow_id, run, input, output, status, started_at, "
        "finished_at) SELECT id, run, input, %s, 'continued_as_new', started_at, %s "
        "FROM workflows WHERE id = %s AND owner = %s AND epoch = %s "
        f"AND status NOT IN ({TERMINAL_SQL})",
        (op.output, op.finished_at, op.workflow_id, op.owner, op.epoch),
    )
    if cur.rowcount != 1:
        return False
    conn.execute("DELETE FROM journal WHERE workflow_id = %s", (op.workflow_id,))
    conn.execute("DELETE FROM step_attempts WHERE workflow_id = %s", (op.workflow_id,))
    # the next run numbers its calls from 0 again: its state writes must win over older ones
    conn.execute("UPDATE state SET seq = -1 WHERE workflow_id = %s", (op.workflow_id,))
    conn.execute(
        "UPDATE workflows SET input = %s, run = run + 1, owner = NULL, "
        "lease_expires_at = NULL, wake_at = NULL, cancel_key = NULL, started_at = %s, "
        "updated_at = %s WHERE id = %s",
        (op.input, op.finished_at, op.finished_at, op.workflow_id),
    )
    wake.add("new")
    return True


HANDLERS: dict[type, Callable[[Conn, Any, set[str]], bool]] = {
    ConsumeEvent: _consume_event,
    SetState: _set_state,
    StartChild: _start_child,
    Park: _park,
    ContinueAsNew: _continue_as_new,
}


def _outcome(op: WriteOp, cur: Any, wake: set[str]) -> bool:
    """Whether the single statement of ``op`` (run by ``cur``) applied it; notes wake-ups."""
    if isinstance(op, FinishWorkflow):
        row = cur.fetchone()
        if row is None:
            return False
        queue, woken = row
        if queue != "default":  # a place in a limited queue may have opened: admit the next
            wake.add("slot")
        if woken:
            wake.add("child")
        return True
    done: bool = cur.rowcount == 1
    if done and isinstance(op, CreateWorkflow) and op.record.owner is None:
        wake.add("new")  # created unowned (not already claimed by the worker that made it)
    return done


def apply_batch(conn: Conn, ops: Sequence[WriteOp]) -> list[bool]:
    """Apply ``ops`` in order inside the caller's transaction; per op, whether it was applied.

    Each run of consecutive single-statement ops (journal entries, attempts, creations, cancel
    deliveries, finishes: most of a group commit) is sent in pipeline mode, in one round trip;
    the server still runs them in order, so each sees the effects of the ops before it. Within
    a run, consecutive ops of one kind go in one multi-row statement (:class:`Group`); a run
    whose ops are all for different workflows is first sorted by kind, so that each kind makes
    one group. An op whose outcome decides what to run next is applied on its own. Ops that
    make work runnable by any worker (a new unowned workflow or child, a finished child's
    parent, an immediate wake, a new run) notify listening workers, once per kind, at commit.
    """
    applied: list[bool] = [False] * len(ops)
    wake: set[str] = set()
    lock: tuple[str, tuple[Any, ...]] | None = None
    ids = sorted({wid for op in ops if (wid := fenced_id(op)) is not None})
    if len(ids) > 1 or (ids and not all(isinstance(op, _SELF_LOCKING) for op in ops)):
        # Lock every workflow the batch writes for, in id order (as every multi-row lock here
        # is taken), before any fence is checked: a claim (SKIP LOCKED) then cannot take one
        # over while this write is in flight, and two transactions never wait on each other
        # in a cycle. Without the lock a fenced insert could pass its check, and commit after
        # another worker claimed the workflow and loaded a journal without it.
        finishing = [op.workflow_id for op in ops if isinstance(op, FinishWorkflow)]
        lock = (_LOCK_MANY_AND_PARENTS, (ids, finishing)) if finishing else (_LOCK_MANY, (ids,))
    for groups in runs(ops):
        if not isinstance(ops[groups[0][0]], _SINGLE):  # on its own: its outcome decides
            if lock is not None:
                conn.execute(*lock)
                lock = None
            k = groups[0][0]
            applied[k] = HANDLERS[type(ops[k])](conn, ops[k], wake)
            continue
        run: list[tuple[Group | int | None, str, Any]] = []
        if lock is not None:  # sent ahead of the first statements, in the same round trip
            run.append((None, *lock))
            lock = None
        for group in groups:
            if len(group) > 1:
                item = Group(ops, group)
                run.append((item, *item.statement()))
            else:
                stmt = _single_statement(ops[group[0]])
                assert stmt is not None
                run.append((group[0], *stmt))
        if len(run) == 1:
            cursors = [conn.execute(run[0][1], run[0][2])]
        else:
            cursors = []
            with conn.pipeline():
                for _, query, params in run:
                    cur = conn.cursor()
                    cur.execute(query, params)
                    cursors.append(cur)
        for (sent, _, _), cur in zip(run, cursors, strict=True):
            if isinstance(sent, Group):
                for k, done in zip(sent.indices, sent.outcomes(cur, wake), strict=True):
                    applied[k] = done
            elif sent is not None:
                applied[sent] = _outcome(ops[sent], cur, wake)
    if wake:
        notify(conn, *wake)
    return applied
