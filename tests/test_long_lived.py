"""Long-lived workflows: timers, events, state, children, continue-as-new, lifecycle, sagas."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import durably
from durably import WorkflowStatus
from durably.testing import WorkflowEnvironment

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02, eviction_threshold=0.2)


@pytest.fixture
def db(db_url: str) -> str:
    """The test's database, on each backend of DURABLY_TEST_BACKENDS in turn."""
    return db_url


@pytest.fixture
def app(db: str) -> Iterator[durably.App]:
    a = durably.App(db, worker_options=FAST)
    yield a
    a.close()


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[durably.App]:
    """An app on a SQLite file, for WorkflowEnvironment (its virtual clock is SQLite-based)."""
    a = durably.App(f"sqlite:///{tmp_path / 'long.db'}", worker_options=FAST)
    yield a
    a.close()


class Calls:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.lock = threading.Lock()

    def add(self, item: str) -> None:
        with self.lock:
            self.log.append(item)

    def count(self, item: str) -> int:
        return self.log.count(item)


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# -- timers ------------------------------------------------------------------------------------


def test_thirty_day_sleep_runs_in_milliseconds_with_time_skipping(sqlite_app: durably.App) -> None:
    app = sqlite_app
    calls = Calls()

    @app.step()
    async def remind(who: str) -> str:
        calls.add(who)
        return f"reminded {who}"

    @app.workflow()
    async def reminder(who: str) -> dict[str, Any]:
        started = durably.now()
        await durably.sleep(timedelta(days=30))
        message = await remind(who)
        await durably.sleep_until(started + timedelta(days=45))
        return {"message": message, "elapsed_days": (durably.now() - started).days}

    start = datetime(2026, 1, 1, tzinfo=UTC)
    t0 = time.monotonic()
    with WorkflowEnvironment(app, start=start) as env:
        h = app.start(reminder, "ada")
        assert h.result(timeout=10) == {"message": "reminded ada", "elapsed_days": 45}
        assert env.now() >= start + timedelta(days=45)
        assert env.skips >= 2
    assert time.monotonic() - t0 < 10
    assert calls.log == ["ada"]
    kinds = [(e.kind, e.name) for e in h.history()]
    assert kinds == [("now", "now"), ("sleep", "sleep"), ("step", "remind"), ("sleep", "sleep"),
                     ("now", "now")]  # fmt: skip


def test_sync_workflow_timers_and_events(sqlite_app: durably.App) -> None:
    app = sqlite_app

    @app.workflow()
    def sync_wait(x: int) -> list[Any]:
        durably.sleep_sync(timedelta(hours=2))
        first = durably.wait_event_sync("go", timeout=timedelta(days=1))
        second = durably.wait_event_sync("go", timeout=timedelta(days=1), default=None)
        return [x, first, second]

    with WorkflowEnvironment(app) as env:
        start = env.now()
        h = app.start(sync_wait, 1, id="sync-wait")
        app.send_event("sync-wait", "go", {"n": 1})
        assert h.result(timeout=10) == [1, {"n": 1}, None]  # the second wait timed out
        assert env.now() - start >= timedelta(days=1, hours=2)


def test_a_parked_timer_survives_a_restart_and_fires_once(db: str) -> None:
    calls = Calls()

    def build() -> tuple[durably.App, Any]:
        a = durably.App(db, worker_options=FAST)

        @a.step()
        async def after_sleep(x: int) -> int:
            calls.add("after")
            return x + 1

        @a.workflow()
        async def napper(x: int) -> int:
            calls.add("body")
            await durably.sleep(1.0)
            return await after_sleep(x)

        return a, napper

    first, napper = build()
    with first:
        h = first.start(napper, 41, id="nap")
        wait_for(lambda: h.info().wake_at is not None)  # parked: a timer in the table
    first.close()
    info = h.info()
    assert info.owner is None and info.status is WorkflowStatus.RUNNING
    second, _ = build()
    with second:
        assert second.handle("nap").result(timeout=10) == 42
    second.close()
    assert calls.count("after") == 1
    assert calls.count("body") >= 2  # replayed after the restart, the step still ran once
    sleep_entry = next(e for e in h.history() if e.kind == "sleep")
    assert isinstance(sleep_entry.result, float)


def test_ten_thousand_sleeping_workflows_hold_no_coroutine_or_thread(db: str) -> None:
    import gc
    import sys

    a = durably.App(db, worker_options=durably.WorkerOptions(poll_interval=0.02,
                                                             eviction_threshold=0.0))  # fmt: skip

    @a.workflow()
    async def long_nap(i: int) -> int:
        await durably.sleep(timedelta(days=1))
        return i

    @a.workflow()
    def sync_nap(i: int) -> int:
        durably.sleep_sync(timedelta(days=1))
        return i

    # 10,000 on SQLite. On PostgreSQL 2,000: there each start beside the worker waits for one of
    # its group commits (6-17 ms on the 2-vCPU VM), so 10,000 starts alone took 1-3 minutes.
    n = 10_000 if db.startswith("sqlite") else 2_000
    with a:
        for i in range(n):
            a.start(long_nap if i % 2 else sync_nap, i, id=f"nap-{i}")
        worker = a._worker
        assert worker is not None

        def parked() -> int:
            row = a.store.list_workflows(limit=n)
            return sum(1 for w in row if w.wake_at is not None and w.owner is None)

        wait_for(lambda: parked() == n, 120)
        wait_for(lambda: not worker.busy(), 10)
        gc.collect()
        coroutines = [o for o in gc.get_objects() if asyncio.iscoroutine(o)]
        assert not [c for c in coroutines if c.__qualname__.endswith("long_nap")]
        frames = [f for f in sys._current_frames().values()]
        in_workflow = []
        for frame in frames:
            f: Any = frame
            while f is not None:
                if f.f_code.co_name in ("sync_nap", "long_nap"):
                    in_workflow.append(f)
                f = f.f_back
        assert in_workflow == []  # no thread runs (or waits inside) a workflow
        assert worker.active == {}
        assert len(threading.enumerate()) < 100
    a.close()


# -- events ------------------------------------------------------------------------------------


def test_events_are_kept_consumed_once_in_order_and_deduplicated(app: durably.App) -> None:
    @app.workflow()
    async def collector(n: int) -> list[Any]:
        return [await durably.wait_event("item", timeout=30) for _ in range(n)]

    h = app.start(collector, 4, id="collector")
    assert app.send_event("collector", "item", "a", dedup_key="k-a")  # before any wait
    assert not app.send_event("collector", "item", "a again", dedup_key="k-a")  # no-op
    app.send_event("collector", "other", "ignored")
    app.send_event("collector", "item", {"b": 2})
    with app:
        wait_for(lambda: len([e for e in h.history() if e.status == "completed"]) >= 2)
        app.send_event("collector", "item", None)
        app.send_event("collector", "item", [3])
        assert h.result(timeout=10) == ["a", {"b": 2}, None, [3]]
    events = [e for e in h.history() if e.kind == "event"]
    assert [e.result for e in events] == ["a", {"b": 2}, None, [3]]


def test_wait_event_timeout_raises_or_returns_the_default(sqlite_app: durably.App) -> None:
    app = sqlite_app

    @app.workflow()
    async def approval() -> str:
        try:
            answer = await durably.wait_event("approved", timeout=timedelta(days=7))
        except durably.EventTimeoutError as exc:
            return f"escalated after {exc.timeout}s"
        return f"approved by {answer}"

    @app.workflow()
    def approval_sync() -> Any:
        return durably.wait_event_sync("approved", timeout=timedelta(days=1), default="none")

    @app.workflow()
    async def unhandled() -> Any:
        return await durably.wait_event("approved", timeout=timedelta(days=1))

    with WorkflowEnvironment(app) as env:
        start = env.now()
        assert app.start(approval).result(timeout=10) == "escalated after 604800.0s"
        assert env.now() - start >= timedelta(days=7)
        h = app.start(approval, id="approve-me")
        app.send_event("approve-me", "approved", "bob")
        assert h.result(timeout=10) == "approved by bob"
        # an approval sent with no payload is an event, not a timeout
        h = app.start(approval, id="approve-empty")
        app.send_event("approve-empty", "approved")
        assert h.result(timeout=10) == "approved by None"
        assert app.start(approval_sync).result(timeout=10) == "none"
        h = app.start(approval_sync, id="sync-empty")
        app.send_event("sync-empty", "approved")
        assert h.result(timeout=10) is None
        with pytest.raises(durably.WorkflowFailedError) as info:
            app.start(unhandled, id="unhandled").result(timeout=10)
    assert info.value.error["type"] == "durably.errors.EventTimeoutError"
    assert "no event 'approved' reached workflow 'unhandled'" in info.value.error["message"]


def test_sending_events_to_unknown_or_finished_workflows_is_an_error(app: durably.App) -> None:
    @app.workflow()
    async def quick() -> int:
        return 1

    with pytest.raises(durably.WorkflowNotFoundError):
        app.send_event("nobody", "x")
    with app:
        app.start(quick, id="done").result(timeout=10)
    with pytest.raises(durably.WorkflowStateError, match="completed"):
        app.send_event("done", "x", 1)
    with pytest.raises(durably.SerializationError):
        app.send_event("done", "x", object())
    with pytest.raises(durably.ConfigurationError):
        app.send_event("done", "", 1)


# -- published state ---------------------------------------------------------------------------


def test_state_is_readable_while_running_and_after(app: durably.App) -> None:
    @app.workflow()
    async def stateful() -> str:
        durably.set_state("phase", "waiting")
        durably.set_state("progress", {"done": 1, "of": 2})
        await durably.wait_event("continue")
        durably.set_state("phase", "finished")
        return "ok"

    with app:
        h = app.start(stateful, id="stateful")
        wait_for(lambda: h.state("phase") == "waiting")
        assert h.states() == {"phase": "waiting", "progress": {"done": 1, "of": 2}}
        app.send_event("stateful", "continue")
        assert h.result(timeout=10) == "ok"
    assert h.state("phase") == "finished"
    assert h.state("missing", default=0) == 0


# -- children ----------------------------------------------------------------------------------


def test_children_have_deterministic_ids_and_failures_are_catchable(app: durably.App) -> None:
    calls = Calls()

    @app.step(retry=durably.Retry(attempts=1))
    async def work(n: int) -> int:
        calls.add(f"work {n}")
        if n < 0:
            raise ValueError("negative")
        return n * 2

    @app.workflow()
    async def child(n: int) -> int:
        return await work(n)

    @app.workflow()
    def sync_child(n: int) -> int:
        return n + 100

    @app.workflow()
    async def parent(n: int) -> dict[str, Any]:
        direct = await child(n)
        later = durably.start_child(child, n + 1, id=f"named-{n}")
        try:
            await child(-1)
            failed = None
        except durably.ChildWorkflowFailed as exc:
            failed = exc.status, exc.error["cause_type"]
        return {"direct": direct, "later": await later, "failed": failed,
                "sync": await sync_child(n)}  # fmt: skip

    with app:
        h = app.start(parent, 5, id="p")
        assert h.result(timeout=10) == {
            "direct": 10, "later": 12, "failed": ["failed", "ValueError"], "sync": 105,
        }  # fmt: skip
    children = {c.id: c for c in h.children()}
    assert set(children) == {"p:0", "named-5", "p:2", "p:3"}
    assert all(c.parent_id == "p" for c in children.values())
    assert children["p:2"].status is WorkflowStatus.FAILED
    assert calls.log.count("work 5") == 1 and calls.log.count("work 6") == 1


def test_cancelling_or_terminating_a_parent_does_the_same_to_its_children(
    app: durably.App,
) -> None:
    @app.workflow()
    async def sleepy_child() -> None:
        await durably.sleep(timedelta(days=1))

    @app.workflow()
    async def family(n: int) -> None:
        await asyncio.gather(*[sleepy_child() for _ in range(n)])

    with app:
        cancelled = app.start(family, 2, id="fam-c")
        terminated = app.start(family, 2, id="fam-t")
        wait_for(lambda: len(cancelled.children()) == 2 and len(terminated.children()) == 2)
        app.cancel("fam-c")
        app.terminate("fam-t", reason="operator")
        with pytest.raises(durably.WorkflowFailedError):
            cancelled.result(timeout=10)
        wait_for(lambda: all(c.status is WorkflowStatus.CANCELLED for c in cancelled.children()))
    assert cancelled.status() is WorkflowStatus.CANCELLED
    assert terminated.status() is WorkflowStatus.TERMINATED
    assert {c.status for c in terminated.children()} == {WorkflowStatus.TERMINATED}
    assert terminated.info().error == {"type": "Terminated", "code": "terminated",
                                       "message": "operator"}  # fmt: skip


# -- continue-as-new ---------------------------------------------------------------------------


def test_continue_as_new_keeps_the_journal_bounded_and_the_runs_visible(
    app: durably.App,
) -> None:
    @app.step()
    async def tick(n: int) -> int:
        return n + 1

    @app.workflow()
    async def counter(n: int, until: int) -> int:
        for _ in range(3):
            n = await tick(n)
        if n < until:
            durably.continue_as_new(n, until)
        return n

    with app:
        h = app.start(counter, 0, 60, id="counter")
        assert h.result(timeout=30) == 60
    runs = h.runs()
    assert [r.run for r in runs] == list(range(1, 20))
    assert runs[0].input == {"args": [0, 60], "kwargs": {}}
    assert all(r.status is WorkflowStatus.CONTINUED_AS_NEW for r in runs)
    assert len(h.history()) == 3  # only the last run's journal is kept
    assert h.info().run == 20


# -- lifecycle ---------------------------------------------------------------------------------


def test_cancel_raises_at_the_next_durable_point_and_compensation_runs(app: durably.App) -> None:
    calls = Calls()

    @app.step()
    async def undo(what: str) -> None:
        calls.add(f"undo {what}")

    @app.workflow()
    async def booking() -> str:
        try:
            await durably.wait_event("never")
        except Exception:
            return "swallowed"  # Cancelled is a BaseException: this does not catch it
        finally:
            await undo("booking")
        return "done"

    with app:
        h = app.start(booking, id="booking")
        wait_for(lambda: any(e.kind == "event" for e in h.history()))
        app.cancel("booking")
        with pytest.raises(durably.WorkflowFailedError) as info:
            h.result(timeout=10)
    assert info.value.status == "cancelled" and info.value.error["code"] == "cancelled"
    assert calls.log == ["undo booking"]
    assert [e.name for e in h.history()] == ["never", "undo"]
    app.cancel("booking")  # cancelling a cancelled workflow is a no-op

    @app.workflow()
    async def finished_quickly() -> int:
        return 1

    with app:
        app.start(finished_quickly, id="quick").result(timeout=10)
    with pytest.raises(durably.WorkflowStateError, match="completed"):
        app.cancel("quick")


def test_cancel_before_start_and_terminate_runs_no_code(app: durably.App) -> None:
    calls = Calls()

    @app.workflow()
    async def never_starts() -> None:
        calls.add("ran")

    h = app.start(never_starts, id="early")
    app.cancel("early")
    assert h.status() is WorkflowStatus.CANCELLED

    @app.step()
    async def cleanup() -> None:
        calls.add("cleanup")

    @app.workflow()
    async def stubborn() -> None:
        try:
            await durably.sleep(timedelta(days=1))
        finally:
            # runs (refused) when the workflow is unwound to be parked, and never after
            # terminate: no durable work happens
            await cleanup()

    with app:
        h2 = app.start(stubborn, id="stubborn")
        wait_for(lambda: h2.info().wake_at is not None)
        app.terminate("stubborn", "no longer needed")
        assert h2.status() is WorkflowStatus.TERMINATED
        time.sleep(0.3)
    assert calls.log == []
    assert [e.kind for e in h2.history()] == ["sleep"]


def test_suspend_and_resume(app: durably.App) -> None:
    calls = Calls()

    @app.step()
    async def mark(i: int) -> None:
        calls.add(f"mark {i}")

    @app.workflow()
    async def marcher() -> str:
        await mark(1)
        await durably.wait_event("next")
        await mark(2)
        return "done"

    with app:
        h = app.start(marcher, id="marcher")
        # suspend once mark 1 is recorded (suspending revokes the lease at once, so a step
        # still in flight would run again after resume, as after any lost lease)
        wait_for(lambda: any(e.kind == "event" for e in h.history()))
        app.suspend("marcher")
        assert h.status() is WorkflowStatus.SUSPENDED
        app.send_event("marcher", "next")  # accepted, but waits while suspended
        time.sleep(0.4)
        assert calls.log == ["mark 1"]
        app.suspend("marcher")  # idempotent
        assert h.status() is WorkflowStatus.SUSPENDED
        app.resume("marcher")
        assert h.result(timeout=10) == "done"
    assert calls.log == ["mark 1", "mark 2"]
    with pytest.raises(durably.WorkflowStateError):
        app.resume("marcher")


def test_retry_reruns_from_the_failed_step_keeping_earlier_results(app: durably.App) -> None:
    calls = Calls()
    broken = {"yes": True}

    @app.step()
    async def first() -> int:
        calls.add("first")
        return 1

    @app.step(retry=durably.Retry(attempts=1))
    async def second(x: int) -> int:
        calls.add("second")
        if broken["yes"]:
            raise RuntimeError("bug")
        return x + 1

    @app.workflow()
    async def two() -> int:
        return await second(await first())

    with app:
        h = app.start(two, id="two")
        with pytest.raises(durably.WorkflowFailedError):
            h.result(timeout=10)
        broken["yes"] = False  # "deploy the fix"
        app.retry("two")
        assert h.result(timeout=10) == 2
    assert calls.log == ["first", "second", "second"]
    with pytest.raises(durably.WorkflowStateError):
        app.retry("two")


def test_fork_from_a_step_and_purge(app: durably.App) -> None:
    calls = Calls()

    @app.step()
    async def stage(i: int) -> int:
        calls.add(f"stage {i}")
        return i

    @app.workflow()
    async def pipeline() -> list[int]:
        return [await stage(i) for i in range(3)]

    with app:
        app.start(pipeline, id="orig").result(timeout=10)
        fork = app.fork("orig", from_step=1, new_id="orig-fork")
        assert fork.result(timeout=10) == [0, 1, 2]
    assert calls.log == ["stage 0", "stage 1", "stage 2", "stage 1", "stage 2"]
    original, copied = app.handle("orig").history(), fork.history()
    assert (copied[0].seq, copied[0].result, copied[0].epoch) == (
        original[0].seq, original[0].result, original[0].epoch,
    )  # fmt: skip
    with pytest.raises(durably.WorkflowStateError):
        app.fork("orig", from_step=0, new_id="orig-fork")
    app.purge("orig")
    with pytest.raises(durably.WorkflowNotFoundError):
        app.handle("orig").status()
    assert app.store.get_journal("orig") == []
    with pytest.raises(durably.WorkflowNotFoundError):
        app.purge("orig")


def test_fork_from_past_the_end_of_the_journal_is_refused(app: durably.App) -> None:
    @app.step()
    async def only(x: int) -> int:
        return x

    @app.workflow()
    async def one_step() -> int:
        return await only(1)

    @app.workflow()
    async def no_step() -> int:
        return 0

    with app:
        app.start(one_step, id="one").result(timeout=10)
        app.start(no_step, id="none").result(timeout=10)
        for wid, step, entries in (("one", 99, "entries 0 to 0"), ("one", 2, "entries 0 to 0"),
                                   ("none", 1, "journal is empty")):  # fmt: skip
            with pytest.raises(durably.ConfigurationError) as info:
                app.fork(wid, from_step=step, new_id=f"{wid}-fork")
            assert f"from step {step}" in info.value.message and entries in info.value.message
            assert "nothing was created" in info.value.message
        assert [w.id for w in app.list_workflows()] == ["none", "one"]
        # the end itself is a fork point: it re-runs only what came after the last entry
        assert app.fork("one", from_step=1, new_id="one-end").result(timeout=10) == 1
        with pytest.raises(durably.WorkflowNotFoundError):
            app.fork("missing", from_step=5)


def test_fork_of_a_waiting_workflow_waits_on_its_own(app: durably.App) -> None:
    @app.workflow()
    async def gate() -> str:
        first = await durably.wait_event("a")
        second = await durably.wait_event("b")
        return f"{first}{second}"

    with app:
        h = app.start(gate, id="gate")
        app.send_event("gate", "a", "x")
        wait_for(lambda: [e.status for e in h.history()] == ["completed", "waiting"])
        fork = app.fork("gate", from_step=2, new_id="gate-fork")
        wait_for(lambda: len(fork.history()) == 2)
        assert [e.status for e in fork.history()] == ["completed", "waiting"]
        app.send_event("gate-fork", "b", "y")
        assert fork.result(timeout=10) == "xy"
        assert h.status() is WorkflowStatus.RUNNING  # the source still waits for its own "b"


def test_purge_refuses_unfinished_workflows(app: durably.App) -> None:
    @app.workflow()
    async def pending() -> None:
        return None

    app.start(pending, id="pend")
    with pytest.raises(durably.WorkflowStateError, match="pending"):
        app.purge("pend")
    assert app.handle("pend").status() is WorkflowStatus.PENDING


# -- sagas ---------------------------------------------------------------------------------------


def test_saga_compensates_in_reverse_order_on_failure(app: durably.App) -> None:
    calls = Calls()

    @app.step()
    async def do(what: str) -> None:
        calls.add(f"do {what}")

    @app.step()
    async def undo(what: str) -> None:
        calls.add(f"undo {what}")

    @app.step(retry=durably.Retry(attempts=1))
    async def fail() -> None:
        raise RuntimeError("payment declined")

    @app.workflow()
    async def trip() -> str:
        async with durably.Saga() as saga:
            await do("flight")
            saga.add(undo, "flight")
            await do("hotel")
            saga.add(undo, "hotel")
            await fail()
        return "booked"

    @app.workflow()
    def sync_trip() -> str:
        try:
            with durably.Saga() as saga:
                do_sync = durably.submit(do, "car")
                do_sync.result()
                saga.add(undo, "car")
                durably.submit(fail).result()
        except durably.StepFailed:
            return "rolled back"
        return "booked"

    with app:
        h = app.start(trip, id="trip")
        with pytest.raises(durably.WorkflowFailedError):
            h.result(timeout=10)
        assert app.start(sync_trip).result(timeout=10) == "rolled back"
    assert calls.log == ["do flight", "do hotel", "undo hotel", "undo flight", "do car",
                         "undo car"]  # fmt: skip
