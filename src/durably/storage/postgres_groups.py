"""PostgreSQL: many ops of one kind in one statement (``unnest`` of one array per column).

A group commit mostly holds journal entries, creations and finishes of different workflows.
Each sent on its own costs the server a statement (about 28 us of its CPU per row here); a
multi-row statement costs about 8 us per row. A group writes each row exactly as the op's own
statement would, and says which of its ops were applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durably.storage.base import CreateWorkflow, FinishWorkflow, RecordEntry, WriteOp
from durably.storage.batching import group_rows, row_key
from durably.storage.rows import JOURNAL_COLUMNS, TERMINAL_SQL, WF_COLUMNS
from durably.storage.sql_ops import UPSERT_ENTRY

__all__ = ["Group"]

INSERT_ENTRIES = (
    f"INSERT INTO journal ({JOURNAL_COLUMNS}) SELECT v.* FROM unnest("
    "%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::bigint[], %s::text[], %s::bigint[], %s::float8[], %s::float8[], %s::text[]) AS v("
    f"{JOURNAL_COLUMNS}) WHERE EXISTS (SELECT 1 FROM workflows w WHERE w.id = v.workflow_id "
    f"AND w.owner = v.owner AND w.epoch = v.epoch AND w.status NOT IN ({TERMINAL_SQL}) "
    "FOR NO KEY UPDATE) " + UPSERT_ENTRY + " RETURNING workflow_id, seq"
)
"""Many fenced journal entries (each as the single-entry insert would write it): one row
(workflow_id, seq) per entry applied."""

_WF_TYPES = (
    "text", "text", "text", "text", "float8", "float8", "text", "text", "text", "bigint",
    "text", "bigint", "float8", "float8", "text", "text", "float8", "float8", "bigint",
    "bigint", "bigint", "text",
)  # fmt: skip
INSERT_WORKFLOWS = (
    f"INSERT INTO workflows ({WF_COLUMNS}) SELECT * FROM unnest("
    + ", ".join(f"%s::{t}[]" for t in _WF_TYPES)
    + ") ON CONFLICT (id) DO NOTHING RETURNING id"
)
"""Many creations: one row (id) per workflow created (an existing id is left as it is)."""

FINISH_MANY = (
    "WITH v AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::float8[], %s::text[], %s::bigint[]) AS v(id, status, output, error, at, owner, epoch)), "
    "fin AS (UPDATE workflows w SET status = v.status, output = v.output, error = v.error, "
    "finished_at = v.at, updated_at = v.at, owner = NULL, lease_expires_at = NULL FROM v "
    "WHERE w.id = v.id AND w.owner = v.owner AND w.epoch = v.epoch "
    f"AND w.status NOT IN ({TERMINAL_SQL}) RETURNING w.id, w.parent_id, w.queue, v.at), "
    # a parent finishing in this same statement is left to its own update (one statement must
    # not update a row twice); a finished workflow needs no wake-up anyway
    "woke AS (UPDATE workflows p SET wake_at = fin.at FROM fin WHERE p.id = fin.parent_id "
    f"AND p.status NOT IN ({TERMINAL_SQL}) AND p.id NOT IN (SELECT id FROM v) RETURNING p.id) "
    "SELECT fin.id, fin.queue, fin.parent_id IN (SELECT id FROM woke) FROM fin"
)
"""Many finishes, each waking its parent: one row (id, queue, parent woken) per finish
applied."""

_WIDTHS = {RecordEntry: 13, CreateWorkflow: len(_WF_TYPES), FinishWorkflow: 7}
"""Columns of each kind's rows (one array each)."""


class Group:
    """Ops of one kind (``GROUPED``), at most one per row they write, for one statement: the
    ops of ``indices`` in a batch."""

    __slots__ = ("indices", "kind", "ops", "width")

    def __init__(self, ops: Sequence[WriteOp], indices: list[int]) -> None:
        self.indices = indices
        self.ops = [ops[k] for k in indices]
        self.kind = type(self.ops[0])
        self.width = _WIDTHS[self.kind]

    def statement(self) -> tuple[str, tuple[list[Any], ...]]:
        """The query and its parameters (one array per column)."""
        columns = _columns(group_rows(self.ops), self.width)
        if self.kind is RecordEntry:
            return INSERT_ENTRIES, columns
        if self.kind is CreateWorkflow:
            return INSERT_WORKFLOWS, columns
        return FINISH_MANY, columns

    def outcomes(self, cur: Any, wake: set[str]) -> list[bool]:
        """Per op (in order), whether it was applied, from the statement's returned rows;
        notes the wake-ups to send (as each op's own statement would)."""
        returned = cur.fetchall()
        if self.kind is RecordEntry:
            written = {(row[0], row[1]) for row in returned}
            return [row_key(op) in written for op in self.ops]
        if self.kind is CreateWorkflow:
            created = {row[0] for row in returned}
            applied = [row_key(op) in created for op in self.ops]
            for op, done in zip(self.ops, applied, strict=True):
                if done and isinstance(op, CreateWorkflow) and op.record.owner is None:
                    wake.add("new")  # created unowned (not already claimed by its maker)
            return applied
        finished = set()
        for wid, queue, woken in returned:
            finished.add(wid)
            if queue != "default":  # a place in a limited queue may have opened
                wake.add("slot")
            if woken:
                wake.add("child")
        return [row_key(op) in finished for op in self.ops]


def _columns(rows: Sequence[Sequence[Any]], width: int) -> tuple[list[Any], ...]:
    columns: tuple[list[Any], ...] = tuple([] for _ in range(width))
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns
