"""Worker behaviour that needs a store but no subprocess: lease hygiene and shutdown (on each
backend: ``db_url``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import durably
from durably.storage.base import WorkerInfo, WorkflowRecord, WorkflowStatus
from durably.worker import Worker, WorkerOptions


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_dead_local_workers_lose_their_leases_at_once(db_url: str) -> None:
    app = durably.App(db_url)

    @app.workflow()
    async def noop() -> None:
        return None

    store = app.store
    worker = Worker(store, app.registry, app.serializer, WorkerOptions())
    host, now = worker.hostname, time.time()
    owners = {
        "dead-local": (host, dead_pid()),
        "live-local": (host, os.getpid()),
        "dead-remote": ("some-other-host", dead_pid()),
    }
    for i, (owner, (hostname, pid)) in enumerate(owners.items()):
        store.register_worker(WorkerInfo(owner, hostname, pid, now, now, ["noop"], ["default"]))
        rec = WorkflowRecord(f"wf-{i}", "noop", WorkflowStatus.PENDING, "{}", now, now)
        store.create_workflow(rec)
        (claim,) = store.claim(owner, ["noop"], now, 600.0, 1)
        assert claim.record.id == f"wf-{i}"

    worker._expire_dead_local_workers()

    claimed = store.claim("new-worker", ["noop"], time.time(), 60.0, 10)
    assert [c.record.id for c in claimed] == ["wf-0"]  # only the dead local worker's
    assert {w.id for w in store.list_workers()} == {"live-local", "dead-remote"}
    app.close()


def test_stopping_a_worker_releases_its_workflows_for_others(db_url: str) -> None:
    db = db_url
    app = durably.App(db, worker_options=WorkerOptions(lease_seconds=600.0, poll_interval=0.02))

    @app.step()
    async def forever() -> None:
        import asyncio

        await asyncio.sleep(600)

    @app.workflow()
    async def stuck() -> None:
        await forever()

    with app:
        h = app.start(stuck, id="stuck-1")
        deadline = time.monotonic() + 10
        while h.info().owner is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert h.info().owner is not None
    info = h.info()
    assert info.owner is None and info.status is WorkflowStatus.RUNNING
    assert app.store.list_workers() == []
    # released: another worker can claim it right away despite the 600 s lease
    (claim,) = app.store.claim("other", ["stuck"], time.time(), 60.0, 10)
    assert claim.record.id == "stuck-1" and claim.record.epoch == 2
    app.close()


def test_a_start_beside_a_worker_is_claimed_in_the_same_write_within_capacity(
    db_url: str,
) -> None:
    import threading

    app = durably.App(
        db_url,
        worker_options=WorkerOptions(max_concurrent=1, poll_interval=0.02),
    )
    gate = threading.Event()

    @app.step()
    def hold() -> None:
        assert gate.wait(10)

    @app.workflow()
    async def held(i: int) -> int:
        await durably.run(hold)
        return i

    with app:
        worker = app._worker
        assert worker is not None
        first = app.start(held, 1)
        info = first.info()  # owned the moment start returns: no separate claim
        assert (info.status, info.owner, info.epoch) == (WorkflowStatus.RUNNING, worker.id, 1)
        second = app.start(held, 2)  # the worker is full: started normally, claimed later
        info = second.info()
        assert (info.status, info.owner) == (WorkflowStatus.PENDING, None)
        again = app.start(held, 1, id=first.id)  # idempotent on this path too
        assert again.id == first.id
        gate.set()
        assert first.result(timeout=10) == 1 and second.result(timeout=10) == 2
    assert second.info().epoch == 1
    assert len(app.list_workflows()) == 2
    app.close()
