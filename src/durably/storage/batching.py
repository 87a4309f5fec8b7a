"""What both backends need to know to group the ops of one group commit: which workflow fences
an op, and when a run of ops may be reordered so that ops of one kind sit together."""

from __future__ import annotations

from collections.abc import Sequence

from durably.storage.base import (
    ConsumeEvent,
    CreateWorkflow,
    DeliverCancel,
    FinishWorkflow,
    RecordAttempt,
    RecordEntry,
    StartChild,
    WriteOp,
)

__all__ = ["GROUPED", "KIND_ORDER", "SINGLE", "fenced_id", "reorderable", "row_key"]

SINGLE = (RecordEntry, CreateWorkflow, RecordAttempt, DeliverCancel, FinishWorkflow)
"""The op kinds that write only their own workflow's rows (and a finish, its parent's wake-up):
what they do does not depend on ops for other workflows."""

GROUPED = (RecordEntry, CreateWorkflow, FinishWorkflow)
"""The op kinds that go in groups (many ops of one kind in one statement)."""

KIND_ORDER = {
    CreateWorkflow: 0, RecordEntry: 1, RecordAttempt: 2, DeliverCancel: 3, FinishWorkflow: 4,
}  # fmt: skip
"""The order of the kinds in a reordered run."""


def fenced_id(op: WriteOp) -> str | None:
    """The workflow whose (owner, epoch) fences ``op``; None for a creation (not fenced)."""
    if isinstance(op, RecordEntry | ConsumeEvent | StartChild):
        return op.entry.workflow_id
    if isinstance(op, RecordAttempt):
        return op.attempt.workflow_id
    if isinstance(op, CreateWorkflow):
        return None
    return op.workflow_id


def reorderable(ops: Sequence[WriteOp], run: range) -> bool:
    """Whether the ``SINGLE`` ops ``run`` may go in any order: each for a different workflow
    (statements for different workflows do not read what the others write)."""
    seen: set[str] = set()
    for k in run:
        op = ops[k]
        wid = op.record.id if isinstance(op, CreateWorkflow) else fenced_id(op)
        if wid is None or wid in seen:
            return False
        seen.add(wid)
    return True


def row_key(op: WriteOp) -> tuple[str, int] | str:
    """The row a ``GROUPED`` op writes: a group holds at most one op per row."""
    if isinstance(op, RecordEntry):
        return (op.entry.workflow_id, op.entry.seq)
    if isinstance(op, CreateWorkflow):
        return op.record.id
    assert isinstance(op, FinishWorkflow)
    return op.workflow_id
