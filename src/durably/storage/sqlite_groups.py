"""SQLite: many ops of one kind in one statement (a multi-row ``VALUES`` list).

The sqlite3 module releases the GIL around every statement it runs. A group commit of 700 ops
sent one statement each handed the GIL over 700 times, and while the process's event loop is
busy each hand-back can wait up to the interpreter's switch interval: the writer thread spent
several times the writes' own cost waiting. A group writes its rows in a few statements, each
row exactly as the op's own statement would.

Which op of a group was not applied (a lost lease, a journal entry already final) cannot be
told from one statement's row count. Groups are therefore written optimistically inside a
savepoint: if any group applied fewer rows than it holds, :func:`write_grouped` answers None and
the caller rolls back to the savepoint and applies the ops one by one.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from durably.storage.base import CreateWorkflow, FinishWorkflow, RecordEntry, WriteOp
from durably.storage.batching import group_rows, runs
from durably.storage.rows import JOURNAL_COLUMNS, TERMINAL_SQL, WF_COLUMNS
from durably.storage.sql_ops import UPSERT_ENTRY

__all__ = ["MIN_GROUP", "can_group", "write_grouped"]

MIN_GROUP = 4
"""Fewer ops of a kind in a row go one statement each."""
MAX_ROWS = 256
"""Rows per statement at most; a group is sent in chunks of powers of two (few distinct
statements, so that the connection's statement cache keeps them prepared)."""

Apply = Callable[[sqlite3.Connection, WriteOp], bool]


def can_group(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite runs the group statements: ``UPDATE ... FROM`` (3.33) and enough
    parameters for a chunk of creations."""
    if sqlite3.sqlite_version_info < (3, 33, 0):
        return False
    return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) >= MAX_ROWS * 22


def _values(n: int, width: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * n)


@functools.cache
def _insert_entries(n: int) -> str:
    return (
        f"INSERT INTO journal ({JOURNAL_COLUMNS}) SELECT * FROM (VALUES {_values(n, 13)}) AS v "
        "WHERE EXISTS (SELECT 1 FROM workflows w WHERE w.id = v.column1 "
        "AND w.owner = v.column9 AND w.epoch = v.column10 "
        f"AND w.status NOT IN ({TERMINAL_SQL})) " + UPSERT_ENTRY
    )


@functools.cache
def _insert_workflows(n: int) -> str:
    return (
        f"INSERT INTO workflows ({WF_COLUMNS}) VALUES {_values(n, 22)} ON CONFLICT (id) DO NOTHING"
    )


@functools.cache
def _finish(n: int) -> str:
    return (
        "UPDATE workflows SET status = v.column2, output = v.column3, error = v.column4, "
        "finished_at = v.column5, updated_at = v.column5, owner = NULL, lease_expires_at = NULL "
        f"FROM (VALUES {_values(n, 7)}) AS v WHERE workflows.id = v.column1 "
        "AND workflows.owner = v.column6 AND workflows.epoch = v.column7 "
        f"AND workflows.status NOT IN ({TERMINAL_SQL})"
    )


@functools.cache
def _wake_parents(n: int) -> str:
    # as each finish's own wake-up (see sql_ops), at the latest finish time of the group; a
    # parent finished in the same group needs none
    return (
        "UPDATE workflows SET wake_at = ? WHERE id IN (SELECT parent_id FROM workflows "
        f"WHERE id IN ({', '.join('?' * n)}) AND parent_id IS NOT NULL) "
        f"AND status NOT IN ({TERMINAL_SQL})"
    )


def _chunks(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """``rows`` in chunks of MAX_ROWS or less, each a power of two."""
    out = []
    i = 0
    while i < len(rows):
        left = len(rows) - i
        size = MAX_ROWS if left >= MAX_ROWS else 1 << (left.bit_length() - 1)
        out.append(rows[i : i + size])
        i += size
    return out


def _write(
    conn: sqlite3.Connection, make: Callable[[int], str], rows: list[tuple[Any, ...]]
) -> int:
    """Run ``make``'s statement over ``rows`` (in chunks); how many rows it changed."""
    changed = 0
    for chunk in _chunks(rows):
        params = tuple(chain.from_iterable(chunk))
        changed += conn.execute(make(len(chunk)), params).rowcount
    return changed


def _group(conn: sqlite3.Connection, kind: type, ops: list[WriteOp]) -> bool:
    """Write ``ops`` (all of ``kind``); whether every one of them was applied."""
    if kind is RecordEntry:
        return _write(conn, _insert_entries, group_rows(ops)) == len(ops)
    if kind is CreateWorkflow:
        return _write(conn, _insert_workflows, group_rows(ops)) == len(ops)
    finishes = [op for op in ops if isinstance(op, FinishWorkflow)]
    if _write(conn, _finish, group_rows(finishes)) != len(ops):
        return False
    at = max(op.finished_at for op in finishes)
    for chunk in _chunks([(op.workflow_id,) for op in finishes]):
        conn.execute(_wake_parents(len(chunk)), (at, *(row[0] for row in chunk)))
    return True


def write_grouped(
    conn: sqlite3.Connection, ops: Sequence[WriteOp], apply: Apply
) -> list[bool] | None:
    """Apply ``ops`` in order in the caller's transaction (see :func:`batching.runs`), groups of
    ``MIN_GROUP`` or more in multi-row statements, the rest one by one with ``apply``. Per op,
    whether it was applied; None if some group was not wholly applied (the caller undoes
    everything this wrote, and applies the ops one by one)."""
    applied = [False] * len(ops)
    for run in runs(ops):
        for group in run:
            if len(group) < MIN_GROUP:
                for k in group:
                    applied[k] = apply(conn, ops[k])
            elif _group(conn, type(ops[group[0]]), [ops[k] for k in group]):
                for k in group:
                    applied[k] = True
            else:
                return None
    return applied
