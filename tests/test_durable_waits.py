"""Durable waits on a real database (SQLite and PostgreSQL: ``db_url``) with an embedded worker:
retry backoff parked on a durable timer, and ``durably.wait_any`` over events, timers and
children. The App's clock is a fake one the tests move (the worker's timers follow it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

import durably
import durably.testing
from durably.testing import WorkflowEnvironment

T0 = 2_000_000_000.0  # 2033: far from the real time


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def until(what: str, done: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


@pytest.fixture
def app(db_url: str) -> Iterator[durably.App]:
    options = durably.WorkerOptions(poll_interval=0.02, eviction_threshold=0.0)
    app = durably.App(db_url, worker_options=options)
    app.clock = Clock()
    yield app
    app.stop_worker()


def advance(app: durably.App, seconds: float) -> None:
    clock = app.clock
    assert isinstance(clock, Clock)
    clock.t += seconds
    app._notify_worker()


def parked(app: durably.App, workflow_id: str, wake_at: float | None = None) -> bool:
    """Whether the workflow is parked (no execution in the worker), on ``wake_at`` if given."""
    worker = app._worker
    info = app.handle(workflow_id).info()
    on_time = wake_at is None or (info.wake_at is not None and info.wake_at.timestamp() == wake_at)
    return worker is not None and workflow_id not in worker.active and on_time


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_long_retry_backoff_parks_on_a_durable_timer(app: durably.App, kind: str) -> None:
    attempts: list[int] = []

    @app.step(retry=durably.Retry(attempts=3, initial=3600))
    def flaky() -> str:
        attempt = durably.step_context().attempt
        attempts.append(attempt)
        if attempt == 1:
            raise ConnectionError("the service is down")
        return f"ok on attempt {attempt}"

    @app.workflow
    async def calls_flaky() -> str:
        return await durably.run(flaky)

    @app.workflow
    def calls_flaky_sync() -> str:
        return flaky()

    with app:
        handle = app.start(calls_flaky if kind == "async" else calls_flaky_sync, id="retry-1")
        # parked an hour ahead: the worker holds nothing for it, the journal has attempt 1
        until("it parks", lambda: parked(app, "retry-1", T0 + 3600))
        (step,) = app.store.get_journal("retry-1")
        assert (step.kind, step.status, step.attempts) == ("step", "waiting", 1)
        assert "the service is down" in (step.error or "")
        assert [a.attempt for a in app.store.get_attempts("retry-1")] == [1]
        assert attempts == [1]
        advance(app, 3600)
        assert handle.result(timeout=30) == "ok on attempt 2"
    assert attempts == [1, 2]
    (step,) = app.store.get_journal("retry-1")
    assert (step.status, step.attempts) == ("completed", 2)


def test_the_time_skipping_environment_skips_retry_backoff(tmp_path: Any) -> None:
    app = durably.App(f"sqlite:///{tmp_path}/env.db")
    attempts: list[int] = []

    @app.step(retry=durably.Retry(attempts=3, initial=3600, backoff=2, max_interval=7200))
    async def flaky() -> int:
        attempts.append(durably.step_context().attempt)
        if len(attempts) < 3:
            raise ConnectionError("down")
        return len(attempts)

    @app.workflow
    async def calls_flaky() -> int:
        return await flaky()

    with WorkflowEnvironment(app) as env:
        start = env.now()
        assert app.start(calls_flaky).result(timeout=30) == 3
        assert env.now() - start >= timedelta(hours=3)  # 1 h, then 2 h, of virtual time
    assert attempts == [1, 2, 3]


def approval_app(app: durably.App) -> Any:
    @app.workflow
    async def approve_or_escalate() -> list[Any]:
        fired = await durably.wait_any(
            approval=durably.event("approval"), escalate=durably.timer(3600)
        )
        await durably.sleep(7200)  # parked: the wait_any is replayed afterwards
        later = await durably.wait_event("approval", timeout=0, default="none left")
        return [fired.key, fired.value, later]

    return approve_or_escalate


def test_wait_any_the_event_wins_and_replays_so(app: durably.App) -> None:
    workflow = approval_app(app)
    with app:
        handle = app.start(workflow, id="approve-1")
        until("it waits", lambda: parked(app, "approve-1", T0 + 3600))
        app.send_event("approve-1", "approval", {"by": "ada"})
        until("it sleeps", lambda: parked(app, "approve-1", T0 + 7200))
        app.send_event("approve-1", "approval", "second")  # for the later wait only
        advance(app, 7200)  # both the timer and the second event are ready at the replay
        assert handle.result(timeout=30) == ["approval", {"by": "ada"}, "second"]


def test_wait_any_the_timer_wins_and_an_event_sent_after_it_stays(app: durably.App) -> None:
    workflow = approval_app(app)
    with app:
        handle = app.start(workflow, id="approve-2")
        until("it waits", lambda: parked(app, "approve-2", T0 + 3600))
    # all workers down: the timer comes due, then the event arrives; both are ready
    advance(app, 3700)
    app.send_event("approve-2", "approval", "too late")
    with app:
        until("it sleeps", lambda: parked(app, "approve-2", T0 + 3700 + 7200))
        advance(app, 7200)
        assert handle.result(timeout=30) == ["escalate", None, "too late"]


def test_wait_any_over_several_events_takes_the_first_sent(app: durably.App) -> None:
    @app.workflow
    async def first_of_two() -> list[Any]:
        fired = await durably.wait_any(durably.event("a"), durably.event("b"))
        a = await durably.wait_event("a", timeout=0, default=None)
        b = await durably.wait_event("b", timeout=0, default=None)
        return [fired.index, fired.key, fired.value, a, b]

    handle = app.start(first_of_two, id="two")  # no worker yet
    app.send_event("two", "b", "from b")
    app.send_event("two", "a", "from a")
    with app:
        # b was sent first: it wins and is consumed; a stays for the later wait
        assert handle.result(timeout=30) == [1, None, "from b", "from a", None]


def test_wait_any_an_event_or_a_child_and_the_losing_child_runs_on(app: durably.App) -> None:
    @app.workflow
    async def responder(n: int) -> int:
        return int(await durably.wait_event("go")) + n

    @app.workflow
    async def first_reply() -> list[Any]:
        child = durably.start_child(responder, 10)
        fired = await durably.wait_any(reply=durably.event("reply"), child=child)
        return [fired.key, fired.value, await child]

    def exists(workflow_id: str) -> bool:
        return any(w.id == workflow_id for w in app.list_workflows())

    with app:
        # the child answers first
        h1 = app.start(first_reply, id="p1")
        until("the child starts", lambda: exists("p1:0"))
        app.send_event("p1:0", "go", 5)
        assert h1.result(timeout=30) == ["child", 15, 15]
        # the reply comes first; the child, which lost, still runs to its end
        h2 = app.start(first_reply, id="p2")
        until("the parent waits", lambda: exists("p2:0") and parked(app, "p2"))
        app.send_event("p2", "reply", "hi")
        until("the reply won", lambda: any(e.kind == "any" and e.status == "completed"
                                           for e in app.store.get_journal("p2")))  # fmt: skip
        app.send_event("p2:0", "go", 1)
        assert h2.result(timeout=30) == ["reply", "hi", 11]


def test_wait_any_sync_twin(app: durably.App) -> None:
    @app.workflow
    def sync_approval() -> list[Any]:
        fired = durably.wait_any_sync(durably.event("ok"), late=durably.timer(60))
        return [fired.index, fired.key, fired.value]

    with app:
        h1 = app.start(sync_approval, id="s1")
        until("it waits", lambda: parked(app, "s1", T0 + 60))
        app.send_event("s1", "ok", 42)
        assert h1.result(timeout=30) == [0, None, 42]
        h2 = app.start(sync_approval, id="s2")
        until("it waits", lambda: parked(app, "s2", T0 + 60))
        advance(app, 60)
        assert h2.result(timeout=30) == [1, "late", None]


def test_check_crash_safety_of_a_wait_any_and_a_retried_step(tmp_path: Any) -> None:
    app = durably.App(f"sqlite:///{tmp_path}/crash.db")

    @app.step(retry=durably.Retry(attempts=3, initial=600))
    async def flaky(n: int) -> int:
        if durably.step_context().attempt < 2:
            raise ConnectionError("down")
        return n * 2

    @app.workflow
    async def approve_then_charge() -> list[Any]:
        # (no timer: the check's time skipping would race its sending of the events)
        fired = await durably.wait_any(
            approved=durably.event("approved"), rejected=durably.event("rejected")
        )
        again = await durably.wait_any(durably.event("approved"), durably.event("rejected"))
        return [fired.key, fired.value, again.index, again.value, await flaky(21)]

    report = durably.testing.check_crash_safety(
        app, approve_then_charge, events=[("approved", "ada"), ("rejected", "bob")]
    )
    assert report.result == ["approved", "ada", 1, "bob", 42]
    points = [str(p) for p in report.points]
    # the consumption of each event a wait_any won is a crash point of its own
    assert sum("before-consume any" in p for p in points) == 2, points
    assert report.step_runs == {"flaky": 2}


def test_a_cancel_reaches_a_workflow_parked_in_a_retry_or_a_wait_any(app: durably.App) -> None:
    undone: list[str] = []

    @app.step(retry=durably.Retry(attempts=3, initial=3600))
    async def always_down() -> None:
        raise ConnectionError("down")

    @app.step()
    async def undo(what: str) -> None:
        undone.append(what)

    @app.workflow
    async def retrying() -> None:
        try:
            await always_down()
        except durably.Cancelled:
            await undo("retrying")
            raise

    @app.workflow
    async def waiting() -> None:
        try:
            await durably.wait_any(durably.event("go"), durably.timer(3600))
        except durably.Cancelled:
            await undo("waiting")
            raise

    with app:
        h1, h2 = app.start(retrying, id="c1"), app.start(waiting, id="c2")
        until("both park", lambda: parked(app, "c1", T0 + 3600) and parked(app, "c2", T0 + 3600))
        app.cancel("c1")
        app.cancel("c2")
        for handle in (h1, h2):
            with pytest.raises(durably.WorkflowFailedError):
                handle.result(timeout=30)
            assert handle.status() is durably.WorkflowStatus.CANCELLED
    assert sorted(undone) == ["retrying", "waiting"]
    assert [a.attempt for a in app.store.get_attempts("c1")] == [1]  # no attempt after it
