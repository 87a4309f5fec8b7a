"""One injectable clock: ``App.clock`` is the time of the App's starts and commands, of its
worker (claims, leases) and of its workflows (``now()``); the test environment sets it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import durably
from durably.testing import WorkflowEnvironment

FAST = durably.WorkerOptions(poll_interval=0.02)
AT = 2_000_000_000.0  # 2033: far from the real time


def test_the_app_clock_is_the_workers_and_the_workflows(tmp_path: Path) -> None:
    app = durably.App(f"sqlite:///{tmp_path}/c.db", worker_options=FAST)
    app.clock = lambda: AT

    @app.workflow
    async def when() -> float:
        return durably.now().timestamp()

    with app:
        handle = app.start(when, id="when")
        assert handle.result(timeout=30) == AT
    info = handle.info()
    assert info.created_at == datetime.fromtimestamp(AT, UTC)
    assert info.started_at == datetime.fromtimestamp(AT, UTC)
    assert info.finished_at == datetime.fromtimestamp(AT, UTC)


def test_the_environment_sets_the_app_clock_and_gives_it_back(tmp_path: Path) -> None:
    app = durably.App(f"sqlite:///{tmp_path}/e.db")
    real = app.clock
    with WorkflowEnvironment(app) as env:
        assert app.clock == env.clock.time
    assert app.clock is real
