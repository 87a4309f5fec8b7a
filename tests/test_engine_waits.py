"""Pure engine tests of durable waits: synthetic journals, a fake runtime, no database."""

from __future__ import annotations

import json
from typing import Any

import durably
from durably.engine.waits import Parked
from durably.storage.base import (
    FAR_FUTURE,
    ChildOutcome,
    ConsumeEvent,
    DeliverCancel,
    InboxEvent,
    JournalEntry,
    Park,
    RecordEntry,
    StartChild,
    WorkflowStatus,
)
from tests.fakes import FakeRuntime, output, run_once

app = durably.App("sqlite:///never-opened.db")
ran: list[str] = []


@app.step()
async def note(what: str) -> str:
    ran.append(what)
    return what


@app.workflow()
async def nap_then_note() -> str:
    await durably.sleep(60)
    return await note("after")


@app.workflow()
async def waiter() -> Any:
    return await durably.wait_event("go", timeout=30)


TIMED_OUT = "<timed out>"


@app.workflow()
async def waiter_or_default() -> Any:
    return await durably.wait_event("go", timeout=30, default=TIMED_OUT)


@app.workflow()
def sync_waiter() -> Any:
    try:
        return durably.wait_event_sync("go", timeout=30)
    except durably.EventTimeoutError as exc:
        return f"timeout of {exc.event} after {exc.timeout}s"


@app.workflow()
async def kid(n: int) -> int:
    return n


@app.workflow()
async def parent() -> int:
    return await kid(7) + 1


@app.workflow()
async def cancellable() -> str:
    try:
        await durably.sleep(60)
    except durably.Cancelled:
        await note("compensate")
        raise
    return "slept"


def entry(
    seq: int, kind: str, name: str, result: str | None, status: str = "completed"
) -> JournalEntry:
    return JournalEntry("wf-1", seq, kind, name, status, result, None, 1, "old", 1, 1.0, 1.0)


def ops(rt: FakeRuntime, kind: type) -> list[Any]:
    return [op for op in rt.written if isinstance(op, kind)]


def test_a_sleep_not_yet_due_parks_with_its_wake_time() -> None:
    ran.clear()
    outcome, rt, ctx = run_once(nap_then_note)
    assert outcome.status is None and isinstance(ctx.halted, Parked)
    (sleep,) = [e for e in rt.entries() if e.kind == "sleep"]
    (park,) = ops(rt, Park)
    assert json.loads(sleep.result or "") == park.wake_at == rt.clock + 60
    assert ran == []


def test_a_due_sleep_replays_through_without_waiting() -> None:
    ran.clear()
    journal = [entry(0, "sleep", "sleep", "900.0")]  # due: the fake clock says 1000
    outcome, rt, _ = run_once(nap_then_note, journal=journal, epoch=2)
    assert output(outcome) == "after" and ran == ["after"]
    assert ops(rt, Park) == []


def test_an_event_in_the_inbox_is_consumed_with_its_entry() -> None:
    inbox = [
        InboxEvent(5, "wf-1", "other", '"x"', 1.0),
        InboxEvent(7, "wf-1", "go", '{"a":1}', 1.0),
    ]
    outcome, rt, _ = run_once(waiter, inbox=inbox)
    assert output(outcome) == {"a": 1}
    (consume,) = ops(rt, ConsumeEvent)
    assert consume.event_id == 7 and consume.entry.result == '{"a":1}'


def test_a_consumed_event_replays_without_consuming_again() -> None:
    journal = [entry(0, "event", "go", '"yes"')]
    outcome, rt, _ = run_once(waiter, journal=journal, epoch=2)
    assert output(outcome) == "yes" and rt.written == []


def test_an_event_wait_parks_until_an_event_or_its_deadline() -> None:
    outcome, rt, _ = run_once(waiter)
    (park,) = ops(rt, Park)
    assert park.event_names == ["go"] and park.wake_at == rt.clock + 30
    waiting = [e for e in rt.entries() if e.kind == "event"]
    assert waiting[0].status == "waiting"
    # replayed after the deadline: it times out, recorded as such (no result), and raises
    deadline_passed = [entry(0, "event", "go", json.dumps({"deadline": 999.0}), "waiting")]
    outcome, rt, _ = run_once(waiter, journal=deadline_passed, epoch=2)
    assert outcome.status is WorkflowStatus.FAILED
    error = json.loads(outcome.error or "{}")
    assert error["type"] == "durably.errors.EventTimeoutError"
    assert "'go'" in error["message"] and "default=" in error["message"]
    (done,) = rt.entries()
    assert done.status == "completed" and done.result is None


def test_a_timeout_and_an_event_without_payload_are_told_apart_on_every_replay() -> None:
    waiting = [entry(0, "event", "go", json.dumps({"deadline": 999.0}), "waiting")]
    for wf in (waiter_or_default, sync_waiter):
        outcome, rt, _ = run_once(wf, journal=waiting, epoch=2)
        timed_out = output(outcome)
        assert timed_out in (TIMED_OUT, "timeout of go after 30.0s")
        (done,) = rt.entries()
        assert done.result is None
        # the journal says which happened: a recorded timeout (as written before the
        # distinction existed too) replays as a timeout, an event with no payload as None
        assert output(run_once(wf, journal=[done], epoch=3)[0]) == timed_out
        no_payload = [entry(0, "event", "go", "null")]
        assert output(run_once(wf, journal=no_payload, epoch=3)[0]) is None
        inbox = [InboxEvent(3, "wf-1", "go", None, 1.0)]  # sent with no payload
        outcome, rt, _ = run_once(wf, inbox=inbox)
        assert output(outcome) is None
        (consume,) = ops(rt, ConsumeEvent)
        assert consume.entry.result == "null"


def test_a_child_is_started_once_and_its_outcome_resolves_the_wait() -> None:
    outcome, rt, _ = run_once(parent)
    (start,) = ops(rt, StartChild)
    assert start.child.id == "wf-1:0" and start.child.parent_id == "wf-1"
    assert rt.new_work == 1
    (park,) = ops(rt, Park)
    assert park.child_ids == ["wf-1:0"] and park.wake_at == FAR_FUTURE
    waiting = [entry(0, "child", "kid", json.dumps({"id": "wf-1:0"}), "waiting")]
    done = [ChildOutcome("wf-1:0", WorkflowStatus.COMPLETED, "7", None)]
    outcome, rt, _ = run_once(parent, journal=waiting, children=done, epoch=2)
    assert output(outcome) == 8
    assert ops(rt, StartChild) == []  # not started twice
    (resolved,) = rt.entries()
    assert resolved.status == "completed" and resolved.result == "7"


def test_a_requested_cancellation_is_raised_at_the_wait_and_recorded() -> None:
    ran.clear()
    outcome, rt, _ = run_once(cancellable, cancel_requested=True)
    assert outcome.status is WorkflowStatus.CANCELLED
    (deliver,) = ops(rt, DeliverCancel)
    assert deliver.key == "0"
    assert ran == ["compensate"]
    # replay: the recorded cancellation is raised at the same seq, compensation replays
    journal = [entry(0, "sleep", "sleep", "1060.0"), entry(1, "step", "note", '"compensate"')]
    ran.clear()
    outcome, rt, _ = run_once(cancellable, journal=journal, cancel_key="0", epoch=2)
    assert outcome.status is WorkflowStatus.CANCELLED
    assert ran == [] and rt.written == []


def test_sleep_where_the_journal_has_a_step_is_non_determinism() -> None:
    journal = [entry(0, "step", "note", '"x"')]
    outcome, rt, _ = run_once(nap_then_note, journal=journal, epoch=2)
    assert outcome.status is WorkflowStatus.NEEDS_ATTENTION
    assert ops(rt, RecordEntry) == []


@app.workflow()
async def child_then_cancel() -> str:
    handle = durably.start_child(kid, 1)
    await note("started")
    try:
        await handle
    except durably.Cancelled:
        await note("undo")
        raise
    return "done"


def test_a_cancellation_replays_where_it_was_raised_not_where_the_call_began() -> None:
    ran.clear()
    # the child started (key "0"), the step ran (key "1"); the cancel is raised at `await handle`
    begun = [
        entry(0, "child", "kid", json.dumps({"id": "wf-1:0"}), "waiting"),
        entry(1, "step", "note", '"started"'),
    ]
    outcome, rt, _ = run_once(child_then_cancel, journal=begun, cancel_requested=True, epoch=2)
    assert outcome.status is WorkflowStatus.CANCELLED
    assert ran == ["undo"]
    (deliver,) = ops(rt, DeliverCancel)
    assert deliver.key == "0"
    # the replay passes start_child and the step, and raises at the await again
    journal = [*begun, entry(2, "step", "note", '"undo"')]
    ran.clear()
    outcome, rt, _ = run_once(child_then_cancel, journal=journal, cancel_key="0", epoch=3)
    assert outcome.status is WorkflowStatus.CANCELLED and ran == [] and rt.written == []


@app.workflow()
async def two_naps() -> str:
    await durably.sleep(1)
    await note("warm")
    try:
        await durably.sleep(3600)
    except durably.Cancelled:
        await note("undo")
        raise
    return "done"


def test_a_pending_cancellation_is_not_raised_at_a_timer_that_already_fired() -> None:
    ran.clear()
    journal = [entry(0, "sleep", "sleep", "500.0"), entry(1, "step", "note", '"warm"'),
               entry(2, "sleep", "sleep", "4600.0")]  # fmt: skip
    outcome, rt, _ = run_once(two_naps, journal=journal, cancel_requested=True, epoch=2)
    assert outcome.status is WorkflowStatus.CANCELLED
    (deliver,) = ops(rt, DeliverCancel)
    assert deliver.key == "2"  # at the hour-long sleep, not at the first (fired) one
    assert ran == ["undo"]
