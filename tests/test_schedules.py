"""Schedules from an App on both backends: ticks under a controlled clock (what a worker's
ticker does at a given instant), catch-up windows, every overlap policy, exactly one workflow
per tick when several tickers race, declarations written at worker start, and the operations
(pause, unpause, update, trigger, backfill, delete) with their errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import durably
from durably.schedules.firing import Firing
from durably.schedules.spec import jitter_delay, tick_id
from durably.storage.base import WorkflowStatus

UTC = UTC
BASE = datetime(2026, 12, 3, 3, 0, tzinfo=UTC).timestamp()  # a tick of every 60s schedule


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_app(db_url: str, clock: Clock) -> durably.App:
    app = durably.App(db_url)
    app.clock = clock

    @app.workflow(name="job")
    def job(n: int = 0) -> int:
        return n

    return app


@pytest.fixture
def clock() -> Clock:
    return Clock(BASE - 30)


@pytest.fixture
def app(db_url: str, clock: Clock) -> Iterator[durably.App]:
    app = make_app(db_url, clock)
    yield app
    app.close()


def tick(app: durably.App) -> None:
    """What a worker's ticker does now (the worker's own code, not served)."""
    worker = app._new_worker()
    worker._tick_due(Firing(app.store, app.codec, None, app.clock))


def ids(app: durably.App) -> set[str]:
    return {w.id for w in app.list_workflows(limit=1000)}


def status(app: durably.App, wid: str) -> WorkflowStatus:
    return app.handle(wid).status()


def tid(t: float) -> str:
    return tick_id("s", t, UTC)  # type: ignore[arg-type]


def test_each_due_tick_starts_one_workflow_and_advances(app: durably.App, clock: Clock) -> None:
    info = app.schedule("s", "job", every=60, args=(7,))
    assert info.next_run_at == datetime.fromtimestamp(BASE, UTC)
    tick(app)
    assert ids(app) == set()  # not due yet
    clock.now = BASE + 1
    tick(app)
    tick(app)  # again at the same instant: nothing more
    assert ids(app) == {"s@2026-12-03T03:00:00+00:00"}
    info = app.get_schedule("s")
    assert info.last_result == "started" and info.last_workflow_id == tid(BASE)
    assert info.next_run_at == datetime.fromtimestamp(BASE + 60, UTC)
    stored = app.store.get_workflow(tid(BASE))
    assert stored is not None and stored.input == '{"args":[7],"kwargs":{}}'
    assert stored.name == "job" and stored.status is WorkflowStatus.PENDING


def test_catch_up_default_runs_only_the_latest_missed_tick(app: durably.App, clock: Clock) -> None:
    app.schedule("s", "job", every=60, overlap="allow_all")
    clock.now = BASE + 4 * 60 + 1  # five ticks due: workers were all down
    tick(app)
    assert ids(app) == {tid(BASE + 240)}
    info = app.get_schedule("s")
    assert info.missed == 4 and info.next_run_at == datetime.fromtimestamp(BASE + 300, UTC)


def test_catch_up_window_runs_the_ticks_within_it(app: durably.App, clock: Clock) -> None:
    app.schedule("s", "job", every=60, overlap="allow_all", catchup_window=timedelta(seconds=150))
    clock.now = BASE + 4 * 60 + 1
    tick(app)
    assert ids(app) == {tid(BASE + 120), tid(BASE + 180), tid(BASE + 240)}
    assert app.get_schedule("s").missed == 2


def test_overlap_skip_skips_while_a_run_is_unfinished(app: durably.App, clock: Clock) -> None:
    app.schedule("s", "job", every=60)  # skip is the default
    clock.now = BASE + 1
    tick(app)
    clock.now = BASE + 61
    tick(app)
    assert ids(app) == {tid(BASE)}  # the first one is still pending: the second is skipped
    assert app.get_schedule("s").last_result == "skipped"
    app.cancel(tid(BASE))  # never started: cancelled at once
    clock.now = BASE + 121
    tick(app)
    assert ids(app) == {tid(BASE), tid(BASE + 120)}


def test_overlap_allow_all_runs_alongside(app: durably.App, clock: Clock) -> None:
    app.schedule("s", "job", every=60, overlap="allow_all")
    for k in range(3):
        clock.now = BASE + 60 * k + 1
        tick(app)
    assert ids(app) == {tid(BASE), tid(BASE + 60), tid(BASE + 120)}


def test_overlap_buffer_one_runs_one_held_tick_when_the_run_ends(
    app: durably.App, clock: Clock
) -> None:
    app.schedule("s", "job", every=60, overlap="buffer_one")
    for k in range(3):
        clock.now = BASE + 60 * k + 1
        tick(app)
    assert ids(app) == {tid(BASE)}
    info = app.get_schedule("s")
    assert info.buffered_tick == datetime.fromtimestamp(BASE + 60, UTC)
    assert info.last_result == "skipped"  # the third: one is buffered already
    tick(app)
    assert ids(app) == {tid(BASE)}  # still running: the buffered one waits
    app.cancel(tid(BASE))
    tick(app)
    assert ids(app) == {tid(BASE), tid(BASE + 60)}
    assert app.get_schedule("s").buffered_tick is None


@pytest.mark.parametrize(
    ("policy", "ended"),
    [("cancel_previous", WorkflowStatus.CANCELLED), ("terminate_previous", "terminated")],
)
def test_overlap_cancel_or_terminate_previous_stops_the_earlier_run(
    app: durably.App, clock: Clock, policy: str, ended: Any
) -> None:
    app.schedule("s", "job", every=60, overlap=policy)  # type: ignore[arg-type]
    clock.now = BASE + 1
    tick(app)
    clock.now = BASE + 61
    tick(app)
    assert ids(app) == {tid(BASE), tid(BASE + 60)}
    assert status(app, tid(BASE)) == ended
    assert status(app, tid(BASE + 60)) == WorkflowStatus.PENDING


def test_racing_tickers_of_two_apps_start_exactly_one_workflow_per_tick(
    db_url: str, clock: Clock
) -> None:
    apps = [make_app(db_url, clock) for _ in range(2)]
    try:
        apps[0].schedule("s", "job", every=60, overlap="allow_all")
        workers = [a._new_worker() for a in apps for _ in range(2)]
        firings = [Firing(w.store, w.codec, None, clock) for w in workers]
        rounds = 25
        for k in range(rounds):
            clock.now = BASE + 60 * k + 1
            barrier = threading.Barrier(len(workers))
            errors: list[BaseException] = []

            def run(
                i: int, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors
            ) -> None:
                try:
                    barrier.wait()
                    workers[i]._tick_due(firings[i])
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors
        expected = {tid(BASE + 60 * k) for k in range(rounds)}
        assert ids(apps[0]) == expected
        info = apps[1].get_schedule("s")
        assert info.missed == 0 and info.next_run_at == datetime.fromtimestamp(
            BASE + 60 * rounds, UTC
        )
    finally:
        for a in apps:
            a.close()


def test_declared_schedules_are_written_at_worker_start(db_url: str, clock: Clock) -> None:
    def declare(args: tuple[int, ...]) -> durably.App:
        app = durably.App(db_url)
        app.clock = clock

        @app.workflow(schedule=durably.Schedule(every=60, args=args, note="from code"))
        def report(n: int) -> int:
            return n

        return app

    first = declare((1,))
    try:
        assert first.schedules.list() == []  # declared only: nothing written yet
        first._new_worker()._declare_schedules()
        (info,) = first.schedules.list()
        assert info.name == info.workflow and info.workflow.endswith("report")
        assert (info.note, info.input) == ("from code", '{"args":[1],"kwargs":{}}')
        first.schedules.pause(info.name, reason="maintenance")
        clock.now += 10
        second = declare((2,))
        second._new_worker()._declare_schedules()
        after = second.get_schedule(info.name)
        assert after.input == '{"args":[2],"kwargs":{}}'
        assert after.paused and after.pause_reason == "maintenance"  # the operator's pause stays
        assert after.next_run_at == info.next_run_at  # the timing did not change
        second.close()
    finally:
        first.close()


def test_pause_unpause_update_delete(app: durably.App, clock: Clock) -> None:
    app.schedule("s", "job", every=60)
    app.schedules.pause("s", reason="db maintenance")
    clock.now = BASE + 3600
    tick(app)
    assert ids(app) == set()
    info = app.schedules.unpause("s")
    assert not info.paused and info.pause_reason is None
    # the first tick after now: the pause's ticks are not run
    assert info.next_run_at == datetime.fromtimestamp(BASE + 3660, UTC)
    info = app.schedules.update("s", cron="15 4 * * *", timezone="Europe/Berlin")
    assert info.cron == "15 4 * * *" and info.every is None
    assert info.next_run_at is not None
    assert info.next_run_at.isoformat() == "2026-12-04T04:15:00+01:00"
    app.schedules.delete("s")
    with pytest.raises(durably.ScheduleNotFoundError, match="no schedule named 's'"):
        app.get_schedule("s")
    with pytest.raises(durably.ScheduleNotFoundError):
        app.schedules.delete("s")


def test_trigger_and_backfill(app: durably.App, clock: Clock) -> None:
    app.schedule("s", "job", every=60, overlap="allow_all")
    clock.now = BASE + 0.5
    done = app.schedules.trigger("s")
    assert done.result == "started" and done.workflow_id == "s@2026-12-03T03:00:00.500000+00:00"
    start = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    first = app.schedules.backfill("s", start, start + timedelta(minutes=3))
    assert [t.result for t in first] == ["started"] * 4
    again = app.schedules.backfill("s", start, start + timedelta(minutes=3))
    assert [t.workflow_id for t in again] == [t.workflow_id for t in first]
    assert [t.result for t in again] == ["exists"] * 4  # idempotent: nothing twice
    assert app.get_schedule("s").last_workflow_id == done.workflow_id  # a backfill is older
    skipped = app.schedules.backfill(
        "s", start + timedelta(hours=1), start + timedelta(hours=1, minutes=2), overlap="skip"
    )
    assert [t.result for t in skipped] == ["skipped"] * 3  # earlier runs are unfinished


def test_bad_operations_are_clear_errors(app: durably.App) -> None:
    app.schedule("s", "job", every=60)
    with pytest.raises(durably.ConfigurationError, match="cannot update paused"):
        app.schedules.update("s", paused=True)
    with pytest.raises(durably.ConfigurationError, match="bad cron expression"):
        app.schedules.update("s", cron="* * *")
    with pytest.raises(durably.ConfigurationError, match="overlap must be one of"):
        app.schedules.trigger("s", overlap="sometimes")
    with pytest.raises(durably.ConfigurationError, match="end is before its start"):
        app.schedules.backfill("s", 100.0, 50.0)
    with pytest.raises(durably.ConfigurationError, match="invalid schedule name"):
        app.schedules.get("a@b")
    with pytest.raises(durably.UnknownWorkflowError):
        app.schedule("t", "no-such-workflow", every=60)
    assert app.get_schedule("s").every == timedelta(seconds=60)  # nothing changed


def test_an_embedded_worker_runs_the_ticks(tmp_path: Any) -> None:
    app = durably.App(f"sqlite:///{tmp_path}/w.db")

    @app.workflow
    def double(n: int) -> int:
        return 2 * n

    app.schedule("every-second", double, every=1, args=(21,), overlap="allow_all")
    with app:
        deadline = time.monotonic() + 20
        done: list[durably.WorkflowInfo] = []
        while time.monotonic() < deadline and len(done) < 2:
            done = app.list_workflows(status="completed", id_prefix="every-second@")
            time.sleep(0.05)
    app.close()
    assert len(done) >= 2
    assert all(app.handle(w.id).result(timeout=5) == 42 for w in done)


def test_one_broken_schedule_does_not_stop_the_others(app: durably.App, clock: Clock) -> None:
    app.schedule("good", "job", every=60)
    app.schedule("bad", "job", every=60)
    broken = app.store.get_schedule("bad")
    assert broken is not None  # its zone vanished from the time zone database, say
    broken.spec = '{"every": 60.0, "timezone": "Gone/Away"}'
    assert app.store.update_schedule(broken, broken.revision) is not None
    clock.now = BASE + 1
    tick(app)
    assert ids(app) == {"good@2026-12-03T03:00:00+00:00"}


def test_arguments_that_do_not_encode_are_refused_when_declared(app: durably.App) -> None:
    with pytest.raises(durably.SerializationError):
        app.add_schedule(durably.Schedule("s", "job", every=60, args=(object(),)))
    assert "s" not in app.registry.schedules


def test_jitter_delays_the_start_but_keeps_the_ticks_id(app: durably.App, clock: Clock) -> None:
    info = app.schedule("s", "job", every=60, jitter=timedelta(seconds=30))
    delay = jitter_delay("s", BASE, 30.0)
    assert 0 < delay < 30 and info.next_run_at == datetime.fromtimestamp(BASE, UTC)
    clock.now = BASE + delay - 0.01
    tick(app)
    assert ids(app) == set()  # the tick has come, its jittered start not yet
    clock.now = BASE + delay
    tick(app)
    assert ids(app) == {tid(BASE)}


def test_start_at_and_end_at_bound_the_ticks(app: durably.App, clock: Clock) -> None:
    app.schedule("s", "job", every=60, overlap="allow_all", catchup_window=3600,
                 start_at=BASE + 120, end_at=BASE + 240)  # fmt: skip
    assert app.get_schedule("s").next_run_at == datetime.fromtimestamp(BASE + 120, UTC)
    clock.now = BASE + 1000
    tick(app)
    assert ids(app) == {tid(BASE + 120), tid(BASE + 180), tid(BASE + 240)}
    assert app.get_schedule("s").next_run_at is None  # no more ticks
    tick(app)
    assert len(ids(app)) == 3


def test_an_hourly_cron_across_the_autumn_change_runs_both_two_oclocks(
    app: durably.App, clock: Clock
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    clock.now = datetime(2026, 10, 25, 0, 30, tzinfo=berlin).timestamp()
    app.schedule("h", "job", cron="0 * * * *", timezone="Europe/Berlin", overlap="allow_all")
    for _ in range(5):  # a tick each hour of absolute time: 01:00, 02:00, 02:00, 03:00
        clock.now += 3600
        tick(app)
    assert sorted(ids(app)) == [
        "h@2026-10-25T01:00:00+02:00",
        "h@2026-10-25T02:00:00+01:00",
        "h@2026-10-25T02:00:00+02:00",
        "h@2026-10-25T03:00:00+01:00",
        "h@2026-10-25T04:00:00+01:00",
    ]
    assert app.get_schedule("h").missed == 0


def test_an_encrypted_declaration_that_did_not_change_is_not_rewritten(
    db_url: str, clock: Clock
) -> None:
    """Encryption stores the same arguments as a new text every time (a nonce per value): a
    worker start compares the values, so an unchanged declaration writes nothing."""
    from durably.codecs import Encryption

    key = bytes(range(32))

    def declare(args: tuple[int, ...]) -> durably.App:
        app = durably.App(db_url, codecs=[Encryption(keys={"k1": key}, active="k1")])
        app.clock = clock

        @app.workflow(name="report", schedule=durably.Schedule(every=60, args=args))
        def report(n: int) -> int:
            return n

        return app

    apps = [declare((1,)), declare((1,)), declare((2,))]
    try:
        apps[0]._new_worker()._declare_schedules()
        first = apps[0].store.get_schedule("report")
        assert first is not None and first.input.startswith("$encoded:")
        clock.now += 10
        apps[1]._new_worker()._declare_schedules()
        same = apps[1].store.get_schedule("report")
        assert same is not None and (same.revision, same.input) == (first.revision, first.input)
        apps[2]._new_worker()._declare_schedules()
        changed = apps[2].store.get_schedule("report")
        assert changed is not None and changed.revision != first.revision
        assert apps[2].codec.decode_input(changed.input) == {"args": [2], "kwargs": {}}
    finally:
        for a in apps:
            a.close()
