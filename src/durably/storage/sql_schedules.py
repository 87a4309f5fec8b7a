"""The schedules half of the SQL stores: each statement written once for every dialect.

Every change of a schedule is a compare-and-set on its ``revision`` (see
:meth:`~durably.storage.base.Store.update_schedule`), in the same transaction as the workflows
the change starts, inserted with the one create-once statement of every start.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from durably.storage.base import ScheduleRecord, WorkflowRecord
from durably.storage.dialect import Dialect
from durably.storage.rows import record_params
from durably.storage.sql_commands import SqlCommands
from durably.storage.sql_ops import INSERT_WORKFLOW

__all__ = ["SCHEDULE_COLUMNS", "SqlSchedules"]

_FIELDS = (
    "workflow_name", "spec", "input", "created_at", "updated_at", "queue", "overlap",
    "catchup_window", "jitter", "start_at", "end_at", "enabled", "pause_reason", "note",
    "next_run_at", "due_at", "buffered_at", "last_tick", "last_workflow_id", "last_result",
    "missed", "revision",
)  # fmt: skip
SCHEDULE_COLUMNS = "id, " + ", ".join(_FIELDS)


def _row(rec: ScheduleRecord) -> tuple[Any, ...]:
    return (
        rec.name, rec.workflow_name, rec.spec, rec.input, rec.created_at, rec.updated_at,
        rec.queue, rec.overlap, rec.catchup_window, rec.jitter, rec.start_at, rec.end_at,
        0 if rec.paused else 1, rec.pause_reason, rec.note, rec.next_run_at, rec.due_at,
        rec.buffered_at, rec.last_tick, rec.last_workflow_id, rec.last_result, rec.missed,
        rec.revision,
    )  # fmt: skip


def _record(row: Sequence[Any]) -> ScheduleRecord:
    return ScheduleRecord(
        name=row[0], workflow_name=row[1], spec=row[2], input=row[3], created_at=row[4],
        updated_at=row[5], queue=row[6], overlap=row[7], catchup_window=row[8], jitter=row[9],
        start_at=row[10], end_at=row[11], paused=not row[12], pause_reason=row[13],
        note=row[14], next_run_at=row[15], due_at=row[16], buffered_at=row[17],
        last_tick=row[18], last_workflow_id=row[19], last_result=row[20], missed=row[21],
        revision=row[22],
    )  # fmt: skip


class _Statements:
    def __init__(self, d: Dialect) -> None:
        s = d.sql
        marks = ", ".join("?" * (len(_FIELDS) + 1))
        self.insert = s(
            f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({marks}) "
            "ON CONFLICT (id) DO NOTHING"
        )
        self.get = s(f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ?")
        self.list = s(f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY id{{bytewise}}")
        self.due = s(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE enabled = 1 "
            "AND (due_at <= ? OR buffered_at IS NOT NULL) ORDER BY due_at LIMIT ?"
        )
        self.next_due = "SELECT MIN(due_at) FROM schedules WHERE enabled = 1"
        sets = ", ".join(f"{f} = ?" for f in _FIELDS)
        self.update = s(f"UPDATE schedules SET {sets} WHERE id = ? AND revision = ?")
        self.delete = s("DELETE FROM schedules WHERE id = ?")
        self.insert_workflow = s(INSERT_WORKFLOW)


@functools.cache
def _statements(dialect: Dialect) -> _Statements:
    return _Statements(dialect)


class SqlSchedules(SqlCommands):
    """The schedule methods of :class:`~durably.storage.base.Store` over SQL."""

    @property
    def _schedules(self) -> _Statements:
        return _statements(self._dialect)

    def insert_schedule(self, record: ScheduleRecord) -> bool:
        with self._transaction() as conn:
            return bool(conn.execute(self._schedules.insert, _row(record)).rowcount == 1)

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        rows = self._fetch(self._schedules.get, (name,))
        return _record(rows[0]) if rows else None

    def list_schedules(self) -> list[ScheduleRecord]:
        return [_record(row) for row in self._fetch(self._schedules.list)]

    def due_schedules(self, now: float, limit: int = 100) -> list[ScheduleRecord]:
        return [_record(row) for row in self._fetch(self._schedules.due, (now, limit))]

    def next_schedule_due(self) -> float | None:
        rows = self._fetch(self._schedules.next_due)
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def update_schedule(
        self, record: ScheduleRecord, revision: int, creations: Sequence[WorkflowRecord] = ()
    ) -> list[bool] | None:
        st = self._schedules
        row = _row(record)
        params = (*row[1:-1], revision + 1, record.name, revision)
        with self._transaction() as conn:
            if conn.execute(st.update, params).rowcount != 1:
                return None
            created = [
                conn.execute(st.insert_workflow, record_params(w)).rowcount == 1 for w in creations
            ]
            if any(created):
                self._dialect.notify(conn, ("new",))
        record.revision = revision + 1
        return created

    def delete_schedule(self, name: str) -> bool:
        with self._transaction() as conn:
            return bool(conn.execute(self._schedules.delete, (name,)).rowcount == 1)
