"""``durably.testing.check_crash_safety``: a workflow crashed at each durable point and resumed
ends as without a crash; a non-deterministic one and a non-idempotent step are shown."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import durably
from durably.testing import CrashSafetyError, check_crash_safety


def make_app(tmp_path: Any) -> durably.App:
    return durably.App(f"sqlite:///{tmp_path / 'app.db'}")


def test_a_deterministic_async_workflow_passes_at_every_point(tmp_path: Any) -> None:
    app = make_app(tmp_path)
    ledger: list[str] = []

    @app.step()
    async def charge(amount: int) -> str:
        ledger.append(f"charge {amount}")
        return f"charged {amount}"

    @app.workflow()
    async def pay(amount: int) -> list[Any]:
        stamp = durably.now()
        first = await charge(amount)
        await durably.sleep(timedelta(days=1))
        second = await charge(amount + 1)
        return [first, second, str(durably.uuid4()), stamp.isoformat()]

    report = check_crash_safety(app, pay, 5)
    assert report.step_runs == {"charge": 2}
    assert [str(p) for p in report.points] == [
        "before now 'now' (seq 0)",
        "before step 'charge' (seq 1)",
        "after-body step 'charge' (seq 1)",
        "before sleep 'sleep' (seq 2)",
        "before step 'charge' (seq 3)",
        "after-body step 'charge' (seq 3)",
        "before uuid 'uuid' (seq 4)",
        "before end 'pay' (seq 5)",
    ]
    for run in report.runs:
        assert run.result == report.result
        expected = {"charge": 3} if run.point.when == "after-body" else {"charge": 2}
        assert run.step_runs == expected, run.point
        assert run.reran(report) == ({"charge": 3} if run.point.when == "after-body" else {})
    assert charge.fn.__name__ == "charge" and not hasattr(charge.fn, "__wrapped__")


def test_a_sync_workflow_passes_too(tmp_path: Any) -> None:
    app = make_app(tmp_path)

    @app.step()
    def square(x: int) -> int:
        return x * x

    @app.workflow()
    def fourth_power(x: int) -> int:
        squared = square(x)
        return square(squared)

    report = check_crash_safety(app, fourth_power, 3)
    assert report.result == 81
    assert [p.when for p in report.points] == ["before", "after-body"] * 2 + ["before"]
    assert report.run_at("after-body step 'square' (seq 0)").step_runs == {"square": 3}


def test_time_time_in_the_workflow_is_caught_with_the_point_named(tmp_path: Any) -> None:
    app = make_app(tmp_path)

    @app.step()
    def log(line: str) -> str:
        return line

    @app.workflow()
    def stamped() -> str:
        started = time.time()  # durably: ignore[DUR101] (deliberate: another value each replay)
        log("started")
        return f"started at {started}"

    with pytest.raises(CrashSafetyError) as caught:
        check_crash_safety(app, stamped)
    assert str(caught.value.point) == "before step 'log' (seq 0)"
    assert "crashed before step 'log' (seq 0) and resumed ended completed" in str(caught.value)


def test_a_diverging_resume_needs_attention_and_names_the_point(tmp_path: Any) -> None:
    app = make_app(tmp_path)
    bodies: list[int] = []

    @app.step()
    def a() -> str:
        return "a"

    @app.step()
    def b() -> str:
        return "b"

    @app.workflow()
    def flaky() -> str:
        bodies.append(1)  # the second execution in a process takes another path
        first = a() if len(bodies) % 2 else b()
        return first + a()

    with pytest.raises(CrashSafetyError) as caught:
        check_crash_safety(app, flaky)
    assert "needs_attention" in str(caught.value) and "NonDeterminismError" in str(caught.value)
    assert caught.value.point.kind == "step"


def test_a_step_that_is_not_idempotent_shows_two_runs_after_its_body(tmp_path: Any) -> None:
    app = make_app(tmp_path)
    emails: list[str] = []

    @app.step()
    def send_email(to: str) -> None:
        emails.append(to)  # no idempotency key: a re-run sends it again

    @app.workflow()
    def welcome(to: str) -> str:
        send_email(to)
        return "sent"

    report = check_crash_safety(app, welcome, "ada@example.com")
    after = report.run_at("after-body step 'send_email' (seq 0)")
    assert after.step_runs == {"send_email": 2}
    assert after.reran(report) == {"send_email": 2}
    assert report.run_at("before step 'send_email' (seq 0)").step_runs == {"send_email": 1}


def test_children_and_concurrent_steps_are_crashed_and_resumed_too(tmp_path: Any) -> None:
    app = make_app(tmp_path)

    @app.step()
    async def inc(x: int) -> int:
        return x + 1

    @app.workflow()
    async def kid(x: int) -> int:
        return await inc(x)

    @app.workflow()
    async def parent(x: int) -> list[int]:
        a = await durably.start_child(kid, x)
        b, c = await asyncio.gather(inc(a), inc(a + 10))
        return [a, b, c]

    report = check_crash_safety(app, parent, 1)
    assert report.result == [2, 3, 13]
    assert [str(p) for p in report.points][:1] == ["before child 'kid' (seq 0)"]
    assert {run.point.kind for run in report.runs} == {"child", "step", "end"}
    kid_id = "crash-safety-check:0"
    assert [str(p) for p in report.points if p.workflow_id == kid_id] == [
        f"before step 'inc' (seq 0) of child {kid_id!r}",
        f"after-body step 'inc' (seq 0) of child {kid_id!r}",
        f"before end 'kid' (seq 1) of child {kid_id!r}",
    ]
    assert report.run_at(report.points[-2]).step_runs == {"inc": 4}
    assert all(run.result == [2, 3, 13] for run in report.runs)


def test_a_workflow_that_fails_the_same_way_after_every_crash_passes(tmp_path: Any) -> None:
    app = make_app(tmp_path)

    @app.step(retry=durably.Retry(attempts=1))
    def refuse(amount: int) -> None:
        raise ValueError(f"cannot pay {amount}")

    @app.workflow()
    def pay(amount: int) -> None:
        refuse(amount)

    report = check_crash_safety(app, pay, 7)
    assert report.status == "failed" and "cannot pay 7" in report.result
    assert [run.result for run in report.runs] == [report.result] * 3


def test_the_example_charges_once_however_it_crashes(tmp_path: Any) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "crash_safety.py"
    run = subprocess.run(
        [sys.executable, str(example)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "checkout: receipt for ch_0001 sent to ada"
    assert "  crash after-body step 'charge_card' (seq 0): same result; charge_card ran 2x" in lines
    assert "  crash before step 'charge_card' (seq 0): same result" in lines
    assert lines[-1] == "charged once: {'crash-safety-check:0': 4200}"
    assert list(tmp_path.iterdir()) == []  # the check ran on temporary databases


def test_a_run_that_never_reaches_its_crash_point_is_named(tmp_path: Any) -> None:
    app = make_app(tmp_path)
    bodies: list[int] = []

    @app.step()
    def a() -> None:
        pass

    @app.step()
    def b() -> None:
        pass

    @app.workflow()
    def shrinking() -> str:
        bodies.append(1)
        a()
        if len(bodies) == 1:  # only the very first execution in the process calls b
            b()
        return "done"

    with pytest.raises(CrashSafetyError) as caught:
        check_crash_safety(app, shrinking)
    assert str(caught.value.point) == "before step 'b' (seq 1)"
    assert "never reached it (completed)" in str(caught.value)


def approval_app(tmp_path: Any) -> tuple[durably.App, Any, list[str]]:
    app = make_app(tmp_path)
    done: list[str] = []

    @app.step()
    def submit(doc: str) -> str:
        return f"submitted {doc}"

    @app.step()
    def publish(doc: str, by: str) -> str:
        done.append(doc)
        return f"{doc} published, approved by {by}"

    @app.workflow()
    def approve(doc: str) -> list[str]:
        first = submit(doc)
        answer = durably.wait_event_sync("approval")
        return [first, publish(doc, answer["by"])]

    return app, approve, done


def test_a_workflow_waiting_for_approval_passes_at_every_point(tmp_path: Any) -> None:
    app, approve, _ = approval_app(tmp_path)
    report = check_crash_safety(app, approve, "spec", events=[("approval", {"by": "ada"})])
    assert report.result == ["submitted spec", "spec published, approved by ada"]
    assert [str(p) for p in report.points] == [
        "before step 'submit' (seq 0)",
        "after-body step 'submit' (seq 0)",
        "before event 'approval' (seq 1)",
        "before-consume event 'approval' (seq 1)",
        "before step 'publish' (seq 2)",
        "after-body step 'publish' (seq 2)",
        "before end 'approve' (seq 3)",
    ]
    assert all(run.result == report.result for run in report.runs)
    assert report.run_at("before-consume event 'approval' (seq 1)").step_runs == {
        "submit": 1,
        "publish": 1,
    }
    # a mapping works too; each run got the event exactly when it waited (no run hung)
    mapped = check_crash_safety(app, approve, "memo", events={"approval": {"by": "bob"}})
    assert mapped.result[1] == "memo published, approved by bob"


def test_a_workflow_waiting_for_an_event_not_given_fails_at_once_naming_it(tmp_path: Any) -> None:
    app, approve, done = approval_app(tmp_path)
    with pytest.raises(AssertionError) as caught:
        check_crash_safety(app, approve, "spec", events=[("rejection", None)])
    assert "waits for event 'approval', which events= does not provide" in str(caught.value)
    assert "'crash-safety-check'" in str(caught.value)
    assert done == []


def test_events_are_sent_in_order_and_a_repeated_name_once_per_wait(tmp_path: Any) -> None:
    app = make_app(tmp_path)

    @app.workflow()
    async def two_votes() -> list[Any]:
        first = await durably.wait_event("vote")
        second = await durably.wait_event("vote")
        late = await durably.wait_event("late", timeout=timedelta(days=1), default="none")
        return [first, second, late]

    report = check_crash_safety(app, two_votes, events=[("vote", 1), ("vote", 2)])
    assert report.result == [1, 2, "none"]
    assert sum(p.when == "before-consume" for p in report.points) == 2
    with pytest.raises(AssertionError, match=r"any more: it sent \['vote'\]"):
        check_crash_safety(app, two_votes, events=[("vote", 1)])


def test_retry_backoff_costs_no_real_time_in_the_check(tmp_path: Any) -> None:
    app = make_app(tmp_path)
    attempts: list[int] = []

    @app.step(retry=durably.Retry(attempts=3, initial=30.0))
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) % 3:
            raise ConnectionError("try again")
        return "ok"

    @app.workflow()
    def call() -> str:
        return flaky()

    report = check_crash_safety(app, call)  # 3 runs x 60 s of backoff if waited for
    assert report.result == "ok" and report.step_runs == {"flaky": 3}
    assert flaky.retry.initial == 30.0  # the step's policy is back as it was


def test_a_child_waiting_for_an_event_gets_it_and_bad_events_are_refused(tmp_path: Any) -> None:
    app = make_app(tmp_path)

    @app.workflow()
    async def reviewer(doc: str) -> str:
        verdict = await durably.wait_event("verdict")
        return f"{doc}: {verdict}"

    @app.workflow()
    async def review(doc: str) -> str:
        return await durably.start_child(reviewer, doc)

    report = check_crash_safety(app, review, "spec", events={"verdict": "ok"})
    assert report.result == "spec: ok"
    kid = "crash-safety-check:0"
    assert f"before-consume event 'verdict' (seq 0) of child {kid!r}" in map(str, report.points)
    with pytest.raises(durably.ConfigurationError, match="not a \\(name, payload\\) pair"):
        check_crash_safety(app, review, "spec", events=["verdict"])  # type: ignore[list-item]


def test_process_kill_every_point_of_a_correct_workflow_passes_with_real_sigkills() -> None:
    from tests import crash_apps

    report = check_crash_safety(crash_apps.app, crash_apps.compute, 20, kill=True)
    assert report.result == 41 and report.step_runs == {"double": 1, "add": 1}
    assert [str(p) for p in report.points] == [
        "before step 'double' (seq 0)",
        "after-body step 'double' (seq 0)",
        "before step 'add' (seq 1)",
        "after-body step 'add' (seq 1)",
        "before end 'compute' (seq 2)",
    ]
    for run in report.runs:
        assert run.exit_code == -signal.SIGKILL, run.point
        assert run.result == 41
        reran = {run.point.name: 2} if run.point.when == "after-body" else {}
        assert run.reran(report) == reran, run.point
    assert crash_apps.app.database_url.endswith("durably-crash-apps-unused.db")


def test_process_kill_catches_a_workflow_reading_its_process_with_the_point_named() -> None:
    from tests import crash_apps

    with pytest.raises(CrashSafetyError) as caught:
        check_crash_safety(
            crash_apps.app, crash_apps.by_process, kill=True, app_ref="tests.crash_apps:app"
        )
    assert str(caught.value.point) == "before step 'add' (seq 1)"
    assert "ended completed with 2, not completed with 1" in str(caught.value)


def test_process_kill_needs_an_importable_app_and_no_events(tmp_path: Any) -> None:
    app = make_app(tmp_path)

    @app.workflow()
    def nothing() -> int:
        return 1

    with pytest.raises(durably.ConfigurationError, match="app_ref='MODULE:APP'"):
        check_crash_safety(app, nothing, kill=True)
    with pytest.raises(durably.ConfigurationError, match="does not send events"):
        check_crash_safety(app, nothing, kill=True, events=[("go", 1)])
