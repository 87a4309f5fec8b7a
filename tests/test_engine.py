"""Pure replay-engine tests: synthetic journals, a fake runtime, no database."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from dataclasses import dataclass
from typing import Any

import pytest

import durably
from durably.engine.waits import Parked
from durably.errors import LeaseLostError, NonDeterminismError, StepTimeoutError
from durably.storage.base import JournalEntry, Park, WorkflowStatus
from tests.fakes import output, run_once, run_until_done

app = durably.App("sqlite:///never-opened.db")
calls: dict[str, int] = {}
lock = threading.Lock()


def bump(name: str) -> None:
    with lock:
        calls[name] = calls.get(name, 0) + 1


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@dataclass
class Money:
    account: str
    cents: int


@app.step()
async def add(a: int, b: int) -> int:
    bump("add")
    return a + b


@app.step()
def mul(a: int, b: int) -> int:
    bump("mul")
    return a * b


@app.step()
async def make_money(account: str, cents: int) -> Money:
    bump("make_money")
    return Money(account, cents)


@app.workflow()
async def chain(x: int) -> int:
    a = await add(x, 1)
    b = await durably.run(mul, a, 10)
    return await add(b, 5)


@app.workflow()
async def fan(x: int) -> list[int]:
    return list(await asyncio.gather(add(x, 1), durably.run(mul, x, 2), add(x, 3)))


@app.workflow()
def sync_fan(x: int) -> list[int]:
    futures = [durably.submit(add, x, 1), durably.submit(mul, x, 2)]
    return [f.result() for f in futures] + [mul(x, 3)]


@app.workflow()
async def money_flow(account: str) -> str:
    m = await make_money(account, 250)
    assert isinstance(m, Money)  # the step result is rebuilt from the return hint
    return f"{m.account}:{m.cents}"


def entry(seq: int, name: str, result: Any, kind: str = "step", epoch: int = 1) -> JournalEntry:
    return JournalEntry(
        "wf-1", seq, kind, name, "completed", json.dumps(result), None, 1, "old", epoch, 1.0, 2.0
    )


def test_fresh_run_records_each_step_in_order() -> None:
    outcome, rt, _ = run_once(chain, 4)
    assert outcome.status is WorkflowStatus.COMPLETED
    assert output(outcome) == (4 + 1) * 10 + 5
    entries = rt.entries()
    assert [(e.seq, e.name, json.loads(e.result or "")) for e in entries] == [
        (0, "add", 5),
        (1, "mul", 50),
        (2, "add", 55),
    ]
    assert all(e.owner == "owner-1" and e.epoch == 1 and e.attempts == 1 for e in entries)
    assert calls == {"add": 2, "mul": 1}


def test_full_replay_runs_no_step_and_returns_same_result() -> None:
    journal = [entry(0, "add", 5), entry(1, "mul", 50), entry(2, "add", 55)]
    outcome, rt, _ = run_once(chain, 4, journal=journal, epoch=2)
    assert output(outcome) == 55
    assert calls == {}
    assert rt.entries() == []


def test_partial_replay_runs_only_the_missing_steps() -> None:
    outcome, rt, _ = run_once(chain, 4, journal=[entry(0, "add", 5)], epoch=2)
    assert output(outcome) == 55
    assert calls == {"mul": 1, "add": 1}
    assert [(e.seq, e.epoch) for e in rt.entries()] == [(1, 2), (2, 2)]


def test_replay_uses_recorded_value_not_a_fresh_one() -> None:
    # the recorded result wins even if re-running the step would give something else
    outcome, _, _ = run_once(chain, 4, journal=[entry(0, "add", 100)], epoch=2)
    assert output(outcome) == 100 * 10 + 5


def test_gather_takes_sequence_numbers_in_call_order() -> None:
    outcome, rt, _ = run_once(fan, 3)
    assert output(outcome) == [4, 6, 6]
    assert sorted((e.seq, e.name) for e in rt.entries()) == [(0, "add"), (1, "mul"), (2, "add")]
    # replaying a journal where only the middle branch finished runs the other two
    outcome, rt, _ = run_once(fan, 3, journal=[entry(1, "mul", 6)], epoch=2)
    assert output(outcome) == [4, 6, 6]
    # main-line calls keep their index as seq
    assert sorted((e.key, e.seq) for e in rt.entries()) == [("0", 0), ("2", 2)]
    assert calls == {"add": 4, "mul": 1}  # 2 + 2 adds; mul only on the first run


def test_sync_workflow_futures_and_direct_calls() -> None:
    outcome, rt, _ = run_once(sync_fan, 5)
    assert output(outcome) == [6, 10, 15]
    assert sorted((e.seq, e.name) for e in rt.entries()) == [(0, "add"), (1, "mul"), (2, "mul")]
    calls.clear()
    replay = [entry(0, "add", 6), entry(1, "mul", 10), entry(2, "mul", 15)]
    outcome, rt, _ = run_once(sync_fan, 5, journal=replay, epoch=2)
    assert output(outcome) == [6, 10, 15]
    assert calls == {} and rt.entries() == []


def test_results_are_rebuilt_from_type_hints_on_first_run_and_replay() -> None:
    outcome, rt, _ = run_once(money_flow, "alice")
    assert output(outcome) == "alice:250"
    recorded = rt.entries()
    outcome, _, _ = run_once(money_flow, "alice", journal=recorded, epoch=2)
    assert output(outcome) == "alice:250"
    assert calls == {"make_money": 1}


def test_divergent_step_name_stops_with_non_determinism_and_writes_nothing() -> None:
    journal = [entry(0, "mul", 5)]  # the code now calls add at seq 0
    outcome, rt, ctx = run_once(chain, 4, journal=journal, epoch=2)
    assert outcome.status is WorkflowStatus.NEEDS_ATTENTION
    assert isinstance(ctx.halted, NonDeterminismError)
    error = json.loads(outcome.error or "")
    assert error["code"] == "non_determinism"
    assert "'mul'" in error["message"] and "'add'" in error["message"]
    assert rt.written == [] and calls == {}


def test_divergence_cannot_be_swallowed_by_user_code() -> None:
    @app.workflow(name="swallower")
    async def swallower() -> str:
        try:
            await add(1, 1)
        except Exception:
            pass
        return "finished anyway"

    outcome, rt, _ = run_once(swallower, journal=[entry(0, "mul", 1)], epoch=2)
    assert outcome.status is WorkflowStatus.NEEDS_ATTENTION
    assert rt.written == []


def test_journal_longer_than_the_code_is_non_determinism() -> None:
    journal = [entry(0, "add", 5), entry(1, "mul", 50), entry(2, "add", 55), entry(3, "add", 1)]
    outcome, _, _ = run_once(chain, 4, journal=journal, epoch=2)
    assert outcome.status is WorkflowStatus.NEEDS_ATTENTION
    assert "seq 3" in json.loads(outcome.error or "")["message"]


def test_deterministic_values_replay_identically() -> None:
    @app.workflow(name="values")
    async def values() -> list[Any]:
        return [str(durably.uuid4()), durably.random(), durably.now().isoformat()]

    first, rt, _ = run_once(values)
    recorded = rt.entries()
    assert [e.kind for e in recorded] == ["uuid", "random", "now"]
    second, rt2, _ = run_once(values, journal=recorded, epoch=2)
    assert output(second) == output(first)
    assert rt2.entries() == []
    # without a journal, uuid and random still derive from (workflow id, seq)
    third, _, _ = run_once(values)
    assert output(third)[:2] == output(first)[:2]
    other, _, _ = run_once(values, workflow_id="wf-2")
    assert output(other)[0] != output(first)[0]


flaky_failures: dict[str, int] = {}


@app.step(retry=durably.Retry(attempts=4, initial=0.5, backoff=3.0, max_interval=2.0))
async def flaky(key: str, failures: int) -> str:
    n = flaky_failures.get(key, 0)
    if n < failures:
        flaky_failures[key] = n + 1
        raise ConnectionError(f"attempt {n + 1} failed")
    return "ok"


@app.workflow()
async def uses_flaky(key: str, failures: int) -> str:
    return await flaky(key, failures)


def test_retries_follow_backoff_and_record_every_attempt() -> None:
    outcome, runtimes, journal = run_until_done(uses_flaky, "k1", 3)
    assert output(outcome) == "ok"
    # every backoff is a durable timer: each failed attempt parks the workflow until its retry
    parks = [op for rt in runtimes for op in rt.written if isinstance(op, Park)]
    waits = [park.wake_at - rt.clock for rt, park in zip(runtimes, parks, strict=False)]
    assert waits == [0.5, 1.5, 2.0]  # 0.5, 0.5*3, capped at max_interval
    attempts = [a for rt in runtimes for a in rt.attempts()]
    assert [a.attempt.attempt for a in attempts] == [1, 2, 3]
    assert "attempt 2 failed" in json.loads(attempts[1].attempt.error)["message"]
    # each resumed execution ran only the next attempt: the count was in the journal
    retrying = [e for rt in runtimes for e in rt.entries() if e.status == "waiting"]
    assert [e.attempts for e in retrying] == [1, 2, 3]
    assert [json.loads(e.result or "")["retry_at"] for e in retrying] == [
        park.wake_at for park in parks
    ]
    (e,) = journal.values()
    assert e.status == "completed" and e.attempts == 4
    assert e.started_at == retrying[0].started_at  # the first attempt's start


def test_exhausted_retries_fail_the_workflow_with_error_and_traceback() -> None:
    outcome, runtimes, journal = run_until_done(uses_flaky, "k2", 10)
    assert outcome.status is WorkflowStatus.FAILED
    error = json.loads(outcome.error or "")
    assert error["type"] == "durably.errors.StepFailed"
    assert error["attempts"] == 4 and error["cause_type"] == "ConnectionError"
    assert "Traceback" in error["traceback"]
    (e,) = journal.values()
    assert e.status == "failed" and e.attempts == 4
    assert sum(len(rt.attempts()) for rt in runtimes) == 4 and len(runtimes) == 4


def test_a_step_between_attempts_replays_without_running_the_recorded_ones() -> None:
    flaky_failures.clear()
    due = JournalEntry(
        "wf-1", 0, "step", "flaky", "waiting", json.dumps({"retry_at": 1_500.0}),
        json.dumps({"type": "ConnectionError", "message": "attempt 2 failed"}), 2, "old", 1,
        900.0, 950.0, "0",
    )  # fmt: skip
    # not due yet (the fake clock says 1000): parks again until then, running nothing
    outcome, rt, _ = run_once(uses_flaky, "k3", 0, journal=[due], epoch=2)
    assert isinstance(outcome.reason, Parked) and rt.attempts() == [] and "k3" not in flaky_failures
    (park,) = [op for op in rt.written if isinstance(op, Park)]
    assert park.wake_at == 1_500.0 and park.event_names == [] == park.child_ids
    # due: the next attempt is attempt 3, which succeeds

    def setup(rt: Any) -> None:
        rt.clock = 1_600.0

    outcome, rt, _ = run_once(uses_flaky, "k3", 0, journal=[due], setup=setup, epoch=3)
    assert output(outcome) == "ok"
    (done,) = rt.entries()
    assert done.status == "completed" and done.attempts == 3 and done.started_at == 900.0
    # a policy that now allows no more attempts fails the step with the recorded error
    spent = dataclasses.replace(due, attempts=4)
    outcome, rt, _ = run_once(uses_flaky, "k3", 0, journal=[spent], setup=setup, epoch=3)
    assert outcome.status is WorkflowStatus.FAILED and rt.attempts() == []
    (failed,) = rt.entries()
    assert failed.status == "failed" and failed.attempts == 4
    assert "attempt 2 failed" in json.loads(failed.error or "")["message"]


@app.step(retry=durably.Retry(attempts=5, initial=0.1, non_retryable=(ValueError,)))
async def debit(account: str, cents: int) -> int:
    bump("debit")
    if cents < 0:
        raise ValueError("negative amount")
    return cents


@app.step()
async def refund(account: str) -> str:
    bump("refund")
    return f"refunded {account}"


@app.workflow()
async def compensating(cents: int) -> str:
    try:
        await debit("alice", cents)
    except durably.StepFailed as exc:
        assert exc.error_type == "ValueError" and exc.attempts == 1
        return await refund("alice")
    return "debited"


def test_non_retryable_error_raises_step_failed_that_workflow_can_catch() -> None:
    outcome, rt, _ = run_once(compensating, -5)
    assert output(outcome) == "refunded alice"
    assert [op for op in rt.written if isinstance(op, Park)] == []
    assert calls == {"debit": 1, "refund": 1}
    failed, done = rt.entries()
    assert failed.status == "failed" and done.status == "completed"
    # replaying the failed entry raises StepFailed again without running debit
    calls.clear()
    outcome, _, _ = run_once(compensating, -5, journal=[failed], epoch=2)
    assert output(outcome) == "refunded alice"
    assert calls == {"refund": 1}


@app.step(retry=durably.Retry(attempts=2, initial=0.0), timeout=0.05)
async def too_slow() -> str:
    await asyncio.sleep(5)
    return "never"


@app.workflow()
async def times_out() -> str:
    return await too_slow()


@app.step()
async def tag(label: str, delay: float) -> str:
    await asyncio.sleep(delay)
    return label


@app.workflow()
async def two_chains() -> list[str]:
    async def chain(name: str, delay: float) -> str:
        first = await tag(f"{name}1", delay)
        second = await tag(f"{name}2", 0)
        return first + second

    return list(await asyncio.gather(chain("a", 0.05), chain("b", 0)))


def test_concurrent_branches_with_several_calls_replay_whatever_the_first_order() -> None:
    outcome, rt, _ = run_once(two_chains)
    assert output(outcome) == ["a1a2", "b1b2"]
    recorded = rt.entries()
    # b finished its first call first, so it made its second call before a did
    assert [e.key for e in sorted(recorded, key=lambda e: e.seq)] == [
        "b0/0", "b1/0", "b1/1", "b0/1",
    ]  # fmt: skip
    # replaying (where every call returns at once) finds each call's own entry
    outcome, rt2, _ = run_once(two_chains, journal=recorded, epoch=2)
    assert output(outcome) == ["a1a2", "b1b2"] and rt2.written == []
    # and so does a replay of a partial journal, where b's second call never finished
    partial = [e for e in recorded if e.key != "b1/1"]
    outcome, rt3, _ = run_once(two_chains, journal=partial, epoch=2)
    assert output(outcome) == ["a1a2", "b1b2"]
    assert [e.key for e in rt3.entries()] == ["b1/1"]


def test_step_timeout_counts_as_a_failed_attempt() -> None:
    outcome, rt, _ = run_once(times_out)
    assert outcome.status is WorkflowStatus.FAILED
    errors = [json.loads(a.attempt.error) for a in rt.attempts()]
    assert [e["type"] for e in errors] == [
        "durably.errors.StepTimeoutError",
        "durably.errors.StepTimeoutError",
    ]
    assert StepTimeoutError.code == errors[0]["code"]


def test_rejected_write_drops_the_execution_without_finishing() -> None:
    def lose_lease(rt: Any) -> None:
        rt.fence_ok = False

    outcome, _, ctx = run_once(chain, 1, setup=lose_lease)
    assert outcome.status is None
    assert isinstance(ctx.halted, LeaseLostError)
    assert calls == {"add": 1}  # it stopped at the first rejected write


def test_uncaught_exception_in_workflow_code_fails_it() -> None:
    @app.workflow(name="broken")
    def broken() -> None:
        raise KeyError("missing")

    outcome, _, _ = run_once(broken)
    assert outcome.status is WorkflowStatus.FAILED
    error = json.loads(outcome.error or "")
    assert error["type"] == "KeyError" and "broken" in error["traceback"]


def test_unserializable_workflow_result_fails_it_clearly() -> None:
    @app.workflow(name="returns_object")
    async def returns_object() -> object:
        return object()

    outcome, _, _ = run_once(returns_object)
    assert outcome.status is WorkflowStatus.FAILED
    error = json.loads(outcome.error or "")
    assert error["code"] == "unserializable" and "object" in error["message"]


def test_steps_outside_workflows_are_plain_calls() -> None:
    assert mul(3, 4) == 12
    assert asyncio.run(add(1, 2)) == 3
    with pytest.raises(durably.NotInWorkflowError):
        durably.now()
    with pytest.raises(durably.NotInWorkflowError):
        durably.step_context()


events: list[str] = []


@app.step()
async def traced(i: int) -> int:
    events.append(f"run {i}")
    return i


@app.workflow()
async def traced_chain() -> int:
    total = 0
    for i in range(3):
        total += await traced(i)
    return total


def test_each_step_is_committed_before_the_workflow_moves_past_it() -> None:
    events.clear()

    def slow_commits(rt: Any) -> None:
        def commit(op: Any) -> asyncio.Future[bool]:
            fut: asyncio.Future[bool] = rt.loop.create_future()

            def done() -> None:
                events.append(f"durable {op.entry.seq}")
                fut.set_result(True)

            rt.loop.call_later(0.02, done)
            return fut

        rt.commit = commit

    outcome, _, _ = run_once(traced_chain, setup=slow_commits)
    assert output(outcome) == 3
    assert events == ["run 0", "durable 0", "run 1", "durable 1", "run 2", "durable 2"]


@app.workflow()
async def forgets_an_await(x: int) -> int:
    add(x, 1)  # type: ignore[unused-coroutine]  # the bug under test: no await
    return await add(x, 2)


@app.workflow()
async def schedules_step_calls(x: int) -> list[int]:
    gathered = await asyncio.gather(add(x, 1), add(x, 2))
    task = asyncio.create_task(add(x, 3))
    async with asyncio.TaskGroup() as tg:
        grouped = tg.create_task(add(x, 4))
    return [*gathered, await task, grouped.result()]


def test_a_forgotten_await_on_a_step_names_the_step_and_the_workflow() -> None:
    with pytest.warns(RuntimeWarning) as record:
        outcome, _, _ = run_once(forgets_an_await, 1, workflow_id="wf-forgot")
    assert output(outcome) == 3 and calls == {"add": 1}  # the forgotten call never ran
    messages = [str(w.message) for w in record]
    assert messages == [
        f"step {add.name!r} (seq 0) of workflow 'wf-forgot' ({forgets_an_await.name}) was called "
        f"but never awaited, so it did not run: write `await {add.name}(...)` (or pass the call "
        "to asyncio.gather / create_task)"
    ]  # and not Python's own "coroutine ... was never awaited"


def test_step_calls_are_coroutines_for_gather_tasks_and_task_groups() -> None:
    outcome, rt, _ = run_once(schedules_step_calls, 10)
    assert output(outcome) == [11, 12, 13, 14] and calls == {"add": 4}
    assert len(rt.entries()) == 4
    # replayed from its journal: the same results, nothing runs again
    calls.clear()
    replayed, _, _ = run_once(schedules_step_calls, 10, journal=rt.entries(), epoch=2)
    assert output(replayed) == [11, 12, 13, 14] and calls == {}
