"""What a worker logs: each workflow that ends badly (WARNING, with its id, name, status, error
and step), and a workflow taken away by a command (INFO) told apart from a real lease loss
(WARNING). Embedded workers on each backend (caplog), and a real ``durably worker`` process."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import durably
from durably.storage.base import WorkflowRecord, WorkflowStatus
from durably.worker_log import lease_loss

FAST = durably.WorkerOptions(lease_seconds=1.0, poll_interval=0.02, eviction_threshold=0)
DURABLY = [sys.executable, "-m", "durably.cli"]


@pytest.fixture
def app(db_url: str) -> Iterator[durably.App]:
    a = durably.App(db_url, worker_options=FAST)
    yield a
    a.close()


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _logged(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == level and r.name.startswith("durably") and text in r.getMessage()
    ]


def test_terminate_or_suspend_with_a_step_in_flight_is_not_a_warning(
    app: durably.App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durably")
    running = threading.Event()
    gate = threading.Event()

    @app.step(retry=durably.Retry(attempts=1))
    def slow() -> str:
        running.set()
        gate.wait(30)
        return "done"

    @app.workflow()
    def holds_a_step() -> str:
        return slow()

    with app:
        for wid, command in (("term-1", "terminated"), ("susp-1", "suspended")):
            running.clear()
            app.start(holds_a_step, id=wid)
            assert running.wait(30)
            if command == "terminated":
                app.terminate(wid, "by the test")
            else:
                app.suspend(wid)
            said = f"workflow {wid!r} was {command} by a command"
            _wait(lambda said=said: bool(_logged(caplog, logging.INFO, said)), said)  # type: ignore[misc]
        gate.set()
        app.terminate("susp-1")
        assert app.handle("term-1").status() is WorkflowStatus.TERMINATED
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not any("lease" in w for w in warnings), warnings


def test_a_real_lease_loss_stays_a_warning() -> None:
    taken = WorkflowRecord(
        id="wf-1", name="wf", status=WorkflowStatus.RUNNING, input="[]", created_at=1.0,
        updated_at=1.0, owner="other-worker",
    )  # fmt: skip
    level, message, reason = lease_loss("me", "wf-1", taken)
    assert level == logging.WARNING
    assert message == "worker me lost the lease of workflow wf-1 (now held by worker other-worker)"
    assert "lease lost" in reason
    expired = WorkflowRecord(
        id="wf-1", name="wf", status=WorkflowStatus.PENDING, input="[]", created_at=1.0,
        updated_at=1.0,
    )  # fmt: skip
    assert lease_loss("me", "wf-1", expired)[0] == logging.WARNING
    assert lease_loss("me", "wf-1", None, known=False)[0] == logging.WARNING  # unreadable
    level, message, _ = lease_loss("me", "wf-1", None)
    assert level == logging.INFO and "purged by a command" in message


def test_workflows_that_end_badly_are_logged_as_warnings(
    app: durably.App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durably")
    diverge = threading.Event()

    @app.step(retry=durably.Retry(attempts=2, initial=0.01))
    async def charge(cents: int) -> None:
        raise ValueError(f"card declined for {cents}")

    @app.step()
    async def first() -> str:
        return "first"

    @app.step()
    async def other() -> str:
        return "other"

    @app.workflow()
    async def pay(cents: int) -> None:
        await charge(cents)

    @app.workflow()
    async def changes() -> str:
        await (other() if diverge.is_set() else first())
        return str(await durably.wait_event("go"))

    @app.workflow()
    async def waits() -> None:
        await durably.wait_event("never")

    with app:
        with pytest.raises(durably.WorkflowFailedError):
            app.start(pay, 120, id="pay-1").result(timeout=30)
        h = app.start(changes, id="nd-1")
        _wait(lambda: len(h.history()) == 2, "the event wait")  # parked at once (threshold 0)
        diverge.set()
        app.send_event("nd-1", "go", 1)
        with pytest.raises(durably.WorkflowFailedError):
            h.result(timeout=30)
        c = app.start(waits, id="cancel-1")
        _wait(lambda: len(c.history()) == 1, "the wait")
        app.cancel("cancel-1")
        with pytest.raises(durably.WorkflowFailedError):
            c.result(timeout=30)
    (failed,) = _logged(caplog, logging.WARNING, "pay-1")
    assert f"workflow pay-1 ({pay.name}) ended failed at step {charge.name!r}" in failed
    assert "durably.errors.StepFailed" in failed and "ValueError: card declined for 120" in failed
    (attention,) = _logged(caplog, logging.WARNING, "nd-1")
    assert f"workflow nd-1 ({changes.name}) ended needs_attention" in attention
    assert "NonDeterminismError" in attention
    assert f"recorded step {first.name!r} but the code now calls step {other.name!r}" in attention
    (cancelled,) = _logged(caplog, logging.WARNING, "cancel-1")
    assert f"workflow cancel-1 ({waits.name}) ended cancelled" in cancelled
    assert "Cancelled" in cancelled


FLOWS = """
import durably
app = durably.App({db!r})

@app.step(retry=durably.Retry(attempts=1))
def explode(n: int) -> None:
    raise RuntimeError(f"exploded on {{n}}")

@app.workflow()
def fails(n: int) -> None:
    explode(n)
"""


def test_a_worker_process_logs_a_failed_workflow(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS.format(db=db_url)))
    package_root = Path(durably.__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(package_root)])
    worker = subprocess.Popen(
        [*DURABLY, "worker", "flows:app", "-v"], cwd=tmp_path, env=env, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    client = durably.App(db_url)
    try:
        _wait(lambda: bool(client.list_workers()), "the worker to register")
        with pytest.raises(durably.WorkflowFailedError):
            client.start("fails", 7, id="proc-fail").result(timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        client.close()
    assert worker.returncode == 0, err
    (line,) = [x for x in err.splitlines() if "proc-fail" in x]
    assert "WARNING durably.worker: workflow proc-fail (fails) ended failed at step 'explode'" in (
        line
    )
    assert "RuntimeError: exploded on 7" in line
