"""``durably.testing.check_crash_safety``: a workflow crashed at each durable point and resumed
ends as without a crash; a non-deterministic one and a non-idempotent step are shown."""

from __future__ import annotations

import asyncio
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
