"""Named queues: global concurrency and rate limits in the store's claims, per-worker limits,
priorities, workers serving chosen queues, and the marking of workflows no live worker serves.

Cross-process limits (several worker processes on one database) are tested in
tests/e2e/test_queue_limits.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import durably
from durably import WorkflowStatus
from durably.storage import open_store
from durably.storage.base import (
    FinishWorkflow,
    QueueClaim,
    Store,
    WorkerInfo,
    WorkflowRecord,
)

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)


def _name(prefix: str) -> str:
    """A stand-alone Queue is a process-wide fallback while it lives: every test names its own."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    s.migrate()
    yield s
    s.close()


def _pending(store: Store, wid: str, queue: str, *, priority: int = 0, at: float = 0.0) -> None:
    now = 1000.0 + at
    store.create_workflow(
        WorkflowRecord(id=wid, name="wf", status=WorkflowStatus.PENDING, input="[]",
                       created_at=now, updated_at=now, queue=queue, priority=priority)
    )  # fmt: skip


def _finish(store: Store, wid: str) -> None:
    rec = store.get_workflow(wid)
    assert rec is not None and rec.owner is not None
    applied = store.write(
        [FinishWorkflow(wid, rec.owner, rec.epoch, WorkflowStatus.COMPLETED, "null", None, 2000.0)]
    )
    assert applied == [True]


def _claim(store: Store, owner: str, queues: list[QueueClaim], now: float = 2000.0,
           limit: int = 100) -> list[str]:  # fmt: skip
    return [c.record.id for c in store.claim(owner, ["wf"], now, 30.0, limit, queues)]


# -- the store: admission under limits ------------------------------------------------------------


def test_concurrency_limit_holds_across_owners_and_frees_on_finish(store: Store) -> None:
    for i in range(6):
        _pending(store, f"c{i}", "limited", at=i)
    q = [QueueClaim("limited", concurrency=3)]
    first = _claim(store, "w1", q)
    assert first == ["c0", "c1", "c2"]  # oldest first, three admitted
    assert _claim(store, "w2", q) == []  # full for every owner
    _finish(store, "c1")
    assert _claim(store, "w2", q) == ["c3"]
    assert _claim(store, "w1", q) == []


def test_admitted_workflows_keep_their_place_when_released(store: Store) -> None:
    for i in range(4):
        _pending(store, f"p{i}", "limited", at=i)
    q = [QueueClaim("limited", concurrency=2)]
    assert _claim(store, "w1", q) == ["p0", "p1"]
    store.release("w1", ["p0"])  # parked or orphaned: still admitted, not a free place
    assert _claim(store, "w2", q) == ["p0"]  # taken again without admission
    assert _claim(store, "w3", q) == []  # and nothing new admitted


def test_rate_limit_counts_admissions_in_the_window(store: Store) -> None:
    for i in range(5):
        _pending(store, f"r{i}", "rated", at=i)
    q = [QueueClaim("rated", rate_limit=(2, 10.0))]
    assert _claim(store, "w1", q, now=2000.0) == ["r0", "r1"]
    _finish(store, "r0")
    _finish(store, "r1")
    assert _claim(store, "w1", q, now=2009.0) == []  # finished, but admitted in the window
    assert _claim(store, "w1", q, now=2010.5) == ["r2", "r3"]


def test_worker_limit_and_queue_selection(store: Store) -> None:
    _pending(store, "d0", "default")
    _pending(store, "g0", "gpu", at=1)
    _pending(store, "g1", "gpu", at=2)
    assert _claim(store, "w1", [QueueClaim("gpu", limit=1)]) == ["g0"]
    assert _claim(store, "w1", [QueueClaim("gpu", limit=0)]) == []
    assert _claim(store, "w2", [QueueClaim("default")]) == ["d0"]
    # no queues given: any queue, no limits (the store-level default)
    assert _claim(store, "w3", []) == []
    assert [c.record.id for c in store.claim("w3", ["wf"], 2000.0, 30.0, 10)] == ["g1"]


def test_priority_orders_within_a_queue(store: Store) -> None:
    _pending(store, "low", "prio", priority=1, at=0)
    _pending(store, "high", "prio", priority=9, at=1)
    _pending(store, "mid", "prio", priority=5, at=2)
    q = [QueueClaim("prio", concurrency=1)]
    order = []
    for _ in range(3):
        (wid,) = _claim(store, "w", q)
        order.append(wid)
        _finish(store, wid)
    assert order == ["high", "mid", "low"]


def test_next_wake_leaves_out_pending_work_a_full_queue_cannot_admit(store: Store) -> None:
    _pending(store, "a", "limited")
    _pending(store, "b", "limited", at=1)
    q = [QueueClaim("limited", concurrency=1)]
    assert store.next_wake_at(["wf"], q) is None  # pending in a limited queue: no time to wake
    assert store.next_wake_at(["wf"], [QueueClaim("limited")]) == 0.0
    assert _claim(store, "w", q) == ["a"]
    store.release("w", ["a"])  # admitted and runnable: due now
    assert store.next_wake_at(["wf"], q) == 0.0


# -- the App: enqueue, limits in a running worker, priorities, served queues ------------------


class Tracker:
    """Records how many workflow bodies run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.order: list[str] = []

    def enter(self, tag: str) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.order.append(tag)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


def test_enqueued_workflows_respect_the_queue_concurrency(db_url: str) -> None:
    tracker = Tracker()
    queue = durably.Queue(_name("emails"), concurrency=2)
    app = durably.App(db_url, worker_options=FAST)

    @app.step()
    async def send(i: int) -> int:
        tracker.enter(str(i))
        try:
            await asyncio.sleep(0.05)
        finally:
            tracker.leave()
        return i * 10

    @app.workflow()
    async def mail(i: int) -> int:
        return await send(i)

    try:
        with app:
            handles = [queue.enqueue(mail, i, id=f"mail-{i}") for i in range(8)]
            assert [h.result(timeout=30) for h in handles] == [i * 10 for i in range(8)]
        infos = {i.id: i for i in app.list_workflows(limit=20)}
        assert all(infos[f"mail-{i}"].queue == queue.name for i in range(8))
        assert tracker.peak == 2  # the limit was reached and never exceeded
    finally:
        app.close()


def test_priority_queue_runs_higher_priority_first(db_url: str) -> None:
    tracker = Tracker()
    queue = durably.Queue(_name("prio"), concurrency=1, priority=True)
    app = durably.App(db_url, worker_options=FAST)

    @app.workflow()
    def job(tag: str) -> str:
        tracker.enter(tag)
        tracker.leave()
        return tag

    try:
        handles = [
            queue.enqueue(job, tag, priority=p)
            for tag, p in [("low", 1), ("urgent", 10), ("normal", 5), ("low2", 1)]
        ]
        with app:
            for h in handles:
                h.result(timeout=30)
        assert tracker.order == ["urgent", "normal", "low", "low2"]
    finally:
        app.close()


def test_worker_serves_only_its_queues_and_unserved_work_is_marked(db_url: str) -> None:
    gpu = durably.Queue(_name("gpu"), worker_concurrency=1)
    gpu_app = durably.App(
        db_url,
        worker_options=durably.WorkerOptions(
            lease_seconds=2.0, poll_interval=0.02, queues=(gpu.name,)
        ),
    )

    @gpu_app.workflow()
    def render(x: int) -> int:
        return x + 1

    try:
        with gpu_app:
            on_gpu = gpu.enqueue(render, 1)
            assert on_gpu.result(timeout=30) == 2
            plain = gpu_app.start(render, 5)  # the default queue: not served here
            time.sleep(0.5)
            info = plain.info()
            assert info.status is WorkflowStatus.PENDING and info.unserved
            listed = {i.id: i for i in gpu_app.list_workflows()}
            assert listed[plain.id].unserved and not listed[on_gpu.id].unserved
            (me,) = gpu_app.list_workers()
            assert me.queues == [gpu.name] and me.workflows == ["render"]
        # a worker serving the default queue picks it up; the mark is gone
        default_app = durably.App(db_url, worker_options=FAST)
        default_app.workflow(name="render")(lambda x: x + 1)
        with default_app:
            assert default_app.handle(plain.id).result(timeout=30) == 6
            assert not default_app.handle(plain.id).info().unserved
        default_app.close()
    finally:
        gpu_app.close()


def test_stale_worker_registrations_do_not_count_as_serving(db_url: str) -> None:
    app = durably.App(db_url)

    @app.workflow()
    def lonely() -> None:
        return None

    try:
        long_ago = time.time() - 120
        app.store.register_worker(
            WorkerInfo("elsewhere:1:dead", "elsewhere", 1, long_ago, long_ago,
                       ["lonely"], ["default"])
        )  # fmt: skip
        h = app.start(lonely)
        assert h.info().unserved
        with pytest.raises(
            durably.WorkflowTimeoutError,
            match="no live worker serves workflow 'lonely' on queue 'default'",
        ):
            h.result(timeout=0.1)
        assert app.list_workers() == []
        assert [w.id for w in app.list_workers(include_stale=True)] == ["elsewhere:1:dead"]
        fresh = time.time()
        app.store.register_worker(
            WorkerInfo("elsewhere:2:live", "elsewhere", 2, fresh, fresh, ["lonely"], ["default"])
        )
        assert not h.info().unserved
        assert h.status() is WorkflowStatus.PENDING
    finally:
        app.close()


def test_app_enqueue_by_name_and_queue_name(db_url: str) -> None:
    queue = durably.Queue(_name("byname"), concurrency=5)
    app = durably.App(db_url, worker_options=FAST)

    @app.workflow(name="double")
    def double(x: int) -> int:
        return 2 * x

    try:
        with app:
            h = app.enqueue(queue.name, "double", 21, id="by-name")
            assert h.result(timeout=30) == 42
            assert h.info().queue == queue.name
            again = app.enqueue(queue, double, 99, id="by-name")  # idempotent on id
            assert again.result(timeout=5) == 42
    finally:
        app.close()


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "invalid queue name"),
        ({"name": "has space"}, "invalid queue name"),
        ({"name": "x" * 101}, "invalid queue name"),
        ({"name": "q", "concurrency": 0}, "concurrency must be a whole number >= 1"),
        ({"name": "q", "worker_concurrency": 1.5}, "worker_concurrency must be"),
        ({"name": "q", "rate_limit": (0, 1.0)}, "rate_limit must be"),
        ({"name": "q", "rate_limit": (5, -1)}, "rate_limit must be"),
        ({"name": "q", "rate_limit": 5}, "rate_limit must be"),
        ({"name": "q", "priority": 1}, "priority must be True or False"),
    ],
)
def test_bad_queue_definitions_are_refused(kwargs: dict[str, Any], message: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(durably.ConfigurationError, match=message):
        durably.Queue(name, **kwargs)


def test_bad_enqueues_are_refused_and_write_nothing(db_url: str) -> None:
    plain = durably.Queue(_name("plain"))
    app = durably.App(db_url)

    @app.workflow()
    def wf() -> None:
        return None

    try:
        with pytest.raises(durably.ConfigurationError, match="priority=True"):
            plain.enqueue(wf, priority=3)
        with pytest.raises(durably.UnknownWorkflowError, match=r"decorated with @app\.workflow"):
            plain.enqueue("wf")  # type: ignore[call-overload]
        with pytest.raises(durably.ConfigurationError, match="invalid queue name"):
            app.enqueue("bad name", wf)
        with pytest.raises(durably.ConfigurationError, match="32-bit whole number"):
            app.enqueue("undefined-queue", wf, priority=2**40)
        with pytest.raises(durably.UnknownWorkflowError):
            app.enqueue(plain, "no_such_workflow")
        with pytest.raises(durably.ConfigurationError, match="queues must be"):
            durably.WorkerOptions(queues="gpu")  # type: ignore[arg-type]
        with pytest.raises(durably.ConfigurationError, match="invalid queue name"):
            durably.WorkerOptions(queues=("ok", "not ok"))
        assert app.list_workflows() == []
    finally:
        app.close()
