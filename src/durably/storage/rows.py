"""Backend-neutral row mapping: the column lists every backend selects, and records from rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durably.storage.base import TERMINAL_STATUSES, JournalEntry, WorkflowRecord, WorkflowStatus

__all__ = [
    "JOURNAL_COLUMNS",
    "TERMINAL_SQL",
    "WF_COLUMNS",
    "record_params",
    "to_entry",
    "to_record",
]

WF_COLUMNS = (
    "id, name, status, input, created_at, updated_at, output, error, queue, priority, owner, "
    "epoch, lease_expires_at, wake_at, version, parent_id, started_at, finished_at, run, "
    "parent_seq, cancel_requested, cancel_key"
)
JOURNAL_COLUMNS = (
    "workflow_id, seq, kind, name, status, result, error, attempts, owner, epoch, "
    "started_at, finished_at, key"
)
TERMINAL_SQL = ", ".join(f"'{s.value}'" for s in sorted(TERMINAL_STATUSES))


def to_record(row: Sequence[Any]) -> WorkflowRecord:
    """A workflows row (in WF_COLUMNS order) as a WorkflowRecord."""
    return WorkflowRecord(
        id=row[0], name=row[1], status=WorkflowStatus(row[2]), input=row[3],
        created_at=row[4], updated_at=row[5], output=row[6], error=row[7], queue=row[8],
        priority=row[9], owner=row[10], epoch=row[11], lease_expires_at=row[12],
        wake_at=row[13], version=row[14], parent_id=row[15], started_at=row[16],
        finished_at=row[17], run=row[18], parent_seq=row[19],
        cancel_requested=bool(row[20]), cancel_key=row[21],
    )  # fmt: skip


def record_params(r: WorkflowRecord) -> tuple[Any, ...]:
    """A WorkflowRecord as parameters in WF_COLUMNS order."""
    return (
        r.id, r.name, r.status.value, r.input, r.created_at, r.updated_at, r.output, r.error,
        r.queue, r.priority, r.owner, r.epoch, r.lease_expires_at, r.wake_at, r.version,
        r.parent_id, r.started_at, r.finished_at, r.run, r.parent_seq, int(r.cancel_requested),
        r.cancel_key,
    )  # fmt: skip


def to_entry(row: Sequence[Any]) -> JournalEntry:
    """A journal row (in JOURNAL_COLUMNS order) as a JournalEntry."""
    return JournalEntry(*row)
