"""Backend-neutral row mapping: the column lists every backend selects, and records from rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypedDict, Unpack

from durably.storage.base import (
    PREVIEW_CHARS,
    TERMINAL_STATUSES,
    FinishWorkflow,
    JournalEntry,
    WorkflowRecord,
    WorkflowStatus,
)

__all__ = [
    "JOURNAL_COLUMNS",
    "LIST_COLUMNS",
    "TERMINAL_SQL",
    "WF_COLUMNS",
    "ListFilters",
    "ListQuery",
    "entry_row",
    "finish_row",
    "list_query",
    "record_params",
    "to_entry",
    "to_record",
]

WF_COLUMNS = (
    "id, name, status, input, created_at, updated_at, output, error, queue, priority, owner, "
    "epoch, lease_expires_at, wake_at, version, parent_id, started_at, finished_at, run, "
    "parent_seq, cancel_requested, cancel_key"
)
LIST_COLUMNS = ", ".join(
    f"substr({c}, 1, {PREVIEW_CHARS + 1})" if c in ("input", "output", "error") else c
    for c in WF_COLUMNS.split(", ")
)
"""WF_COLUMNS as a list selects them: the payloads cut to previews (``substr`` reads only the
start of a value on both backends), so a page never carries whole inputs or outputs."""
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


def entry_row(e: JournalEntry) -> tuple[Any, ...]:
    """A journal entry as parameters in JOURNAL_COLUMNS order."""
    return (
        e.workflow_id, e.seq, e.kind, e.name, e.status, e.result, e.error, e.attempts,
        e.owner, e.epoch, e.started_at, e.finished_at, e.key or str(e.seq),
    )  # fmt: skip


def finish_row(op: FinishWorkflow) -> tuple[Any, ...]:
    """A finish as (id, status, output, error, finished_at, owner, epoch)."""
    return (op.workflow_id, op.status.value, op.output, op.error, op.finished_at, op.owner,
            op.epoch)  # fmt: skip


def to_entry(row: Sequence[Any]) -> JournalEntry:
    """A journal row (in JOURNAL_COLUMNS order) as a JournalEntry."""
    return JournalEntry(*row)


class ListQuery(NamedTuple):
    """How a backend spells the parts of :func:`list_query` that differ."""

    mark: str
    """The parameter placeholder (``?`` or ``%s``)."""
    status_in: str
    """The status filter, one placeholder for every status at once."""
    statuses: Callable[[list[str]], Any]
    """The statuses (values) as that placeholder's parameter."""
    id_order: str
    """``id`` as it is compared and sorted (bytewise)."""


class ListFilters(TypedDict, total=False):
    """The filters of :meth:`Store.list_workflows <durably.storage.base.Store.list_workflows>`
    (see there); ``limit`` is 100 when absent."""

    statuses: Sequence[WorkflowStatus] | None
    name: str | None
    limit: int
    created_after: float | None
    created_before: float | None
    id_prefix: str | None
    before: tuple[float, str] | None


def list_query(q: ListQuery, **filters: Unpack[ListFilters]) -> tuple[str, list[Any]]:
    """The query of ``Store.list_workflows`` (newest first, keyset pages, payloads cut to
    previews: LIST_COLUMNS) and its parameters."""
    unknown = filters.keys() - ListFilters.__annotations__.keys()
    if unknown:
        raise TypeError(f"list_workflows() got unknown filters: {', '.join(sorted(unknown))}")
    statuses = filters.get("statuses")
    name = filters.get("name")
    created_after = filters.get("created_after")
    created_before = filters.get("created_before")
    id_prefix = filters.get("id_prefix")
    before = filters.get("before")
    m = q.mark
    clauses: list[str] = []
    params: list[Any] = []
    if statuses:
        clauses.append(q.status_in)
        params.append(q.statuses([WorkflowStatus(s).value for s in statuses]))
    if name is not None:
        clauses.append(f"name = {m}")
        params.append(name)
    if created_after is not None:
        clauses.append(f"created_at >= {m}")
        params.append(created_after)
    if created_before is not None:
        clauses.append(f"created_at < {m}")
        params.append(created_before)
    if id_prefix:
        clauses.append(f"substr(id, 1, {m}) = {m}")
        params += [len(id_prefix), id_prefix]
    if before is not None:
        clauses.append(f"(created_at < {m} OR (created_at = {m} AND {q.id_order} < {m}))")
        params += [before[0], before[0], before[1]]
    where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
    params.append(filters.get("limit", 100))
    sql = (
        f"SELECT {LIST_COLUMNS} FROM workflows {where}"
        f"ORDER BY created_at DESC, {q.id_order} DESC LIMIT {m}"
    )
    return sql, params
