"""Many concurrent starts: idempotent on ids, every workflow run once, whether the local worker
takes them at once (created claimed, in its group commit), is full (created unowned through its
group commit, claimed later) or absent (created by the client)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import durably


def _app(db_url: str, max_concurrent: int) -> tuple[durably.App, Counter[int], object]:
    app = durably.App(
        db_url,
        worker_options=durably.WorkerOptions(
            lease_seconds=2.0, poll_interval=0.02, max_concurrent=max_concurrent
        ),
    )
    runs: Counter[int] = Counter()
    lock = threading.Lock()

    @app.step()
    async def bump(n: int) -> int:
        with lock:
            runs[n] += 1
        return n * 2

    @app.workflow()
    async def double(n: int) -> int:
        return await bump(n) + 1

    return app, runs, double


def test_concurrent_async_starts_with_repeated_ids_run_each_workflow_once(db_url: str) -> None:
    app, runs, double = _app(db_url, max_concurrent=40)  # most starts find the worker full

    async def main() -> list[int]:
        handles = await asyncio.gather(
            *(app.start_async(double, i % 150, id=f"wf-{i % 150}") for i in range(300))
        )
        assert len({h.id for h in handles}) == 150
        return [await h.result_async(timeout=60) for h in handles]

    try:
        with app:
            results = asyncio.run(main())
        assert results == [(i % 150) * 2 + 1 for i in range(300)]
        assert runs == Counter({n: 1 for n in range(150)})
        assert len(app.list_workflows(limit=1000)) == 150
    finally:
        app.close()


def test_threaded_sync_starts_through_a_full_worker(db_url: str) -> None:
    app, runs, double = _app(db_url, max_concurrent=2)
    handles: list[durably.WorkflowHandle[int]] = []
    lock = threading.Lock()

    def starter(k: int) -> None:
        for i in range(k * 10, k * 10 + 10):
            h = app.start(double, i, id=f"t-{i}")
            with lock:
                handles.append(h)

    try:
        with app:
            threads = [threading.Thread(target=starter, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(h.result(timeout=60) for h in handles) == [i * 2 + 1 for i in range(40)]
        assert runs == Counter({n: 1 for n in range(40)})
    finally:
        app.close()


def test_async_starts_without_a_worker_are_run_by_a_later_one(db_url: str) -> None:
    client, _, double = _app(db_url, max_concurrent=10)

    async def start() -> list[str]:
        hs = await asyncio.gather(*(client.start_async(double, i) for i in range(30)))
        return [h.id for h in hs]

    try:
        ids = asyncio.run(start())
        assert {i.status for i in client.list_workflows(limit=100)} == {
            durably.WorkflowStatus.PENDING
        }
        worker, runs, _ = _app(db_url, max_concurrent=10)
        with worker:
            assert sorted(worker.handle(i).result(timeout=60) for i in ids) == [
                n * 2 + 1 for n in range(30)
            ]
        worker.close()
        assert runs == Counter({n: 1 for n in range(30)})
    finally:
        client.close()
