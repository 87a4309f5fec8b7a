"""Pure engine tests of ``durably.wait_any``: synthetic journals, a fake runtime, no database."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import durably
from durably.engine.waits import Parked
from durably.storage.base import (
    FAR_FUTURE,
    ChildOutcome,
    ConsumeEvent,
    InboxEvent,
    JournalEntry,
    Park,
    RecordEntry,
    WorkflowStatus,
)
from tests.fakes import FakeRuntime, output, run_once

app = durably.App("sqlite:///never-opened.db")


@app.workflow()
async def approval() -> Any:
    fired = await durably.wait_any(approve=durably.event("approve"), escalate=durably.timer(3600))
    return [fired.index, fired.key, fired.value]


@app.workflow()
def approval_sync() -> Any:
    fired = durably.wait_any_sync(durably.event("approve"), durably.timer(3600))
    return [fired.index, fired.key, fired.value]


@app.workflow()
async def kid(n: int) -> int:
    return n


@app.workflow()
async def reply_or_child() -> Any:
    handle = durably.start_child(kid, 7)
    fired = await durably.wait_any(durably.event("reply"), kid=handle)
    return [fired.key, fired.value]


def entry(
    seq: int, kind: str, name: str, result: str | None, status: str = "completed", **kw: Any
) -> JournalEntry:
    return JournalEntry("wf-1", seq, kind, name, status, result, kw.get("error"), 1, "old", 1,
                        1.0, kw.get("finished_at", 1.0), str(seq))  # fmt: skip


def ops(rt: FakeRuntime, kind: type) -> list[Any]:
    return [op for op in rt.written if isinstance(op, kind)]


NAME = "event:approve | timer"
WAITING = entry(0, "any", NAME, json.dumps({"deadlines": [None, 4600.0]}), "waiting")


def test_it_records_its_timers_and_parks_on_the_events_and_the_earliest_timer() -> None:
    for wf in (approval, approval_sync):
        outcome, rt, ctx = run_once(wf)
        assert isinstance(ctx.halted, Parked) and outcome.status is None
        (waiting,) = rt.entries()
        assert (waiting.kind, waiting.name, waiting.status) == ("any", NAME, "waiting")
        assert json.loads(waiting.result or "") == {"deadlines": [None, rt.clock + 3600]}
        (park,) = ops(rt, Park)
        assert park.event_names == ["approve"] and park.wake_at == rt.clock + 3600


def test_the_event_wins_and_is_consumed_with_the_choice() -> None:
    inbox = [
        InboxEvent(4, "wf-1", "other", '"x"', 5.0),
        InboxEvent(9, "wf-1", "approve", '"ok"', 6.0),
    ]
    for wf in (approval, approval_sync):
        outcome, rt, _ = run_once(wf, journal=[WAITING], inbox=inbox, epoch=2)
        assert output(outcome)[0] == 0 and output(outcome)[2] == "ok"
        (consume,) = ops(rt, ConsumeEvent)
        assert consume.event_id == 9 and consume.entry.status == "completed"
        assert json.loads(consume.entry.result or "") == {
            "index": 0,
            "value": '"ok"',
            "event": "approve",
        }
    outcome, _, _ = run_once(approval, journal=[WAITING], inbox=inbox, epoch=2)
    assert output(outcome) == [0, "approve", "ok"]


def test_the_timer_wins_and_leaves_the_event_unconsumed() -> None:
    def late(rt: FakeRuntime) -> None:
        rt.clock = 5000.0

    # an event sent after the timer was due: the timer fired first, even if both are ready now
    inbox = [InboxEvent(9, "wf-1", "approve", '"late"', 4700.0)]
    outcome, rt, _ = run_once(approval, journal=[WAITING], inbox=inbox, setup=late, epoch=2)
    assert output(outcome) == [1, "escalate", None]
    assert ops(rt, ConsumeEvent) == []
    (done,) = rt.entries()
    assert json.loads(done.result or "") == {"index": 1, "value": None}
    # one sent before the timer was due, seen only now (the workflow was down): the event
    early = [InboxEvent(9, "wf-1", "approve", '"early"', 4500.0)]
    outcome, rt, _ = run_once(approval, journal=[WAITING], inbox=early, setup=late, epoch=2)
    assert output(outcome) == [0, "approve", "early"]


def test_a_replay_returns_the_recorded_choice_whatever_is_ready_now() -> None:
    chose_timer = entry(0, "any", NAME, json.dumps({"index": 1, "value": None}))
    inbox = [InboxEvent(9, "wf-1", "approve", '"ok"', 1.0)]
    for wf, key in ((approval, "escalate"), (approval_sync, None)):
        outcome, rt, _ = run_once(wf, journal=[chose_timer], inbox=inbox, epoch=3)
        assert output(outcome) == [1, key, None]
        assert rt.written == []  # nothing consumed, nothing recorded
    chose_event = entry(0, "any", NAME, json.dumps({"index": 0, "value": '{"by": "ada"}'}))
    outcome, rt, _ = run_once(approval, journal=[chose_event], epoch=3)  # the timer is due too
    assert output(outcome) == [0, "approve", {"by": "ada"}] and rt.written == []


def test_a_wait_any_where_the_journal_has_another_wait_is_non_determinism() -> None:
    other = entry(0, "any", "event:approve | event:reject", json.dumps({"deadlines": [None, None]}))
    outcome, _, _ = run_once(approval, journal=[other], epoch=2)
    assert outcome.status is WorkflowStatus.NEEDS_ATTENTION


def test_a_child_or_an_event_and_the_losing_child_keeps_its_wait() -> None:
    outcome, rt, _ = run_once(reply_or_child)
    (park,) = ops(rt, Park)
    assert park.child_ids == ["wf-1:0"] and park.event_names == ["reply"]
    assert park.wake_at == FAR_FUTURE
    started = entry(0, "child", "kid", json.dumps({"id": "wf-1:0"}), "waiting")
    waiting = entry(1, "any", "event:reply | child:kid", json.dumps({"deadlines": [None, None]}),
                    "waiting")  # fmt: skip
    # the child ended first: its result wins (the child's own entry is left for its handle)
    done = [ChildOutcome("wf-1:0", WorkflowStatus.COMPLETED, "7", None, 3.0)]
    inbox = [InboxEvent(2, "wf-1", "reply", '"hi"', 4.0)]
    outcome, rt, _ = run_once(reply_or_child, journal=[started, waiting], children=done,
                              inbox=inbox, epoch=2)  # fmt: skip
    assert output(outcome) == ["kid", 7]
    assert ops(rt, ConsumeEvent) == [] and [e.seq for e in rt.entries()] == [1]
    # the reply came first
    inbox = [InboxEvent(2, "wf-1", "reply", '"hi"', 2.0)]
    outcome, rt, _ = run_once(reply_or_child, journal=[started, waiting], children=done,
                              inbox=inbox, epoch=2)  # fmt: skip
    assert output(outcome) == [None, "hi"]
    # a child that failed wins by raising ChildWorkflowFailed, on every replay
    failed = [ChildOutcome("wf-1:0", WorkflowStatus.FAILED, None, '{"message": "boom"}', 3.0)]
    outcome, rt, _ = run_once(reply_or_child, journal=[started, waiting], children=failed,
                              epoch=2)  # fmt: skip
    assert outcome.status is WorkflowStatus.FAILED
    assert "ChildWorkflowFailed" in json.loads(outcome.error or "")["type"]
    (recorded,) = ops(rt, RecordEntry)
    assert recorded.entry.status == "failed"
    outcome, rt, _ = run_once(reply_or_child, journal=[started, recorded.entry], epoch=3)
    assert outcome.status is WorkflowStatus.FAILED and rt.written == []


def test_bad_waits_are_refused_with_advice() -> None:
    @app.workflow(name="bad_waits")
    async def bad_waits() -> None:
        await durably.wait_any(durably.wait_event("x"))  # type: ignore[arg-type]

    outcome, _, _ = run_once(bad_waits)
    assert outcome.status is WorkflowStatus.FAILED
    message = json.loads(outcome.error or "")["message"]
    assert "durably.event(name) rather than durably.wait_event(name)" in message
    with pytest.raises(durably.ConfigurationError, match="at least one"):
        durably.wait_any()
    with pytest.raises(durably.ConfigurationError, match="exactly one"):
        durably.timer()
    with pytest.raises(durably.NotInWorkflowError):
        durably.wait_any(durably.timer(1))


@app.workflow()
async def approval_then_charge() -> Any:
    fired = await durably.wait_any(approve=durably.event("approve"), escalate=durably.timer(3600))
    return [fired.key, await charge(1)]


@app.step(retry=durably.Retry(attempts=3, initial=600))
async def charge(n: int) -> int:
    if durably.step_context().attempt == 1:
        raise ConnectionError("down")
    return n


def test_the_deploy_gate_replays_parked_wait_anys_and_retries_without_running_them() -> None:
    from durably.engine.replay import Replayer
    from durably.storage.base import WorkflowRecord

    def replay(wf: Any, journal: list[JournalEntry]) -> Any:
        record = WorkflowRecord("wf-1", wf.name, WorkflowStatus.RUNNING,
                                app.codec.encode_call((), {}), 0.0, 0.0)  # fmt: skip

        async def main() -> Any:
            async with Replayer(app.codec, clock=lambda: 2000.0) as replayer:
                return await replayer.replay(wf, record, journal)

        return asyncio.run(main())

    waiting = entry(0, "any", "event:approve | timer", json.dumps({"deadlines": [None, 9e9]}),
                    "waiting")  # fmt: skip
    assert replay(approval_then_charge, [waiting]).ok
    chose = entry(0, "any", "event:approve | timer", json.dumps({"index": 1, "value": None}))
    retrying = entry(1, "step", "charge", json.dumps({"retry_at": 9e9}), "waiting")
    result = replay(approval_then_charge, [chose, retrying])
    assert result.ok and result.replayed == 2
    renamed = entry(0, "any", "event:approved | timer", json.dumps({"deadlines": [None, 9e9]}),
                    "waiting")  # fmt: skip
    divergence = replay(approval_then_charge, [renamed]).divergence
    assert divergence is not None and divergence.journal_name == "event:approved | timer"
