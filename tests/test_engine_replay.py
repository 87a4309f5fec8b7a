"""Replay-only execution (durably.engine.replay): journals recorded by the fake runtime, replayed
against changed code. No database; no step body runs during a replay."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import durably
from durably.definitions import Workflow
from durably.engine.replay import Replayer, ReplayResult
from durably.storage.base import JournalEntry, StartChild, WorkflowRecord, WorkflowStatus
from tests.fakes import run_once

app = durably.App("sqlite:///never-opened.db")
ran: list[str] = []
lock = threading.Lock()


def note(name: str) -> None:
    with lock:
        ran.append(name)


@app.step()
async def a(x: int) -> int:
    note("a")
    return x + 1


@app.step()
async def b(x: int) -> int:
    note("b")
    return x * 2


@app.step()
def sync_a(x: int) -> int:
    note("sync_a")
    return x + 1


def journal_of(wf: Workflow[Any, Any], *args: Any) -> list[JournalEntry]:
    """Run ``wf`` once on the fake runtime (steps run, waits park) and return its journal."""
    _, rt, _ = run_once(wf, *args)
    ran.clear()
    started = [op.entry for op in rt.written if isinstance(op, StartChild)]
    return sorted(rt.entries() + started, key=lambda e: e.seq)


def replay(wf: Workflow[Any, Any] | None, journal: list[JournalEntry], *args: Any) -> ReplayResult:
    codec = app.codec
    record = WorkflowRecord(
        id="wf-1", name="flow", status=WorkflowStatus.RUNNING,
        input=codec.encode_call(args, {}), created_at=0.0, updated_at=0.0,
    )  # fmt: skip

    async def main() -> ReplayResult:
        async with Replayer(codec) as replayer:
            return await replayer.replay(wf, record, journal)

    result = asyncio.run(main())
    assert ran == [], f"a replay ran step bodies: {ran}"
    return result


def flows(body: Any) -> Workflow[Any, Any]:
    """A workflow named ``flow`` (as every version here) of a fresh app."""
    return durably.App("sqlite:///never-opened.db").workflow(name="flow")(body)


@flows
async def v1(x: int) -> int:
    y = await a(x)
    y = await b(y)
    await durably.wait_event("go")
    return await a(y)


def test_the_same_code_replays_to_the_journals_end_and_runs_nothing() -> None:
    journal = journal_of(v1, 1)
    assert [(e.kind, e.name, e.status) for e in journal] == [
        ("step", "a", "completed"), ("step", "b", "completed"), ("event", "go", "waiting"),
    ]  # fmt: skip
    result = replay(v1, journal, 1)
    assert result.ok and result.replayed == 3 and result.entries == 3
    partial = replay(v1, journal[:1], 1)  # a step in flight: the replay stops before it
    assert partial.ok and partial.replayed == 1


def test_a_reordered_step_is_the_first_divergence() -> None:
    @flows
    async def v2(x: int) -> int:
        y = await b(x)
        y = await a(y)
        await durably.wait_event("go")
        return await a(y)

    d = replay(v2, journal_of(v1, 1), 1).divergence
    assert d is not None
    assert (d.seq, d.key, d.journal_kind, d.journal_name) == (0, "0", "step", "a")
    assert (d.code_kind, d.code_name) == ("step", "b")
    assert "the journal recorded step 'a' but the code now calls step 'b'" in d.message
    assert d.location is not None and d.location.startswith(__file__ + ":")
    assert d.to_dict()["location"] == d.location


def test_a_removed_last_call_is_found_when_the_code_returns() -> None:
    @flows
    async def done(x: int) -> int:
        return await b(await a(x))

    @flows
    async def shorter(x: int) -> int:
        return await a(x)

    d = replay(shorter, journal_of(done, 1), 1).divergence
    assert d is not None
    assert (d.seq, d.journal_kind, d.journal_name, d.code_kind) == (1, "step", "b", "return")


def test_concurrent_branches_replay_on_while_one_is_past_the_journal() -> None:
    @flows
    async def fan(x: int) -> list[int]:
        async def left() -> int:
            return await b(await a(x))

        async def right() -> int:
            return await a(await a(x))

        return list(await asyncio.gather(left(), right()))

    @flows
    async def fan_changed(x: int) -> list[int]:
        async def left() -> int:
            return await b(await a(x))

        async def right() -> int:
            return await b(await a(x))  # its second call changed

        return list(await asyncio.gather(left(), right()))

    journal = journal_of(fan, 1)
    assert sorted(e.key for e in journal) == ["b0/0", "b0/1", "b1/0", "b1/1"]
    left_in_flight = [e for e in journal if e.key != "b0/1"]
    assert replay(fan, left_in_flight, 1).ok
    d = replay(fan_changed, left_in_flight, 1).divergence
    assert d is not None and d.key == "b1/1" and (d.journal_name, d.code_name) == ("a", "b")


def test_a_call_that_cannot_wait_ends_the_replay_cleanly() -> None:
    @flows
    async def stamped(x: int) -> float:
        y = await a(x)
        durably.now()
        durably.set_state("y", y)
        return float(y)

    journal = journal_of(stamped, 1)
    assert [e.kind for e in journal] == ["step", "now", "state"]
    result = replay(stamped, journal[:1], 1)
    assert result.ok and result.replayed == 1


def test_sleeps_recorded_and_due_replay_on_those_not_due_end_it() -> None:
    @flows
    async def sleepy(x: int) -> int:
        y = await a(x)
        await durably.sleep(86400)
        return await b(y)

    journal = journal_of(sleepy, 1)
    assert [e.kind for e in journal] == ["step", "sleep"]
    assert replay(sleepy, journal, 1).ok

    @flows
    async def sleepy_changed(x: int) -> int:
        await durably.sleep(86400)
        return await a(x)

    d = replay(sleepy_changed, journal, 1).divergence
    assert d is not None and (d.journal_kind, d.code_kind) == ("step", "sleep")


def test_sync_workflows() -> None:
    @flows
    def sync_v1(x: int) -> int:
        y = sync_a(x)
        durably.wait_event_sync("go")
        return sync_a(y)

    @flows
    def sync_v2(x: int) -> int:
        durably.wait_event_sync("go")
        return sync_a(x)

    journal = journal_of(sync_v1, 1)
    assert [e.kind for e in journal] == ["step", "event"]
    assert replay(sync_v1, journal, 1).ok
    assert replay(sync_v1, journal[:1], 1).ok
    d = replay(sync_v2, journal, 1).divergence
    assert d is not None and (d.seq, d.journal_name, d.code_kind) == (0, "sync_a", "event")


def test_a_missing_workflow_or_a_changed_signature_diverges() -> None:
    journal = journal_of(v1, 1)
    missing = replay(None, journal, 1).divergence
    assert missing is not None and missing.code_kind == "missing"
    assert "defines no workflow named 'flow'" in missing.message

    @flows
    async def takes_two(x: int, y: int) -> int:
        return await a(x + y)

    bad = replay(takes_two, journal, 1).divergence  # the call itself fails: a TypeError
    assert bad is not None and (bad.seq, bad.code_kind) == (0, "raise")
    assert "TypeError" in bad.message and "missing 1 required positional argument" in bad.message


def test_testing_replay_works_from_async_code_too() -> None:
    import durably.testing
    from durably.history import History

    journal = journal_of(v1, 1)
    record = WorkflowRecord(
        id="wf-1", name="flow", status=WorkflowStatus.RUNNING,
        input=app.codec.encode_call((1,), {}), created_at=0.0, updated_at=0.0,
    )  # fmt: skip
    doc = History(record, journal).to_dict()
    v1_app = durably.App("sqlite:///never-opened.db")
    v1_app.registry.add_workflow(v1)

    async def in_a_test() -> int:
        return len(durably.testing.replay(v1_app, doc).results)

    assert asyncio.run(in_a_test()) == 1


def test_a_child_not_finished_yet_ends_the_replay_and_a_changed_child_diverges() -> None:
    async def child_body(x: int) -> int:
        return await a(x)

    child = app.workflow(name="child")(child_body)
    renamed = app.workflow(name="renamed_child")(child_body)

    @flows
    async def parent(x: int) -> int:
        y = await a(x)
        return await durably.start_child(child, y).result()

    @flows
    async def parent_changed(x: int) -> int:
        y = await a(x)
        return await durably.start_child(renamed, y).result()

    journal = journal_of(parent, 1)
    assert [(e.kind, e.status) for e in journal] == [("step", "completed"), ("child", "waiting")]
    assert replay(parent, journal, 1).ok
    d = replay(parent_changed, journal, 1).divergence
    assert d is not None and (d.seq, d.journal_kind, d.code_kind) == (1, "child", "child")
    assert (d.journal_name, d.code_name) == ("child", "renamed_child")


def test_a_change_guarded_by_patched_replays() -> None:
    @flows
    async def guarded(x: int) -> int:
        y = await a(x)
        if durably.patched("double-first"):  # the journal went past here: the old path
            y = await b(y)
        y = await b(y)
        await durably.wait_event("go")
        if durably.patched("add-at-the-end"):  # new ground: the replay stops here
            y = await b(y)
        return await a(y)

    @flows
    async def unguarded(x: int) -> int:
        y = await a(x)
        y = await b(y)
        y = await b(y)
        await durably.wait_event("go")
        return await a(y)

    journal = journal_of(v1, 1)
    result = replay(guarded, journal, 1)
    assert result.ok and result.replayed == 3
    d = replay(unguarded, journal, 1).divergence
    assert d is not None and (d.seq, d.journal_kind, d.code_name) == (2, "event", "b")
