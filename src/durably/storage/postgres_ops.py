"""PostgreSQL's group commit: the fenced write ops of one batch pipelined in as few round
trips as it takes, many ops of one kind in one multi-row statement
(:mod:`durably.storage.postgres_groups`). Each op's own statement, and the handlers of the ops
that are applied on their own, are shared with every dialect (:mod:`durably.storage.sql_ops`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from durably.storage.base import (
    CreateWorkflow,
    DeliverCancel,
    FinishWorkflow,
    RecordAttempt,
    RecordEntry,
    WriteOp,
)
from durably.storage.batching import SINGLE, fenced_id, runs
from durably.storage.dialect import POSTGRES
from durably.storage.postgres_groups import Group
from durably.storage.rows import TERMINAL_SQL
from durably.storage.sql_store import statements

if TYPE_CHECKING:
    import psycopg

    Conn: TypeAlias = psycopg.Connection[tuple[Any, ...]]

__all__ = ["apply_batch", "write_batch"]

OPS = statements(POSTGRES)[0]
"""The shared write ops rendered for PostgreSQL."""

_FINISH = (
    "WITH fin AS (UPDATE workflows SET status = %s, output = %s, error = %s, "
    "finished_at = %s, updated_at = %s, owner = NULL, lease_expires_at = NULL "
    f"WHERE id = %s AND owner = %s AND epoch = %s AND status NOT IN ({TERMINAL_SQL}) "
    "RETURNING parent_id, queue), "
    "woke AS (UPDATE workflows SET wake_at = %s WHERE id = (SELECT parent_id FROM fin) "
    f"AND status NOT IN ({TERMINAL_SQL}) RETURNING 1) "
    "SELECT queue, (SELECT count(*) FROM woke) FROM fin"
)
"""Finish a workflow and wake its parent in one statement (so that it can be pipelined, unlike
the shared handler's two): one row, (queue, parents woken), if applied."""
_LOCK_MANY = "SELECT id FROM workflows WHERE id = ANY(%s::text[]) ORDER BY id FOR NO KEY UPDATE"
_LOCK_MANY_AND_PARENTS = (
    "SELECT id FROM workflows WHERE id = ANY(%s::text[] || ARRAY(SELECT parent_id "
    "FROM workflows WHERE id = ANY(%s::text[]))) "
    "ORDER BY id FOR NO KEY UPDATE"
)
"""The batch's workflows, and the parents its finishing children wake, in id order (one
``= ANY`` of an array, so that the primary key index serves it)."""

_SELF_LOCKING = (RecordEntry, RecordAttempt, DeliverCancel, CreateWorkflow)
"""Ops whose one statement checks its fence while locking the workflow's row: a batch of these
for a single workflow (a step of a sequential workflow) needs no lock statement ahead."""


def _single_statement(op: WriteOp) -> tuple[str, tuple[Any, ...]] | None:
    """The one statement that applies ``op``, if there is one (a finish: with its parent's
    wake-up)."""
    if isinstance(op, FinishWorkflow):
        return _FINISH, (
            op.status.value, op.output, op.error, op.finished_at, op.finished_at,
            op.workflow_id, op.owner, op.epoch, op.finished_at,
        )  # fmt: skip
    return OPS.single(op)


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
    return OPS.outcome(op, cur.rowcount, wake)


def apply_batch(conn: Conn, ops: Sequence[WriteOp]) -> list[bool]:
    """Apply ``ops`` in order inside the caller's transaction, as a store's ``write`` does
    (:func:`write_batch`, then the notifications); per op, whether it was applied."""
    wake: set[str] = set()
    applied = write_batch(conn, ops, wake)
    if wake:
        POSTGRES.notify(conn, wake)
    return applied


def write_batch(conn: Conn, ops: Sequence[WriteOp], wake: set[str]) -> list[bool]:
    """Apply ``ops`` in order inside the caller's transaction; per op, whether it was applied.

    Each run of consecutive single-statement ops (journal entries, attempts, creations, cancel
    deliveries, finishes: most of a group commit) is sent in pipeline mode, in one round trip;
    the server still runs them in order, so each sees the effects of the ops before it. Within
    a run, consecutive ops of one kind go in one multi-row statement (:class:`Group`); a run
    whose ops are all for different workflows is first sorted by kind, so that each kind makes
    one group. An op whose outcome decides what to run next is applied on its own. Ops that
    make work runnable by any worker (a new unowned workflow or child, a finished child's
    parent, an immediate wake, a new run) note a wake-up kind in ``wake``, for the caller to
    send.
    """
    applied: list[bool] = [False] * len(ops)
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
        if not isinstance(ops[groups[0][0]], SINGLE):  # on its own: its outcome decides
            if lock is not None:
                conn.execute(*lock)
                lock = None
            k = groups[0][0]
            applied[k] = OPS.apply(conn, ops[k], wake)
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
    return applied
