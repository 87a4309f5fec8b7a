"""Retention: finished workflows purged by the workers' pass once older than their retention
(per App, per workflow name, None keeps), in batches that an interruption leaves re-runnable."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

import durably
from durably.definitions import Registry, Workflow
from durably.errors import ConfigurationError
from durably.storage.base import (
    Store,
    WorkerInfo,
    WorkflowRecord,
    WorkflowSelection,
    WorkflowStatus,
)
from durably.worker import WorkerOptions
from durably.worker.retention import PURGEABLE_STATUSES, purge_expired, retention_selections

HOUR = 3600.0
DAY = 24 * HOUR


def record(
    wid: str,
    name: str,
    finished_at: float | None,
    status: WorkflowStatus = WorkflowStatus.COMPLETED,
    parent_id: str | None = None,
) -> WorkflowRecord:
    if finished_at is None:
        status = WorkflowStatus.RUNNING
    created = (finished_at or time.time()) - 1
    return WorkflowRecord(
        id=wid, name=name, status=status, input="[]", created_at=created, updated_at=created,
        finished_at=finished_at, parent_id=parent_id, epoch=1,
    )  # fmt: skip


def test_retention_settings_are_checked_and_resolved() -> None:
    with pytest.raises(ConfigurationError, match=r"positive datetime\.timedelta"):
        durably.App("sqlite:///:memory:", retention=30)  # type: ignore[arg-type]
    app = durably.App("sqlite:///unused.db", retention=timedelta(days=1))
    with pytest.raises(ConfigurationError, match=r"@app\.workflow"):
        app.workflow(retention=timedelta(0))

    @app.workflow(retention=timedelta(hours=1))
    def short() -> None: ...

    @app.workflow(retention=None)
    def keep() -> None: ...

    @app.workflow
    def usual() -> None: ...

    reg = app.registry
    assert reg.retention_of("short") == timedelta(hours=1)
    assert reg.retention_of("keep") is None
    assert reg.retention_of("usual") == timedelta(days=1)
    assert reg.retention_of("unknown") == timedelta(days=1)
    assert repr(durably.APP_DEFAULT) == "durably.APP_DEFAULT"


def test_selections_group_names_and_leave_names_of_other_workers_alone() -> None:
    reg = Registry()
    for name, period in (("a", timedelta(hours=1)), ("b", timedelta(hours=1)), ("c", None)):
        wf: Workflow[Any, Any] = Workflow(lambda: None, name=name)
        wf.retention = period
        reg.add_workflow(wf)
    assert retention_selections(reg, ["theirs"], 10 * DAY) == [
        WorkflowSelection(statuses=PURGEABLE_STATUSES, names=("a", "b"),
                          finished_before=10 * DAY - HOUR),
    ]  # fmt: skip
    reg.retention = timedelta(days=2)
    default = retention_selections(reg, ["theirs"], 10 * DAY)[-1]
    assert default.exclude_names == ("a", "b", "c", "theirs")
    assert default.finished_before == 8 * DAY and default.names is None
    assert retention_selections(Registry(), [], 0.0) == []  # nothing has a retention


def test_a_pass_purges_only_what_has_expired(db_url: str) -> None:
    app = durably.App(db_url, retention=timedelta(days=1))

    @app.workflow(retention=timedelta(hours=1))
    def short() -> None: ...

    @app.workflow(retention=None)
    def keep() -> None: ...

    @app.workflow
    def usual() -> None: ...

    now = time.time()
    store = app.store
    rows = [
        record("short-old", "short", now - 2 * HOUR),
        record("short-new", "short", now - 0.5 * HOUR),
        record("keep-old", "keep", now - 100 * DAY, WorkflowStatus.FAILED),
        record("usual-old", "usual", now - 2 * DAY, WorkflowStatus.TERMINATED),
        record("usual-new", "usual", now - 2 * HOUR),
        record("usual-running", "usual", None),
        record("usual-stuck", "usual", now - 2 * DAY, WorkflowStatus.NEEDS_ATTENTION),
        record("gone-old", "gone", now - 2 * DAY, WorkflowStatus.CANCELLED),  # unregistered
        record("theirs-old", "theirs", now - 2 * DAY),  # another live worker registers it
        record("parent", "keep", None),
        record("kid-old", "usual", now - 2 * DAY, parent_id="parent"),  # parent still runs
    ]
    for rec in rows:
        store.create_workflow(rec)
    store.register_worker(WorkerInfo("other", "h", 1, now, now, ["theirs"], ["default"]))
    worker = app._new_worker()
    try:
        assert worker.retention_pass() == 3
        left = {r.id for r in store.list_workflows(limit=100)}
        assert left == {r.id for r in rows} - {"short-old", "usual-old", "gone-old"}
        assert worker.retention_pass() == 0  # nothing more has expired
        store.remove_worker("other")  # its names fall to this App's default
        assert worker.retention_pass() == 1
        assert store.get_workflow("theirs-old") is None
    finally:
        app.close()


class Interrupting:
    """A store whose ``purge_workflows`` fails on its ``fail_at``-th call (a crash mid-pass)."""

    def __init__(self, store: Store, fail_at: int) -> None:
        self.store, self.calls, self.fail_at = store, 0, fail_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def purge_workflows(self, ids: list[str]) -> list[str]:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("killed mid-pass")
        return self.store.purge_workflows(ids)


def test_an_interrupted_pass_leaves_nothing_half_done_and_a_rerun_finishes(db_url: str) -> None:
    app = durably.App(db_url)

    @app.workflow
    def work(x: int) -> int:
        return x

    with app:
        handles = [app.start(work, n, id=f"w-{n:03d}") for n in range(25)]
        assert [h.result(timeout=30) for h in handles] == list(range(25))
    store = app.store
    sel = WorkflowSelection(statuses=PURGEABLE_STATUSES, finished_before=time.time() + 1)
    broken = Interrupting(store, fail_at=3)
    with pytest.raises(RuntimeError, match="killed mid-pass"):
        purge_expired(broken, [sel], batch=10)  # type: ignore[arg-type]
    assert store.count_workflows(WorkflowSelection()) == 5  # two whole batches, no more
    counted: list[int] = []
    assert purge_expired(store, [sel], batch=10, on_batch=counted.append) == 5
    assert counted == [5] and store.count_workflows(WorkflowSelection()) == 0
    app.close()


def test_the_worker_purges_on_its_own_every_interval(db_url: str) -> None:
    offset = [0.0]
    options = WorkerOptions(retention_interval=0.1, retention_pause=0.0)
    app = durably.App(db_url, retention=timedelta(days=1), worker_options=options)
    app.clock = lambda: time.time() + offset[0]

    @app.step
    def step(x: int) -> int:
        return x + 1

    @app.workflow
    def flow(x: int) -> int:
        durably.set_state("x", x)
        return step(x)

    @app.workflow(retention=None)
    def kept(x: int) -> int:
        return x

    with app:
        app.start(flow, 1, id="flow-1").result(timeout=30)
        app.start(kept, 1, id="kept-1").result(timeout=30)
        assert app.store.get_journal("flow-1")
        offset[0] = 2 * DAY  # two days pass
        deadline = time.monotonic() + 30
        while app.store.get_workflow("flow-1") is not None:
            assert time.monotonic() < deadline, "the worker never purged flow-1"
            time.sleep(0.05)
    assert app.store.get_journal("flow-1") == [] and app.store.get_state("flow-1") == {}
    assert app.store.get_workflow("kept-1") is not None
    app.close()


def test_the_purge_impact_bench_runs_and_purges_everything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from durably.bench.retention import main

    assert main(["--purge", "300", "--clients", "2", "--slot", "0.2", "--batch", "50"]) == 0
    out = capsys.readouterr().out
    assert "purged 300 finished workflows (0 left)" in out
    assert "ratio while purging / alone:" in out
