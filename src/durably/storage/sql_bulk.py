"""Selections of many workflows and their purge, each statement written once for every SQL
dialect: what bulk operations and retention passes read and delete.

A mixin of :class:`~durably.storage.sql_store.SqlStore` (through
:class:`~durably.storage.sql_commands.SqlCommands`); each method is one short transaction.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from durably.storage.base import Store, WorkflowSelection
from durably.storage.dialect import Dialect
from durably.storage.rows import TERMINAL_SQL

__all__ = ["BulkStatements", "SqlBulk", "selection_where"]

PURGED_TABLES = ("journal", "step_attempts", "events", "state", "workflow_runs")
"""The tables whose rows of a workflow go with it (keyed by ``workflow_id``)."""


class BulkStatements:
    """The fixed statements of :class:`SqlBulk`, rendered once for one dialect."""

    def __init__(self, d: Dialect) -> None:
        s = d.sql
        lock = " FOR UPDATE OF w" if d.row_locks else ""
        # lock the doomed rows in id order (every multi-row lock is taken in that order: no
        # deadlock with concurrent purges or commands); a child whose parent has not finished
        # is kept: its parent reads its outcome from its row
        # ids joined as rows ({id_rows}), not tested with {in}: PostgreSQL then plans a
        # primary-key lookup per id whatever its statistics say (fresh after a bulk load, it
        # may otherwise scan a table)
        self.purge = s(
            "WITH doomed AS (SELECT w.id FROM {id_rows} JOIN workflows w ON w.id = q.id WHERE "
            f"w.status IN ({TERMINAL_SQL}) AND NOT EXISTS (SELECT 1 FROM workflows p "
            f"WHERE p.id = w.parent_id AND p.status NOT IN ({TERMINAL_SQL})) "
            f"ORDER BY w.id{lock}) "
            "DELETE FROM workflows WHERE id IN (SELECT id FROM doomed) RETURNING id"
        )
        self.purge_rows = [
            s(f"DELETE FROM {t} WHERE workflow_id IN (SELECT id FROM {{id_rows}})")
            for t in PURGED_TABLES
        ]


@functools.cache
def _bulk_statements(dialect: Dialect) -> BulkStatements:
    return BulkStatements(dialect)


def selection_where(d: Dialect, sel: WorkflowSelection) -> tuple[list[str], list[Any]]:
    """The conditions (to join with AND) and parameters of ``sel``, in ``d``'s spelling."""
    clauses: list[str] = []
    params: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        clauses.append(d.sql(clause))
        params.extend(values)

    if sel.statuses:
        add("status {in}", d.ids([s.value for s in sel.statuses]))
    if sel.names:
        add("name {in}", d.ids(list(sel.names)))
    if sel.exclude_names:
        add("NOT (name {in})", d.ids(list(sel.exclude_names)))
    if sel.version is not None:
        add("version = ?", sel.version)
    if sel.queue is not None:
        add("queue = ?", sel.queue)
    if sel.id_prefix:
        add("substr(id, 1, ?) = ?", len(sel.id_prefix), sel.id_prefix)
    if sel.created_after is not None:
        add("created_at >= ?", sel.created_after)
    if sel.created_before is not None:
        add("created_at < ?", sel.created_before)
    if sel.finished_after is not None:
        add("finished_at >= ?", sel.finished_after)
    if sel.finished_before is not None:
        add("finished_at < ?", sel.finished_before)
    return clauses, params


class SqlBulk(Store):
    """The bulk half of the SQL stores: selections by filter, and purges of many workflows."""

    _dialect: Dialect

    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """One write transaction: committed on exit, rolled back on error."""

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A connection for reads."""

    def _rows(self, query: str, params: Sequence[Any]) -> list[Any]:
        with self._read() as conn:
            rows: list[Any] = conn.execute(query, params).fetchall()
        return rows

    def select_workflow_ids(
        self, selection: WorkflowSelection, *, after: str | None, limit: int
    ) -> list[str]:
        d = self._dialect
        clauses, params = selection_where(d, selection)
        if after is not None:
            clauses.append(d.sql("id > ?"))
            params.append(after)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT id FROM workflows{where} ORDER BY id LIMIT {d.mark}"
        return [row[0] for row in self._rows(query, [*params, limit])]

    def count_workflows(self, selection: WorkflowSelection) -> int:
        clauses, params = selection_where(self._dialect, selection)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return int(self._rows(f"SELECT COUNT(*) FROM workflows{where}", params)[0][0])

    def expired_workflows(
        self, selection: WorkflowSelection, *, after: tuple[float, str] | None, limit: int
    ) -> list[tuple[float, str]]:
        d = self._dialect
        clauses, params = selection_where(d, selection)
        clauses.append("finished_at IS NOT NULL")
        if after is not None:
            clauses.append(d.sql("(finished_at > ? OR (finished_at = ? AND id > ?))"))
            params += [after[0], after[0], after[1]]
        query = (
            f"SELECT finished_at, id FROM workflows{d.indexed('workflows_finished')} "
            f"WHERE {' AND '.join(clauses)} ORDER BY finished_at, id LIMIT {d.mark}"
        )
        return [(float(row[0]), row[1]) for row in self._rows(query, [*params, limit])]

    def purge_workflows(self, workflow_ids: Sequence[str]) -> list[str]:
        wanted = sorted(set(workflow_ids))
        if not wanted:
            return []
        cmd = _bulk_statements(self._dialect)
        with self._transaction() as conn:
            rows = conn.execute(cmd.purge, (self._dialect.ids(wanted),)).fetchall()
            purged = sorted(row[0] for row in rows)
            if purged:
                ids = self._dialect.ids(purged)
                for statement in cmd.purge_rows:
                    conn.execute(statement, (ids,))
        return purged
