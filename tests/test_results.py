"""Awaiting many results on one loop: one store read per poll for every waiter, woken by the
worker here, with the same outcomes and errors as awaiting one at a time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

import durably
from durably.app.results import ResultPoller
from durably.storage.base import Ended, WorkflowRecord, WorkflowStatus


def _rec(wid: str, status: WorkflowStatus = WorkflowStatus.COMPLETED) -> WorkflowRecord:
    return WorkflowRecord(
        id=wid, name="w", status=status, input="{}", created_at=0.0, updated_at=0.0, output="1"
    )


class FakeStore:
    """Workflows that end when the test says so; counts reads and their sizes."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.running = set(ids)
        self.ended: dict[str, WorkflowRecord] = {}
        self.reads: list[int] = []
        self.fail: Exception | None = None
        self.lock = threading.Lock()

    def finished(self, ids: Sequence[str]) -> dict[str, WorkflowRecord | None]:
        with self.lock:
            self.reads.append(len(ids))
            if self.fail is not None:
                raise self.fail
            out: dict[str, WorkflowRecord | None] = {}
            for i in ids:
                if i in self.ended:
                    out[i] = self.ended[i]
                elif i not in self.running:
                    out[i] = None
            return out

    def end(self, ids: Sequence[str]) -> None:
        with self.lock:
            for i in ids:
                self.running.discard(i)
                self.ended[i] = _rec(i)


def test_many_waiters_share_each_read_and_all_get_their_record() -> None:
    ids = [f"w{i}" for i in range(500)]
    store = FakeStore(ids)

    async def main() -> list[WorkflowRecord | None]:
        poller = ResultPoller(asyncio.get_running_loop(), store.finished, lambda _: False, "db")

        async def end_in_waves() -> None:
            for start in range(0, 500, 100):
                await asyncio.sleep(0.01)
                store.end(ids[start : start + 100])

        ender = asyncio.create_task(end_in_waves())
        results = await asyncio.gather(*(poller.wait(i, 30) for i in ids))
        await ender
        return results

    results = asyncio.run(main())
    assert [r.id if r else None for r in results] == ids
    # waiters that arrive together share the first read; each read covers whoever still waits
    assert store.reads[0] == 500
    assert len(store.reads) < 100, store.reads
    assert sum(store.reads) < 500 * 20


def test_unknown_id_raises_timeout_returns_none_and_store_errors_reach_waiters() -> None:
    store = FakeStore(["slow", "slow2"])

    async def main() -> None:
        poller = ResultPoller(asyncio.get_running_loop(), store.finished, lambda _: False, "db1")
        with pytest.raises(durably.WorkflowNotFoundError, match="'ghost' in db1"):
            await poller.wait("ghost", 5)
        assert await poller.wait("slow", 0.05) is None
        # another waiter in the poll: an unknown id among running ones fails alone
        slow = asyncio.create_task(poller.wait("slow", 5))
        await asyncio.sleep(0.01)
        with pytest.raises(durably.WorkflowNotFoundError):
            await poller.wait("ghost2", 5)
        assert not slow.done()
        store.fail = RuntimeError("database went away")
        with pytest.raises(RuntimeError, match="went away"):
            await slow
        store.fail = None
        store.end(["slow2"])
        rec = await poller.wait("slow2", 5)
        assert rec is not None and rec.id == "slow2"

    asyncio.run(main())


def test_a_wake_from_the_worker_polls_at_once() -> None:
    store = FakeStore(["a"])

    async def main() -> None:
        # every awaited workflow "runs here": between polls the poller would wait 0.5 s
        poller = ResultPoller(asyncio.get_running_loop(), store.finished, lambda _: True, "db")
        waiter = asyncio.create_task(poller.wait("a", 30))
        await asyncio.sleep(0.1)  # backed off to its longest wait by now
        reads = len(store.reads)
        store.end(["a"])
        threading.Thread(target=poller.wake_if_waiting, args=("a",)).start()
        rec = await asyncio.wait_for(waiter, 0.4)  # well before the 0.5 s fallback poll
        assert rec is not None and len(store.reads) == reads + 1

    asyncio.run(main())


def test_ends_handed_over_by_the_worker_resolve_waiters_without_a_read() -> None:
    ids = [f"h{i}" for i in range(200)]
    store = FakeStore(ids)  # never ends them: only the hand-overs can

    async def main() -> None:
        loop = asyncio.get_running_loop()
        poller = ResultPoller(loop, store.finished, lambda _: True, "db")
        waiters = [asyncio.create_task(poller.wait(i, 30)) for i in ids]
        await asyncio.sleep(0.05)  # the waiters' first read is done; backing off now
        reads = len(store.reads)

        def worker_thread() -> None:  # ends come from the worker's thread, many at a time
            for i in ids:
                poller.wake_if_waiting(
                    i, Ended(i, "w", WorkflowStatus.COMPLETED, str(len(i)), None)
                )
            # an end nobody waits for is not kept (a later waiter reads the store)
            poller.wake_if_waiting("other", Ended("other", "w", WorkflowStatus.FAILED, None, "{}"))

        threading.Thread(target=worker_thread).start()
        got = await asyncio.wait_for(asyncio.gather(*waiters), 0.4)  # before the 0.5 s poll
        assert [(g.id, g.status, g.output) for g in got if g is not None] == [
            (i, WorkflowStatus.COMPLETED, str(len(i))) for i in ids
        ]
        assert len(store.reads) == reads  # no read for them
        assert not poller._handed
        await asyncio.sleep(0.01)
        assert poller._task is None  # nobody waits: the poll loop ended at once

    asyncio.run(main())


def test_a_handed_over_failure_raises_as_a_read_one_does(db_url: str) -> None:
    app = durably.App(db_url, worker_options=durably.WorkerOptions(poll_interval=0.02))
    reads: list[int] = []

    @app.workflow()
    async def fails_late(n: int) -> int:
        await asyncio.sleep(0.05)  # still running when its result is awaited
        if n % 2:
            raise ValueError(f"odd {n}")
        return n

    async def main() -> None:
        poller = app._results.poller()
        finished = poller._finished

        def counted(ids: Sequence[str]) -> dict[str, WorkflowRecord | None]:
            reads.append(len(ids))
            return finished(ids)

        poller._finished = counted
        handles = await asyncio.gather(*(app.start_async(fails_late, n) for n in range(20)))
        outcomes = await asyncio.gather(
            *(h.result_async(timeout=30) for h in handles), return_exceptions=True
        )
        for n, outcome in enumerate(outcomes):
            if n % 2:
                assert isinstance(outcome, durably.WorkflowFailedError), outcome
                assert outcome.status == "failed" and outcome.error["message"] == f"odd {n}"
            else:
                assert outcome == n
        # the same outcomes read back from the store, one by one
        for n, h in enumerate(handles[:4]):
            if n % 2:
                with pytest.raises(durably.WorkflowFailedError, match=f"odd {n}"):
                    await h.result_async()
            else:
                assert await h.result_async() == n

    try:
        with app:
            asyncio.run(main())
    finally:
        app.close()
    # the gathered waits: running here, they are handed over, not read again and again (as
    # polling them would, every few ms over their 50 ms); the last four waits each read one
    assert reads[-4:] == [1, 1, 1, 1] and sum(reads[:-4]) <= 40, reads


def test_gathered_results_on_an_app_match_one_by_one(db_url: str) -> None:
    app = durably.App(
        db_url, worker_options=durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)
    )

    @app.workflow()
    async def square(n: int) -> int:
        if n == 13:
            raise ValueError("unlucky")
        return n * n

    @app.workflow()
    async def waits() -> str:
        return str(await durably.wait_event("never"))

    async def main() -> None:
        handles = await asyncio.gather(*(app.start_async(square, n) for n in range(60)))
        outcomes = await asyncio.gather(
            *(h.result_async(timeout=60) for h in handles), return_exceptions=True
        )
        for n, outcome in enumerate(outcomes):
            if n == 13:
                assert isinstance(outcome, durably.WorkflowFailedError)
                assert "unlucky" in str(outcome)
            else:
                assert outcome == n * n
        # awaited again (all ended): the same, one by one
        assert [await h.result_async() for h in handles[:5]] == [0, 1, 4, 9, 16]
        with pytest.raises(durably.WorkflowNotFoundError):
            await app.handle("no-such-workflow").result_async(timeout=5)
        waiting = await app.start_async(waits)
        with pytest.raises(durably.WorkflowTimeoutError, match=r"still running after 0\.2s"):
            await waiting.result_async(timeout=0.2)

    try:
        with app:
            asyncio.run(main())
    finally:
        app.close()


def test_a_finished_poller_keeps_no_future_and_the_loop_can_go() -> None:
    import gc
    import weakref

    store = FakeStore(["a", "b"])
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ResultPoller] = (
        weakref.WeakKeyDictionary()
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loops.append(weakref.ref(loop))
        poller = pollers[loop] = ResultPoller(loop, store.finished, lambda _: False, "db")
        store.end(["a"])
        waiter = asyncio.create_task(poller.wait("b", 60))
        assert (await asyncio.gather(poller.wait("a", 60), asyncio.sleep(0.01)))[0] is not None
        store.end(["b"])
        assert await waiter is not None
        await asyncio.sleep(0)  # the poll task winds up
        assert poller._task is None and not poller._waiting and not poller._deadlines

    asyncio.run(main())
    gc.collect()
    assert loops[0]() is None and len(pollers) == 0


@pytest.mark.parametrize("quick_reads", [True, False])
def test_a_lone_read_runs_on_the_loop_only_for_a_store_of_quick_reads(quick_reads: bool) -> None:
    """A PostgreSQL read may wait for a network or an outage: it must not run on the loop (a
    server's loop answers other requests); a SQLite read may, sparing a thread hop."""
    store = FakeStore(["w1"])
    store.end(["w1"])
    threads: list[int] = []

    def finished(ids: Sequence[str]) -> dict[str, WorkflowRecord | None]:
        threads.append(threading.get_ident())
        return store.finished(ids)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        poller = ResultPoller(loop, finished, lambda _: False, "db", quick_reads)
        rec = await poller.wait("w1", 5.0)
        assert rec is not None and rec.id == "w1"
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads
    assert all((t == loop_thread) is quick_reads for t in threads)


def test_only_sqlite_stores_say_their_reads_are_quick(tmp_path: object) -> None:
    from durably.storage import open_store
    from durably.storage.postgres import PostgresStore

    store = open_store(f"sqlite:///{tmp_path}/q.db")
    try:
        assert store.quick_reads is True
    finally:
        store.close()
    assert PostgresStore.quick_reads is False
