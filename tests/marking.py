"""Serializers that mark everything they write, workflows that store every kind of payload, and a
reader of the raw payload columns of every table: to prove that no stored value bypasses the
App's serializer."""

from __future__ import annotations

import base64
import pickle
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import durably
from durably.storage import sqlite_path

MARK = "MARK:"


class PickleMarker:
    """A serializer written to the ``durably.Serializer`` protocol only (not a JsonSerializer):
    pickled values, base64, behind the mark. It ignores type hints (pickle keeps types)."""

    def encode(
        self,
        value: Any,
        *,
        what: str = "value",
        workflow_id: str | None = None,
        step: str | None = None,
    ) -> str:
        return MARK + base64.b64encode(pickle.dumps(value)).decode("ascii")

    def decode(self, data: str, type_hint: Any = Any) -> Any:
        if not data.startswith(MARK):
            raise ValueError(f"not written by PickleMarker: {data[:40]!r}")
        return pickle.loads(base64.b64decode(data[len(MARK) :]))


class ReversedJson(durably.JsonSerializer):
    """A JsonSerializer subclass overriding encode and decode: the JSON text reversed, behind
    the mark (so that text that bypassed it is not even JSON to it)."""

    def encode(self, value: Any, **context: Any) -> str:
        return MARK + super().encode(value, **context)[::-1]

    def decode(self, data: str, type_hint: Any = Any) -> Any:
        if not data.startswith(MARK):
            raise ValueError(f"not written by ReversedJson: {data[:40]!r}")
        return super().decode(data[len(MARK) :][::-1], type_hint)


SERIALIZERS: dict[str, Callable[[], durably.Serializer]] = {
    "protocol-only": PickleMarker,
    "json-subclass": ReversedJson,
}


@dataclass
class Item:
    name: str
    qty: int


WHEN = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)

PAYLOAD_COLUMNS = {
    ("workflows", "input"), ("workflows", "output"), ("workflows", "error"),
    ("journal", "result"), ("journal", "error"), ("step_attempts", "error"),
    ("events", "payload"), ("state", "value"), ("workflow_runs", "input"),
    ("workflow_runs", "output"), ("schedules", "input"),
}  # fmt: skip
"""Every text column that holds a value the serializer made."""

OTHER_TEXT_COLUMNS = {
    ("workflows", "id"), ("workflows", "name"), ("workflows", "status"), ("workflows", "queue"),
    ("workflows", "owner"), ("workflows", "version"), ("workflows", "parent_id"),
    ("workflows", "cancel_key"), ("journal", "workflow_id"), ("journal", "kind"),
    ("journal", "name"), ("journal", "status"), ("journal", "owner"), ("journal", "key"),
    ("step_attempts", "workflow_id"), ("step_attempts", "owner"), ("events", "workflow_id"),
    ("events", "name"), ("events", "dedup_key"), ("state", "workflow_id"), ("state", "key"),
    ("workflow_runs", "workflow_id"), ("workflow_runs", "status"), ("schedules", "id"),
    ("schedules", "workflow_name"), ("schedules", "spec"), ("workers", "id"),
    ("workers", "hostname"), ("workers", "workflows"), ("workers", "queues"),
    ("workers", "version"), ("workers", "auto_upgrade"), ("schedules", "queue"),
    ("schedules", "overlap"), ("schedules", "pause_reason"), ("schedules", "note"),
    ("schedules", "last_workflow_id"), ("schedules", "last_result"),
}  # fmt: skip
"""durably's own text columns: ids, names, statuses, owners, keys (not values)."""


def _query(app: durably.App, sql: str) -> list[tuple[Any, ...]]:
    path = sqlite_path(app.database_url)
    if path is not None:
        with sqlite3.connect(path) as conn:
            return list(conn.execute(sql).fetchall())
    import psycopg

    store: Any = app.store
    with psycopg.connect(store._conninfo, options=f"-c search_path={store.schema}") as conn:
        return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]


def text_columns(app: durably.App) -> set[tuple[str, str]]:
    """Every (table, column) of type text in durably's tables (its migrations table aside)."""
    if sqlite_path(app.database_url) is not None:
        tables = [
            r[0]
            for r in _query(app, "SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith(("sqlite_", "durably_"))
        ]
        return {
            (t, r[1]) for t in tables for r in _query(app, f"PRAGMA table_info({t})")
            if r[2].upper() == "TEXT"
        }  # fmt: skip
    rows = _query(
        app,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type = 'text'",
    )
    return {(t, c) for t, c in rows if not t.startswith("durably_")}


def payloads(app: durably.App) -> list[tuple[str, str, str]]:
    """Every non-null stored payload as (where, kind, text); ``kind`` is the journal entry's
    kind for journal columns, else the column."""
    found: list[tuple[str, str, str]] = []
    for table, column in sorted(PAYLOAD_COLUMNS):
        kind = "kind" if table == "journal" else f"'{column}'"
        rows = _query(app, f"SELECT {kind}, {column} FROM {table} WHERE {column} IS NOT NULL")
        found += [(f"{table}.{column}", k, text) for k, text in rows]
    return found


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds (fails naming ``what`` after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached after {timeout}s")
        time.sleep(0.02)


def register(app: durably.App) -> dict[str, Any]:
    """Workflows that between them store every kind of payload."""

    @app.step(retry=durably.Retry(attempts=2, initial=0.01))
    async def flaky(item: Item) -> Item:
        if durably.step_context().attempt == 1:
            raise RuntimeError("the first attempt fails")
        return Item(item.name, item.qty * 2)

    @app.step(retry=durably.Retry(attempts=1))
    async def boom(note: str) -> None:
        raise ValueError(note)

    @app.workflow(name="grow")
    async def grow(item: Item, *, by: int) -> Item:
        return Item(item.name + "!", item.qty + by)

    @app.workflow(name="broken")
    async def broken(note: str) -> None:
        raise RuntimeError(note)

    @app.workflow(name="idle")
    async def idle(note: str) -> Any:
        return await durably.wait_event("never", timeout=3600)

    @app.workflow(name="holder")
    async def holder() -> Any:
        return await idle("parked")

    @app.workflow(name="main")
    async def main(item: Item, *, when: datetime, laps: int = 1) -> dict[str, Any]:
        if laps == 1:
            durably.continue_as_new(item, when=when, laps=2)
        stamp = durably.now()
        chance = durably.random()
        token = durably.uuid4()
        await durably.sleep(0.01)
        doubled = await flaky(item)
        try:
            await boom("step failure")
        except durably.StepFailed:
            pass
        durably.set_state("progress", {"doubled": doubled, "when": when})
        order = await durably.wait_event("go", timeout=600)
        grown = await grow(doubled, by=order["by"])
        try:
            await broken("child failure")
        except durably.ChildWorkflowFailed:
            pass
        return {
            "grown": grown, "when": when, "stamped": isinstance(stamp, datetime),
            "chance": 0 <= chance < 1, "token": token.version,
        }  # fmt: skip

    return {"main": main, "holder": holder, "broken": broken}
