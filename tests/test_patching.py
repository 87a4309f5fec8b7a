"""Changing workflow code under workflows in flight: durably.patched(), deprecate_patch(), and
what a non-determinism error says. Real Apps on SQLite for the life cycles (v1 code parks a
workflow, v2 code resumes it on a new App), the fake runtime for the replay rules."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import durably
from durably import WorkflowStatus
from durably.errors import NonDeterminismError
from durably.storage.base import JournalEntry
from tests.fakes import output, run_once
from tests.test_long_lived import FAST, Calls, wait_for

PATCH = "add-fraud-check"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'patching.db'}"


@pytest.fixture
def ran() -> Calls:
    return Calls()


def new_app(db: str, ran: Calls) -> durably.App:
    """An App with the steps every version of the order workflow calls."""
    app = durably.App(db, worker_options=FAST)

    @app.step(name="reserve")
    async def reserve() -> str:
        ran.add("reserve")
        return "reserved"

    @app.step(name="fraud_check")
    async def fraud_check() -> str:
        ran.add("fraud_check")
        return "checked"

    @app.step(name="charge")
    async def charge() -> str:
        ran.add("charge")
        return "charged"

    return app


def step(app: durably.App, name: str) -> Any:
    return app.registry.steps[name]


def park(app: durably.App, workflow: Any, workflow_id: str) -> None:
    """Start ``workflow`` on ``app`` and stop the app once it waits for the event "go"."""
    with app:
        h = app.start(workflow, id=workflow_id)
        wait_for(lambda: any(e.kind == "event" for e in h.history()))
    app.close()


def finish(app: durably.App, workflow_id: str) -> Any:
    """Resume ``workflow_id`` on ``app`` (a new worker on the same database) and finish it."""
    with app:
        app.send_event(workflow_id, "go")
        return app.handle(workflow_id).result(timeout=30)


def run_new(app: durably.App, workflow_id: str, name: str = "order") -> Any:
    """Start workflow ``name`` as ``workflow_id`` on ``app``, send it "go" and return its result."""
    with app:
        app.start(name, id=workflow_id)
        app.send_event(workflow_id, "go")
        return app.handle(workflow_id).result(timeout=30)


def calls(app: durably.App, workflow_id: str) -> list[tuple[str, str]]:
    return [(e.kind, e.name) for e in app.handle(workflow_id).history()]


def order_v1(app: durably.App) -> Any:
    reserve, charge = step(app, "reserve"), step(app, "charge")

    @app.workflow(name="order")
    async def order() -> str:
        await reserve()
        await durably.wait_event("go")
        await charge()
        return "old path"

    return order


def order_v2(app: durably.App) -> Any:
    reserve, fraud_check, charge = (step(app, n) for n in ("reserve", "fraud_check", "charge"))

    @app.workflow(name="order")
    async def order() -> str:
        await reserve()
        checked = durably.patched(PATCH)
        if checked:
            await fraud_check()
        assert durably.patched(PATCH) is checked  # asked again: the same answer
        await durably.wait_event("go")
        await charge()
        return "new path" if checked else "old path"

    return order


# -- real apps: new workflows, old journals, crashes ------------------------------------------


def test_a_new_workflow_takes_the_new_path_and_journals_the_marker(db: str, ran: Calls) -> None:
    app = new_app(db, ran)
    order_v2(app)
    assert run_new(app, "o-new") == "new path"
    assert calls(app, "o-new") == [
        ("step", "reserve"), ("patch", PATCH), ("step", "fraud_check"), ("event", "go"),
        ("step", "charge"),
    ]  # fmt: skip
    app.close()


def test_a_workflow_that_went_past_the_change_keeps_the_old_path(db: str, ran: Calls) -> None:
    v1 = new_app(db, ran)
    park(v1, order_v1(v1), "o-old")  # journal: reserve, event wait: past the patch's point
    v2 = new_app(db, ran)
    order_v2(v2)
    assert finish(v2, "o-old") == "old path"
    assert calls(v2, "o-old") == [("step", "reserve"), ("event", "go"), ("step", "charge")]
    assert ran.count("fraud_check") == 0
    v2.close()


def test_the_new_path_is_taken_where_an_old_journal_ends(db: str, ran: Calls) -> None:
    """The change comes after the point where the v1 workflow waits: it reaches it for the first
    time under v2 code, so it takes the new path, and the marker is journaled there."""
    v1 = new_app(db, ran)
    park(v1, order_v1(v1), "o-late")
    v2 = new_app(db, ran)
    reserve, fraud_check, charge = (step(v2, n) for n in ("reserve", "fraud_check", "charge"))

    @v2.workflow(name="order")
    async def order() -> str:
        await reserve()
        await durably.wait_event("go")
        if durably.patched(PATCH):
            await fraud_check()
        await charge()
        return "done"

    assert finish(v2, "o-late") == "done"
    assert calls(v2, "o-late") == [
        ("step", "reserve"), ("event", "go"), ("patch", PATCH), ("step", "fraud_check"),
        ("step", "charge"),
    ]  # fmt: skip
    v2.close()


def test_the_marker_replays_as_true_after_the_worker_stops(db: str, ran: Calls) -> None:
    first = new_app(db, ran)
    park(first, order_v2(first), "o-crash")  # the marker and fraud_check are journaled
    assert sorted(ran.log) == ["fraud_check", "reserve"]
    second = new_app(db, ran)
    order_v2(second)
    assert finish(second, "o-crash") == "new path"
    assert sorted(ran.log) == ["charge", "fraud_check", "reserve"]  # nothing ran twice
    assert calls(second, "o-crash").count(("patch", PATCH)) == 1
    second.close()


def test_concurrent_branches_each_decide_and_replay(db: str, ran: Calls) -> None:
    def define(app: durably.App) -> Any:
        fraud_check = step(app, "fraud_check")

        async def branch(tag: str) -> str:
            if durably.patched(PATCH):
                await fraud_check()
                return f"{tag}:new"
            return f"{tag}:old"

        @app.workflow(name="fan")
        async def fan() -> list[str]:
            results = await asyncio.gather(branch("a"), branch("b"))
            await durably.wait_event("go")
            return list(results)

        return fan

    first = new_app(db, ran)
    park(first, define(first), "fan-1")
    second = new_app(db, ran)
    define(second)
    assert finish(second, "fan-1") == ["a:new", "b:new"]
    assert ran.log == ["fraud_check", "fraud_check"]
    assert calls(second, "fan-1").count(("patch", PATCH)) == 2
    second.close()


def test_sync_workflows_old_journal_and_new_start(db: str, ran: Calls) -> None:
    v1 = new_app(db, ran)
    reserve, charge = step(v1, "reserve"), step(v1, "charge")

    @v1.workflow(name="sync_order")
    def sync_v1() -> str:
        durably.submit(reserve).result()
        durably.wait_event_sync("go")
        durably.submit(charge).result()
        return "old path"

    park(v1, sync_v1, "s-old")
    v2 = new_app(db, ran)
    reserve, fraud_check, charge = (step(v2, n) for n in ("reserve", "fraud_check", "charge"))

    @v2.workflow(name="sync_order")
    def sync_v2() -> str:
        durably.submit(reserve).result()
        checked = durably.patched(PATCH)
        if checked:
            durably.submit(fraud_check).result()
        durably.wait_event_sync("go")
        durably.submit(charge).result()
        return "new path" if checked else "old path"

    assert finish(v2, "s-old") == "old path"
    assert run_new(v2, "s-new", "sync_order") == "new path"
    assert ("patch", PATCH) in calls(v2, "s-new")
    assert ("patch", PATCH) not in calls(v2, "s-old")
    v2.close()


def order_v3(app: durably.App) -> Any:
    """The old path is gone: the fraud check always runs."""
    reserve, fraud_check, charge = (step(app, n) for n in ("reserve", "fraud_check", "charge"))

    @app.workflow(name="order")
    async def order() -> str:
        await reserve()
        durably.deprecate_patch(PATCH)
        await fraud_check()
        await durably.wait_event("go")
        await charge()
        return "v3"

    return order


def test_deprecate_patch_replays_journals_with_the_marker(db: str, ran: Calls) -> None:
    v2 = new_app(db, ran)
    park(v2, order_v2(v2), "o-marked")
    v3 = new_app(db, ran)
    order_v3(v3)
    assert finish(v3, "o-marked") == "v3"
    assert sorted(ran.log) == ["charge", "fraud_check", "reserve"]
    assert calls(v3, "o-marked").count(("patch", PATCH)) == 1
    v3.close()


def test_deprecate_patch_records_nothing_in_new_workflows(db: str, ran: Calls) -> None:
    v3 = new_app(db, ran)
    order_v3(v3)
    assert run_new(v3, "o-v3") == "v3"
    assert calls(v3, "o-v3") == [
        ("step", "reserve"), ("step", "fraud_check"), ("event", "go"), ("step", "charge"),
    ]  # fmt: skip
    v3.close()


def test_divergence_names_seq_both_calls_and_the_source_line(db: str, ran: Calls) -> None:
    v1 = new_app(db, ran)
    park(v1, order_v1(v1), "o-div")
    v2 = new_app(db, ran)
    reserve, fraud_check = step(v2, "reserve"), step(v2, "fraud_check")

    @v2.workflow(name="order")
    async def order() -> str:
        await reserve()
        await fraud_check()  # unguarded: diverges
        return "never"

    line = next(
        n
        for n, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if text.endswith("# unguarded: diverges")
    )
    with v2, pytest.raises(durably.WorkflowFailedError) as info:
        v2.handle("o-div").result(timeout=30)
    assert info.value.status == WorkflowStatus.NEEDS_ATTENTION.value
    message = info.value.error["message"]
    assert "seq 1 (call 1)" in message
    assert "the journal recorded event 'go' but the code now calls step 'fraud_check'" in message
    assert f"{__file__}:{line}" in message
    assert "durably.patched(" in message
    assert ran.count("fraud_check") == 0
    v2.close()


# -- the replay rules, on synthetic journals ---------------------------------------------------

app = durably.App("sqlite:///never-opened.db")


@app.step()
async def add(a: int, b: int) -> int:
    return a + b


def entry(seq: int, kind: str, name: str, result: Any, key: str | None = None) -> JournalEntry:
    return JournalEntry(
        "wf-1", seq, kind, name, "completed", json.dumps(result), None, 1, "old", 1, 1.0, 2.0,
        key or str(seq),
    )  # fmt: skip


@app.workflow()
async def guarded() -> list[Any]:
    first = durably.patched(PATCH)
    if first:
        await add(1, 1)
    other = durably.patched("other-change")
    total = await add(2, 2)
    return [first, other, durably.patched(PATCH), total]


def test_new_execution_records_each_marker_once() -> None:
    outcome, rt, _ = run_once(guarded)
    assert output(outcome) == [True, True, True, 4]
    assert [(e.kind, e.name, e.key) for e in rt.entries()] == [
        ("patch", PATCH, "0"), ("step", "add", "1"), ("patch", "other-change", "2"),
        ("step", "add", "3"),
    ]  # fmt: skip
    replayed, rt2, _ = run_once(guarded, journal=rt.entries(), epoch=2)
    assert output(replayed) == [True, True, True, 4] and rt2.written == []


def test_a_journal_without_the_marker_gives_false_and_consumes_nothing() -> None:
    # recorded by code with neither change: one step, then it ended
    journal = [entry(0, "step", "add", 4)]
    outcome, rt, ctx = run_once(guarded, journal=journal, epoch=2)
    assert output(outcome) == [False, False, False, 4]  # the add at 0 is past both points
    assert rt.written == [] and not isinstance(ctx.halted, NonDeterminismError)


def test_a_different_marker_at_this_point_is_not_this_change() -> None:
    journal = [entry(0, "patch", "other-change", True), entry(1, "step", "add", 4)]
    outcome, rt, _ = run_once(guarded, journal=journal, epoch=2)
    assert output(outcome) == [False, True, False, 4]
    assert rt.written == []


@app.workflow()
async def fan_then_guard() -> list[Any]:
    await add(0, 0)
    checked = durably.patched(PATCH)

    async def double(n: int) -> int:
        return await add(n, n)

    results = await asyncio.gather(double(1), double(2))
    return [checked, *results]


def test_tasks_created_after_the_point_count_as_past_it() -> None:
    """The main line has no entry after seq 0, but the tasks it created later do: the journal
    went past the patch's point, so the answer is False."""
    journal = [
        entry(0, "step", "add", 0),
        entry(1, "step", "add", 2, key="b0/0"),
        entry(2, "step", "add", 4, key="b1/0"),
    ]
    outcome, rt, _ = run_once(fan_then_guard, journal=journal, epoch=2)
    assert output(outcome) == [False, 2, 4]
    assert rt.written == []


@app.workflow()
async def two_branches() -> list[Any]:
    async def branch(n: int) -> list[Any]:
        checked = durably.patched(PATCH)
        return [checked, await add(n, n)]

    return list(await asyncio.gather(branch(1), branch(2)))


def test_concurrent_branches_decide_on_their_own_journal() -> None:
    outcome, rt, _ = run_once(two_branches)
    assert output(outcome) == [[True, 2], [True, 4]]
    markers = sorted(e.key or "" for e in rt.entries() if e.kind == "patch")
    assert markers == ["b0/0", "b1/0"]
    # an old journal where branch b0 went past the point and b1 had not started its calls
    old = [entry(0, "step", "add", 2, key="b0/0")]
    outcome, rt, _ = run_once(two_branches, journal=old, epoch=2)
    assert output(outcome) == [[False, 2], [True, 4]]
    assert [(e.kind, e.key) for e in rt.entries()] == [("patch", "b1/0"), ("step", "b1/1")]


@app.workflow()
async def deprecated() -> int:
    durably.deprecate_patch(PATCH)
    return await add(3, 3)


def test_deprecate_patch_with_and_without_the_marker() -> None:
    marked = [entry(0, "patch", PATCH, True), entry(1, "step", "add", 6)]
    outcome, rt, _ = run_once(deprecated, journal=marked, epoch=2)
    assert output(outcome) == 6 and rt.written == []
    outcome, rt, _ = run_once(deprecated, journal=[entry(0, "step", "add", 6)], epoch=2)
    assert output(outcome) == 6 and rt.written == []
    outcome, rt, _ = run_once(deprecated)
    assert output(outcome) == 6
    assert [e.kind for e in rt.entries()] == ["step"]


def test_divergence_in_a_branch_names_its_key_and_the_patch_advice() -> None:
    journal = [entry(0, "now", "now", 1.0, key="b1/0")]
    outcome, _, ctx = run_once(two_branches, journal=journal, epoch=2)
    assert outcome.status is WorkflowStatus.NEEDS_ATTENTION
    error = ctx.halted
    assert isinstance(error, NonDeterminismError)
    assert (error.seq, error.key) == (0, "b1/0")
    assert error.recorded == ("now", "now") and error.called == ("step", "add")
    assert error.location is not None and error.location.startswith(f"{__file__}:")
    assert "durably.patched(" in error.message


def test_a_removed_call_names_its_key_and_the_patch_advice() -> None:
    journal = [entry(0, "step", "add", 6), entry(1, "step", "add", 1)]
    outcome, _, ctx = run_once(deprecated, journal=journal, epoch=2)
    assert outcome.status is WorkflowStatus.NEEDS_ATTENTION
    assert isinstance(ctx.halted, NonDeterminismError)
    assert "seq 1 (call 1)" in ctx.halted.message and "durably.patched(" in ctx.halted.message
