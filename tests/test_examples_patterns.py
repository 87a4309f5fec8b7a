"""The pattern examples in examples/patterns: their behaviour, and each main() as a user runs it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

import durably
from durably.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent
PATTERNS = ROOT / "examples" / "patterns"
START = datetime(2030, 1, 1, tzinfo=UTC)


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"patterns_{name}", PATTERNS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqlite_db(tmp_path: Path) -> str:
    """A SQLite file, for WorkflowEnvironment (its virtual clock is SQLite-based); the other
    tests run on each backend (``db_url``)."""
    return f"sqlite:///{tmp_path / 'patterns.db'}"


def steps(handle: durably.WorkflowHandle[object]) -> list[tuple[str, str, int]]:
    return [(e.name, e.status, e.attempts) for e in handle.history() if e.kind == "step"]


# -- task chaining ---------------------------------------------------------------------------------


def test_task_chaining_retries_the_flaky_step_and_compensates_the_failed_order(
    db_url: str,
) -> None:
    app = load("task_chaining").make_app(db_url)
    with app:
        ok = app.start("place_order", "order-1", 4200, "1 Main St", id="order-1")
        bad = app.start("place_order", "order-2", 990, "nowhere", id="order-2")
        assert ok.result(timeout=30) == "order-1: shipped, tracking-order-1"
        assert bad.result(timeout=30) == (
            "order-2: not shipped (carrier does not deliver to 'nowhere'); refunded and released"
        )
    assert steps(ok) == [
        ("reserve_stock", "completed", 3), ("charge", "completed", 1), ("ship", "completed", 1),
    ]  # fmt: skip
    # The compensations ran newest first, after the step that failed for good.
    assert steps(bad) == [
        ("reserve_stock", "completed", 3), ("charge", "completed", 1), ("ship", "failed", 3),
        ("refund", "completed", 1), ("release_stock", "completed", 1),
    ]  # fmt: skip
    flaky = ok.history()[0]
    assert [a["error"]["type"] for a in flaky.failed_attempts] == ["ConnectionError"] * 2
    app.close()


# -- fan-out / fan-in ------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 4])
def test_fan_out_fan_in_bounds_the_steps_in_flight_and_aggregates(db_url: str, limit: int) -> None:
    example = load("fan_out_fan_in")
    app = example.make_app(db_url)
    docs = example.DOCUMENTS
    with app:
        handle = app.start("word_count", docs, limit, id="count")
        assert handle.result(timeout=30) == {
            "documents": 12, "words": sum(100 + i for i in range(12)),
        }  # fmt: skip
    assert [e.name for e in handle.history()] == ["count_words"] * 12
    assert example.peak_parallelism(app, "count") == limit
    app.close()


def test_fan_out_replays_a_partial_journal_deterministically(db_url: str) -> None:
    app = load("fan_out_fan_in").make_app(db_url)
    with app:
        first = app.start("word_count", [f"doc-{i}" for i in range(9)], 3, id="count")
        expected = first.result(timeout=30)
        # A fork keeps seqs 0-4 and replays them; the semaphore hands out the same seqs again.
        fork = app.fork("count", from_step=5, new_id="count-fork")
        assert fork.result(timeout=30) == expected
    copied, rerun = fork.history()[:5], fork.history()[5:]
    assert [e.result for e in copied + rerun] == [e.result for e in first.history()]
    assert [e.started_at for e in copied] == [e.started_at for e in first.history()[:5]]
    assert min(e.started_at for e in rerun) > max(e.finished_at for e in first.history())
    app.close()


# -- async API -------------------------------------------------------------------------------------


def test_async_api_client_gets_an_id_at_once_and_polls_to_the_result(db_url: str) -> None:
    example = load("async_api")
    worker, client = example.make_app(db_url), example.make_app(db_url)
    with worker:  # another App on the same database, as another process would be
        started = time.monotonic()
        job_id = example.submit(client, "q3", 3)
        assert time.monotonic() - started < 1.0  # far less than the job's 0.6 s
        seen = []
        status, progress = example.poll(client, job_id)
        while status in ("pending", "running"):
            seen.append(progress)
            time.sleep(0.02)
            status, progress = example.poll(client, job_id)
        assert status == "completed"
        assert progress == "3/3 pages"
        assert client.handle(job_id).result() == "q3: 3 pages, 126 words"
    assert "1/3 pages" in seen or "2/3 pages" in seen  # progress was visible while it ran
    worker.close()
    client.close()


# -- monitor ---------------------------------------------------------------------------------------


def test_monitor_polls_for_hours_of_virtual_time_in_a_chain_of_short_runs(tmp_path: Path) -> None:
    app = load("monitor").make_app(sqlite_db(tmp_path))
    with WorkflowEnvironment(app, start=START) as env:
        wall = time.monotonic()
        green = app.start("watch_build", "build-42", START + timedelta(hours=6), id="build-42")
        assert green.result(timeout=30) == "build-42 is green (check 9)"
        assert env.now() - START == timedelta(minutes=80)
        stuck = app.start("watch_build", "build-43", env.now() + timedelta(hours=6), id="b-43")
        assert stuck.result(timeout=30) == "build-43 gave up at the deadline (check 37)"
        assert env.now() - START == timedelta(minutes=80, hours=6)
        assert time.monotonic() - wall < 20
    runs = stuck.runs()
    assert [r.run for r in runs] == list(range(1, 37))
    assert [r.input["args"][2:] for r in runs] == [[]] + [[n] for n in range(2, 37)]
    assert {r.status.value for r in runs} == {"continued_as_new"}
    assert len(green.runs()) == 8
    assert len(stuck.history()) == 2 + 1  # only the last run's journal: state, check, now
    assert stuck.state("checks") == 37
    app.close()


# -- human approval --------------------------------------------------------------------------------


def test_human_approval_approved_escalated_and_expired(tmp_path: Path) -> None:
    example = load("human_approval")
    app = example.make_app(sqlite_db(tmp_path))
    with WorkflowEnvironment(app, start=START, auto_skip=False) as env:
        quick = app.start("approve_expense", "e-1", "ada", "grace", id="e-1")
        app.send_event("e-1", "approved", "ada")
        assert quick.result(timeout=30) == "e-1: approved by ada after 0 days"

        late = app.start("approve_expense", "e-2", "ada", "grace", id="e-2")
        env.wait_until_waiting(late)
        env.advance(timedelta(days=6, hours=23))  # not yet a week: still waiting for ada
        time.sleep(0.1)
        assert late.state("escalated_to") is None
        env.advance(timedelta(hours=1))
        env.wait_until_waiting(late)
        assert late.state("escalated_to") == "grace"
        app.send_event("e-2", "approved", "grace")
        assert late.result(timeout=30) == "e-2: approved by grace after 7 days"

        never = app.start("approve_expense", "e-3", "ada", "grace", id="e-3")
        for days in (7, 3):
            env.wait_until_waiting(never)
            env.advance(timedelta(days=days))
        assert never.result(timeout=30) == "e-3: rejected, nobody approved it in 10 days"
    assert quick.state("escalated_to") is None
    assert [e.result for e in late.history() if e.name == "notify"] == [
        "asked ada to approve e-2", "asked grace to approve e-2",
    ]  # fmt: skip
    app.close()


def test_human_approval_a_rejection_and_an_answer_after_the_escalation(tmp_path: Path) -> None:
    app = load("human_approval").make_app(sqlite_db(tmp_path))
    with WorkflowEnvironment(app, start=START, auto_skip=False) as env:
        no = app.start("approve_expense", "e-4", "ada", "grace", id="e-4")
        env.wait_until_waiting(no)
        env.advance(timedelta(days=1))
        app.send_event("e-4", "rejected", "ada")
        assert no.result(timeout=30) == "e-4: rejected by ada after 1 days"
        # ada's late answer, after the escalation timer won: the manager's wait takes it
        late = app.start("approve_expense", "e-5", "ada", "grace", id="e-5")
        env.wait_until_waiting(late)
        env.advance(timedelta(days=7))
        env.wait_until_waiting(late)
        assert late.state("escalated_to") == "grace"
        app.send_event("e-5", "approved", "ada")
        assert late.result(timeout=30) == "e-5: approved by ada after 7 days"
    kinds = [(e.kind, e.status) for e in late.history() if e.kind == "any"]
    assert kinds == [("any", "completed"), ("any", "completed")]
    app.close()


# -- first of several replies ----------------------------------------------------------------------


def test_first_reply_takes_the_first_quote_and_cancels_the_other_requests(tmp_path: Path) -> None:
    app = load("first_reply").make_app(sqlite_db(tmp_path))
    with WorkflowEnvironment(app, start=START, auto_skip=False) as env:
        quote = app.start("quick_quote", "widgets", id="q-1")
        env.wait_until_waiting(quote)
        env.advance(timedelta(minutes=10))
        app.send_event("q-1:initech", "quote", 50)
        assert quote.result(timeout=30) == "widgets: 50 from initech"
        children = {c.id: c for c in quote.children()}
        assert set(children) == {"q-1:acme", "q-1:globex", "q-1:initech"}
        for loser in ("q-1:acme", "q-1:globex"):
            with pytest.raises(durably.DurablyError):
                app.handle(loser).result(timeout=30)
            assert app.handle(loser).status() is durably.WorkflowStatus.CANCELLED
        # nobody answers: the timer wins, and every request is cancelled
        silent = app.start("quick_quote", "gizmos", id="q-2")
        env.wait_until_waiting(silent)
        env.advance(timedelta(hours=1))
        assert silent.result(timeout=30) == "gizmos: no quote within an hour"
        for child in silent.children():
            with pytest.raises(durably.DurablyError):
                app.handle(child.id).result(timeout=30)
        statuses = {app.handle(c.id).status() for c in silent.children()}
        assert statuses == {durably.WorkflowStatus.CANCELLED}
    app.close()


# -- money transfer saga ---------------------------------------------------------------------------


def test_money_transfer_moves_money_once_and_refunds_a_failed_deposit(db_url: str) -> None:
    example = load("money_transfer_saga")
    bank = example.FakeBank({"alice": 500, "bob": 100, "mallory": 0})
    app = example.make_app(db_url, bank)
    with app:
        ok = app.start("transfer", "alice", "bob", 150, id="t-1")
        assert ok.result(timeout=30) == "150 from alice to bob: done"
        bad = app.start("transfer", "alice", "mallory", 70, id="t-2")
        assert bad.result(timeout=30) == (
            "70 from alice to mallory: failed (account 'mallory' is closed), refunded"
        )
        # Starting a known id again runs nothing again.
        assert app.start("transfer", "alice", "bob", 150, id="t-1").result(timeout=30)
    assert bank.balances == {"alice": 350, "bob": 250, "mallory": 0}
    assert bank.applied == {"t-1:0": -150, "t-1:1": 150, "t-2:0": -70, "t-2:2": 70}
    # The first withdrawal was applied but its reply lost: the retry reused the key.
    assert steps(ok) == [("withdraw", "completed", 2), ("deposit", "completed", 1)]
    assert steps(bad) == [
        ("withdraw", "completed", 1), ("deposit", "failed", 1), ("refund", "completed", 1),
    ]  # fmt: skip
    app.close()


# -- subscription ----------------------------------------------------------------------------------


def test_subscription_bills_monthly_changes_plan_and_cancels(tmp_path: Path) -> None:
    example = load("subscription")
    app = example.make_app(sqlite_db(tmp_path))
    with WorkflowEnvironment(app, start=START, auto_skip=False) as env:
        sub = app.start("subscription", "ada", "basic", id="sub")
        for _ in range(3):
            env.wait_until_waiting(sub)
            env.advance(example.MONTH)
        env.wait_until_waiting(sub)
        assert sub.states() == {"plan": "basic", "months_billed": 3, "status": "active"}
        example.change_plan(app, "sub", "pro")
        env.wait_until_waiting(sub)
        assert sub.state("plan") == "pro"
        env.advance(example.MONTH)
        env.wait_until_waiting(sub)
        assert sub.state("months_billed") == 4
        example.cancel_subscription(app, "sub")
        assert sub.result(timeout=30) == "ada: cancelled after 4 months"
        assert env.now() == START + 4 * example.MONTH
    assert sub.states() == {"plan": "pro", "months_billed": 4, "status": "cancelled"}
    runs = sub.runs()
    assert [r.input["args"] for r in runs] == [
        ["ada", "basic"], ["ada", "basic", 1], ["ada", "basic", 2], ["ada", "basic", 3],
    ]  # fmt: skip
    assert [r.started_at for r in runs] == [START + n * example.MONTH for n in range(4)]
    # The journal holds the last run only: bounded however long the subscription lives.
    assert [e.kind for e in sub.history()] == ["state"] * 3 + ["now", "now", "event", "state"]
    app.close()


def test_subscription_publishes_a_plan_change_made_in_a_later_month(tmp_path: Path) -> None:
    example = load("subscription")
    app = example.make_app(sqlite_db(tmp_path))
    with WorkflowEnvironment(app, start=START, auto_skip=False) as env:
        sub = app.start("subscription", "ada", "basic", id="sub")
        env.wait_until_waiting(sub)
        for plan in ("pro", "basic"):  # two changes in month 1: "plan" last set at seq 9
            example.change_plan(app, "sub", plan)
            while sub.state("plan") != plan:
                time.sleep(0.005)
        env.wait_until_waiting(sub)
        env.advance(example.MONTH)
        env.wait_until_waiting(sub)
        assert sub.state("months_billed") == 1
        example.change_plan(app, "sub", "pro")  # month 2: "plan" set at seq 6
        env.wait_until_waiting(sub)
        deadline = time.monotonic() + 2
        while sub.state("plan") != "pro" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sub.state("plan") == "pro"
    app.close()


# -- each example as a program ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("task_chaining", "order-2: not shipped"),
        ("fan_out_fan_in", "at most in flight: 4"),
        ("async_api", "completed: q3-sales: 5 pages, 215 words"),
        ("monitor", "build-43 gave up at the deadline (check 37)"),
        ("human_approval", "expense-4: rejected by ada after 0 days"),
        ("first_reply", "widgets: 42 from globex"),
        ("money_transfer_saga", "balances: {'alice': 350, 'bob': 250, 'mallory': 0}"),
        ("subscription", "ada: cancelled after 4 months"),
    ],
)
def test_example_main_runs(tmp_path: Path, name: str, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DURABLY_DB"}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.run(
        [sys.executable, str(PATTERNS / f"{name}.py")], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert expected in proc.stdout
    assert proc.stderr == ""
    assert list(tmp_path.iterdir()) == []  # nothing left behind
