"""The schedules part of the Store contract: insert once, read, list, the compare-and-set
update that creates a tick's workflows in the same transaction, due schedules, delete."""

from __future__ import annotations

import dataclasses
import threading

from durably.storage.base import ScheduleRecord, Store

from .conftest import Opener
from .helpers import T0, wf


def sched(name: str = "s", **kw: object) -> ScheduleRecord:
    rec = ScheduleRecord(
        name=name, workflow_name="w", spec='{"every": 60.0, "timezone": "UTC"}',
        input='{"args":[],"kwargs":{}}', created_at=T0, updated_at=T0,
        next_run_at=T0 + 60, due_at=T0 + 60,
    )  # fmt: skip
    return dataclasses.replace(rec, **kw)  # type: ignore[arg-type]


def test_insert_get_list_delete(store: Store) -> None:
    assert store.insert_schedule(sched("b", note="n", catchup_window=5.0, jitter=1.5))
    assert store.insert_schedule(sched("a", paused=True, pause_reason="why"))
    assert not store.insert_schedule(sched("a", note="other"))  # exists: untouched
    got = store.get_schedule("b")
    assert got == sched("b", note="n", catchup_window=5.0, jitter=1.5)
    assert [r.name for r in store.list_schedules()] == ["a", "b"]
    a = store.get_schedule("a")
    assert a is not None and a.paused and a.pause_reason == "why" and a.note == ""
    assert store.get_schedule("zz") is None
    assert store.delete_schedule("a") and not store.delete_schedule("a")
    assert [r.name for r in store.list_schedules()] == ["b"]


def test_update_is_a_compare_and_set_that_creates_workflows_once(store: Store) -> None:
    store.insert_schedule(sched())
    new = sched(next_run_at=T0 + 120, last_workflow_id="s@1")
    assert store.update_schedule(new, 0, [wf("s@1"), wf("s@1b")]) == [True, True]
    assert new.revision == 1
    stale = sched(next_run_at=T0 + 999)
    assert store.update_schedule(stale, 0, [wf("s@2")]) is None  # revision moved: nothing
    assert store.get_workflow("s@2") is None
    got = store.get_schedule("s")
    assert got is not None and got.next_run_at == T0 + 120 and got.revision == 1
    again = dataclasses.replace(got, next_run_at=T0 + 180)
    assert store.update_schedule(again, 1, [wf("s@1")]) == [False]  # the id exists
    assert store.update_schedule(sched("gone"), 0) is None


def test_due_schedules_and_next_due(store: Store) -> None:
    store.insert_schedule(sched("late", due_at=T0 + 100))
    store.insert_schedule(sched("early", due_at=T0 + 10))
    store.insert_schedule(sched("paused", due_at=T0, paused=True))
    store.insert_schedule(sched("buffered", due_at=T0 + 500, buffered_at=T0))
    store.insert_schedule(sched("done", due_at=None, next_run_at=None))
    assert [r.name for r in store.due_schedules(T0 + 50)] == ["early", "buffered"]
    assert [r.name for r in store.due_schedules(T0 + 100, limit=1)] == ["early"]
    assert store.next_schedule_due() == T0 + 10


def test_concurrent_updates_of_one_revision_land_once(open_store: Opener) -> None:
    stores = [open_store() for _ in range(4)]
    stores[0].migrate()
    stores[0].insert_schedule(sched())
    results: list[list[bool] | None] = []
    barrier = threading.Barrier(len(stores))

    def run(i: int) -> None:
        barrier.wait()
        results.append(stores[i].update_schedule(sched(note=str(i)), 0, [wf(f"s@{i}")]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    landed = [r for r in results if r is not None]
    assert landed == [[True]]
    created = [i for i in range(len(stores)) if stores[0].get_workflow(f"s@{i}") is not None]
    got = stores[0].get_schedule("s")
    assert got is not None and created == [int(got.note)] and got.revision == 1
