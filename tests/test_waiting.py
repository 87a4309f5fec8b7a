"""A result wait on a workflow that no live worker serves says so once, after a few seconds,
instead of blocking in silence (App, sync and async, on each backend)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import durably
import durably.waiting

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)


@pytest.fixture
def app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[durably.App]:
    monkeypatch.setattr(durably.waiting, "UNSERVED_WARNING_AFTER", 0.3)
    a = durably.App(db_url, worker_options=FAST)
    yield a
    a.close()


def _warnings(caplog: pytest.LogCaptureFixture, wid: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and f"workflow {wid!r}" in r.getMessage()
    ]


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(fn()), daemon=True)
    thread.start()
    return thread, got


def test_waiting_on_an_unserved_workflow_warns_once(
    app: durably.App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durably")

    @app.workflow()
    async def later(n: int) -> int:
        return n + 1

    sync_h = app.start(later, 1, id="unserved-sync")
    async_h = app.start(later, 2, id="unserved-async")
    sync_wait, sync_got = _in_thread(sync_h.result)
    async_wait, async_got = _in_thread(lambda: asyncio.run(async_h.result_async()))
    deadline = time.monotonic() + 30
    while not (_warnings(caplog, sync_h.id) and _warnings(caplog, async_h.id)):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.02)
    time.sleep(1.0)  # several check periods: still one warning each
    for h in (sync_h, async_h):
        (warning,) = _warnings(caplog, h.id)
        assert "still pending" in warning and "still waiting" in warning
        assert f"no live worker serves workflow {later.name!r} on queue 'default'" in warning
        assert "timeout=" in warning
    app.start_worker()  # a worker comes: both waits end with the result
    sync_wait.join(30)
    async_wait.join(30)
    assert sync_got == [2] and async_got == [3]


def test_a_served_workflow_waits_without_a_warning(
    app: durably.App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durably")
    gate = threading.Event()

    @app.step()
    def slow() -> str:
        gate.wait(30)
        return "done"

    @app.workflow()
    def served() -> str:
        return slow()

    with app:
        h = app.start(served, id="served-1")
        waiting, got = _in_thread(h.result)
        time.sleep(1.0)  # several check periods while a live worker runs it
        gate.set()
        waiting.join(30)
    assert got == ["done"]
    assert _warnings(caplog, h.id) == []
