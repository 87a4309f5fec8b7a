"""The one SQL layer: statements written once and rendered per dialect, and notifications asked
of the dialect by the shared statements themselves (so that no backend can forget them)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

from durably.storage.base import (
    CreateWorkflow,
    FinishWorkflow,
    Park,
    WorkflowRecord,
    WorkflowStatus,
)
from durably.storage.dialect import POSTGRES, SQLITE, Dialect, SqliteDialect
from durably.storage.schema import migrations
from durably.storage.sql_store import statements
from durably.storage.sqlite import SqliteStore

T0 = 1_000_000.0


class RecordingDialect(SqliteDialect):
    """SQLite, but it records what it is asked to notify (SQLite's own dialect drops it)."""

    def __init__(self) -> None:
        self.sent: list[set[str]] = []

    def notify(self, conn: Any, kinds: Collection[str]) -> None:
        self.sent.append(set(kinds))


class RecordingStore(SqliteStore):
    _dialect = RecordingDialect()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordingStore]:
    s = RecordingStore(tmp_path / "notify.db")
    s.migrate()
    yield s
    s.close()


def sent(store: RecordingStore) -> list[set[str]]:
    dialect = store._dialect
    assert isinstance(dialect, RecordingDialect)
    out, dialect.sent = dialect.sent, []
    return out


def wf(wid: str, **kw: Any) -> WorkflowRecord:
    return WorkflowRecord(
        id=wid, name="w", status=WorkflowStatus.PENDING, input="{}", created_at=T0,
        updated_at=T0, **kw,
    )  # fmt: skip


def claimed_epoch(store: RecordingStore, wid: str) -> int:
    rec = store.get_workflow(wid)
    assert rec is not None and rec.owner == "me"
    return rec.epoch


def test_every_write_that_makes_work_runnable_asks_the_dialect_to_notify(
    store: RecordingStore,
) -> None:
    store.create_workflow(wf("parent"))
    assert sent(store) == [{"new"}]
    store.create_workflow(wf("owned", owner="me"))  # already claimed by its maker: nobody to wake
    assert sent(store) == []
    assert store.write([CreateWorkflow(wf("child", parent_id="parent", queue="q"))]) == [True]
    assert sent(store) == [{"new"}]

    store.claim("me", ["w"], T0, 60.0, 10)
    parent, child = claimed_epoch(store, "parent"), claimed_epoch(store, "child")
    assert store.write([Park("parent", "me", parent, T0 + 1e6, T0)]) == [True]
    assert sent(store) == []  # parked on a timer: the worker's own timer wakes it

    finish = FinishWorkflow("child", "me", child, WorkflowStatus.COMPLETED, "1", None, T0)
    assert store.write([finish]) == [True]
    assert sent(store) == [{"child", "slot"}]  # the parent wakes; queue q has a place free

    assert store.send_event("parent", "go", None, None, T0)[1]
    assert sent(store) == [{"event"}]
    store.suspend("parent", T0)
    assert sent(store) == []
    store.resume("parent", T0)
    assert sent(store) == [{"command"}]
    store.request_cancel("parent", T0)
    assert sent(store) == [{"command"}]
    store.fork("parent", "copy", 0, T0)
    assert sent(store) == [{"new"}]
    store.terminate("copy", "{}", T0)
    assert sent(store) == [{"command"}]


def test_a_park_with_its_event_already_in_wakes_any_worker(store: RecordingStore) -> None:
    store.create_workflow(wf("a"))
    store.claim("me", ["w"], T0, 60.0, 10)
    store.send_event("a", "go", None, None, T0)
    sent(store)
    park = Park("a", "me", claimed_epoch(store, "a"), T0 + 1e6, T0, event_names=["go"])
    assert store.write([park]) == [True]
    assert sent(store) == [{"wake"}]


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
    elif hasattr(value, "__dict__"):
        for name, item in vars(value).items():
            if name != "dialect":
                yield from _texts(item)


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=["sqlite", "postgres"])
def test_statements_are_rendered_once_whole_for_each_dialect(dialect: Dialect) -> None:
    rendered = [t for t in _texts(statements(dialect)) if " " in t]
    assert len(rendered) > 60
    for text in rendered:
        assert not re.search(r"\{\w+\}", text), text  # every slot filled
        other = "%s" if dialect is SQLITE else "?"
        assert other not in text, text  # the driver's placeholder only
    assert statements(dialect) is statements(dialect)  # built once per process
    for script in migrations(dialect).values():
        assert not re.search(r"\{\w+\}", script)
