"""What both backends need to know to group the ops of one group commit: which workflow fences
an op, and when a run of ops may be reordered so that ops of one kind sit together."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

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
from durably.storage.rows import entry_row, finish_row, record_params

__all__ = [
    "GROUPED",
    "KIND_ORDER",
    "SINGLE",
    "fenced_id",
    "group_rows",
    "reorderable",
    "row_key",
    "runs",
]

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


def group_rows(ops: Sequence[WriteOp]) -> list[tuple[Any, ...]]:
    """The rows a group of ``GROUPED`` ops of one kind writes, as each op's own statement
    would: journal entries (``JOURNAL_COLUMNS``), workflows (``WF_COLUMNS``) or finishes
    (:func:`~durably.storage.rows.finish_row`)."""
    rows: list[tuple[Any, ...]] = []
    for op in ops:
        if isinstance(op, RecordEntry):
            rows.append(entry_row(op.entry))
        elif isinstance(op, CreateWorkflow):
            rows.append(record_params(op.record))
        else:
            assert isinstance(op, FinishWorkflow)
            rows.append(finish_row(op))
    return rows


def runs(ops: Sequence[WriteOp]) -> Iterator[list[list[int]]]:
    """The indices of ``ops`` in the order to apply them, run by run.

    A run of consecutive ``SINGLE`` ops (first sorted by kind if each is for a different
    workflow) is a list of groups: consecutive ops of one ``GROUPED`` kind, each writing a
    different row, or else one op. Any other op (its outcome decides what to do next) is a run
    of its own, ``[[k]]``.
    """
    i = 0
    while i < len(ops):
        if not isinstance(ops[i], SINGLE):
            yield [[i]]
            i += 1
            continue
        end = i
        while end < len(ops) and isinstance(ops[end], SINGLE):
            end += 1
        order = list(range(i, end))
        if len(order) > 1 and reorderable(ops, range(i, end)):
            order.sort(key=lambda k: KIND_ORDER[type(ops[k])])
        groups: list[list[int]] = []
        rows: set[tuple[str, int] | str] = set()
        for k in order:
            op = ops[k]
            grouped = isinstance(op, GROUPED)
            last = groups[-1] if groups else None
            if grouped and last and type(ops[last[0]]) is type(op) and row_key(op) not in rows:
                last.append(k)
            else:
                groups.append([k])
                rows = set()
            if grouped:
                rows.add(row_key(op))
        yield groups
        i = end
