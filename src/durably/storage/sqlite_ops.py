"""SQLite row mapping and the fenced write ops, one small handler per op type."""

from __future__ import annotations

import json
import sqlite3
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
    WriteOp,
)
from durably.storage.rows import (
    JOURNAL_COLUMNS,
    TERMINAL_SQL,
    WF_COLUMNS,
    entry_row,
    record_params,
)

FENCE = (
    "EXISTS (SELECT 1 FROM workflows WHERE id = ? AND owner = ? AND epoch = ? "
    f"AND status NOT IN ({TERMINAL_SQL}))"
)
_INSERT_ENTRY = (
    f"INSERT INTO journal ({JOURNAL_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
    f"WHERE {FENCE} ON CONFLICT (workflow_id, seq) DO UPDATE SET status = excluded.status, "
    "result = excluded.result, error = excluded.error, attempts = excluded.attempts, "
    "owner = excluded.owner, epoch = excluded.epoch, finished_at = excluded.finished_at "
    "WHERE journal.status = 'waiting' AND journal.kind = excluded.kind "
    "AND journal.name = excluded.name"
)
_INSERT_ATTEMPT = (
    "INSERT INTO step_attempts (workflow_id, seq, attempt, error, owner, epoch, started_at, "
    f"finished_at) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE {FENCE} "
    "ON CONFLICT DO NOTHING"
)
_FINISH = (
    "UPDATE workflows SET status = ?, output = ?, error = ?, finished_at = ?, updated_at = ?, "
    "owner = NULL, lease_expires_at = NULL "
    f"WHERE id = ? AND owner = ? AND epoch = ? AND status NOT IN ({TERMINAL_SQL})"
)
_WAKE_PARENT = (
    "UPDATE workflows SET wake_at = ? WHERE id = (SELECT parent_id FROM workflows WHERE id = ?) "
    f"AND status NOT IN ({TERMINAL_SQL})"
)
_PARK = (
    "UPDATE workflows SET owner = NULL, lease_expires_at = NULL, updated_at = ?, "
    "wake_at = CASE WHEN cancel_requested = 1 "
    "  OR EXISTS (SELECT 1 FROM events e WHERE e.workflow_id = workflows.id "
    "    AND e.consumed_seq IS NULL AND e.name IN (SELECT value FROM json_each(?))) "
    "  OR EXISTS (SELECT 1 FROM workflows c WHERE c.parent_id = workflows.id "
    "    AND c.id IN (SELECT value FROM json_each(?)) "
    f"    AND c.status IN ({TERMINAL_SQL})) "
    "THEN ? ELSE ? END "
    f"WHERE id = ? AND owner = ? AND epoch = ? AND status NOT IN ({TERMINAL_SQL})"
)


INSERT_WORKFLOW = (
    f"INSERT INTO workflows ({WF_COLUMNS}) VALUES ({', '.join('?' * 22)}) "
    "ON CONFLICT (id) DO NOTHING"
)


def _fenced(conn: sqlite3.Connection, workflow_id: str, owner: str, epoch: int) -> bool:
    row = conn.execute(f"SELECT {FENCE}", (workflow_id, owner, epoch)).fetchone()
    return bool(row[0])


def _entry(conn: sqlite3.Connection, e: JournalEntry) -> bool:
    cur = conn.execute(_INSERT_ENTRY, (*entry_row(e), e.workflow_id, e.owner, e.epoch))
    return cur.rowcount == 1


def _create(conn: sqlite3.Connection, op: CreateWorkflow) -> bool:
    return conn.execute(INSERT_WORKFLOW, record_params(op.record)).rowcount == 1


def _record_entry(conn: sqlite3.Connection, op: RecordEntry) -> bool:
    return _entry(conn, op.entry)


def _record_attempt(conn: sqlite3.Connection, op: RecordAttempt) -> bool:
    a = op.attempt
    cur = conn.execute(
        _INSERT_ATTEMPT,
        (
            a.workflow_id, a.seq, a.attempt, a.error, a.owner, a.epoch, a.started_at,
            a.finished_at, a.workflow_id, a.owner, a.epoch,
        ),
    )  # fmt: skip
    return cur.rowcount == 1


def _finish(conn: sqlite3.Connection, op: FinishWorkflow) -> bool:
    cur = conn.execute(
        _FINISH,
        (
            op.status.value, op.output, op.error, op.finished_at, op.finished_at,
            op.workflow_id, op.owner, op.epoch,
        ),
    )  # fmt: skip
    if cur.rowcount != 1:
        return False
    conn.execute(_WAKE_PARENT, (op.finished_at, op.workflow_id))
    return True


def _consume_event(conn: sqlite3.Connection, op: ConsumeEvent) -> bool:
    e = op.entry
    if not _fenced(conn, e.workflow_id, e.owner, e.epoch):
        return False
    conn.execute("SAVEPOINT consume")
    cur = conn.execute(
        "UPDATE events SET consumed_seq = ? "
        "WHERE id = ? AND workflow_id = ? AND consumed_seq IS NULL",
        (e.seq, op.event_id, e.workflow_id),
    )
    if cur.rowcount == 1 and _entry(conn, e):
        conn.execute("RELEASE consume")
        return True
    conn.execute("ROLLBACK TO consume")
    conn.execute("RELEASE consume")
    return False


def _set_state(conn: sqlite3.Connection, op: SetState) -> bool:
    if not _fenced(conn, op.workflow_id, op.owner, op.epoch):
        return False
    conn.execute(
        "INSERT INTO state (workflow_id, key, value, seq, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (workflow_id, key) DO UPDATE SET value = excluded.value, "
        "seq = excluded.seq, updated_at = excluded.updated_at WHERE excluded.seq >= state.seq",
        (op.workflow_id, op.key, op.value, op.seq, op.updated_at),
    )
    return True


def _start_child(conn: sqlite3.Connection, op: StartChild) -> bool:
    if not _entry(conn, op.entry):
        return False
    conn.execute(INSERT_WORKFLOW, record_params(op.child))
    return True


def _park(conn: sqlite3.Connection, op: Park) -> bool:
    cur = conn.execute(
        _PARK,
        (
            op.now, json.dumps(op.event_names), json.dumps(op.child_ids), op.now, op.wake_at,
            op.workflow_id, op.owner, op.epoch,
        ),
    )  # fmt: skip
    return cur.rowcount == 1


def _deliver_cancel(conn: sqlite3.Connection, op: DeliverCancel) -> bool:
    cur = conn.execute(
        "UPDATE workflows SET cancel_key = ?, cancel_requested = 0 "
        f"WHERE id = ? AND owner = ? AND epoch = ? AND status NOT IN ({TERMINAL_SQL})",
        (op.key, op.workflow_id, op.owner, op.epoch),
    )
    return cur.rowcount == 1


def _continue_as_new(conn: sqlite3.Connection, op: ContinueAsNew) -> bool:
    cur = conn.execute(
        "INSERT INTO workflow_runs (workflow_id, run, input, output, status, started_at, "
        "finished_at) SELECT id, run, input, ?, 'continued_as_new', started_at, ? "
        f"FROM workflows WHERE id = ? AND owner = ? AND epoch = ? "
        f"AND status NOT IN ({TERMINAL_SQL})",
        (op.output, op.finished_at, op.workflow_id, op.owner, op.epoch),
    )
    if cur.rowcount != 1:
        return False
    conn.execute("DELETE FROM journal WHERE workflow_id = ?", (op.workflow_id,))
    conn.execute("DELETE FROM step_attempts WHERE workflow_id = ?", (op.workflow_id,))
    # the next run numbers its calls from 0 again: its state writes must win over older ones
    conn.execute("UPDATE state SET seq = -1 WHERE workflow_id = ?", (op.workflow_id,))
    conn.execute(
        "UPDATE workflows SET input = ?, run = run + 1, owner = NULL, lease_expires_at = NULL, "
        "wake_at = NULL, cancel_key = NULL, started_at = ?, updated_at = ? WHERE id = ?",
        (op.input, op.finished_at, op.finished_at, op.workflow_id),
    )
    return True


HANDLERS: dict[type, Callable[[sqlite3.Connection, Any], bool]] = {
    CreateWorkflow: _create,
    RecordEntry: _record_entry,
    RecordAttempt: _record_attempt,
    FinishWorkflow: _finish,
    ConsumeEvent: _consume_event,
    SetState: _set_state,
    StartChild: _start_child,
    Park: _park,
    DeliverCancel: _deliver_cancel,
    ContinueAsNew: _continue_as_new,
}


def apply(conn: sqlite3.Connection, op: WriteOp) -> bool:
    """Apply one write op inside the caller's transaction; whether it was applied."""
    return HANDLERS[type(op)](conn, op)
