"""The worker: claims runnable workflows, holds their leases, and runs them on one event loop.

A worker is one process's engine host. It registers itself in the workers table, claims
workflows it serves under a lease (renewed in bulk by a heartbeat), runs each claimed workflow
with the replay engine, and writes through one group-committing writer. On start, and on every
heartbeat, it expires at once the leases of dead worker processes on its own host, so a worker
restarted after ``kill -9`` resumes their workflows immediately; leases of other hosts' workers
are taken over when they expire.

Its parts: :mod:`~durably.worker.state` (what they share), :mod:`~durably.worker.host`
(executions), :mod:`~durably.worker.claims` (claims, start-here), :mod:`~durably.worker.leases`
(heartbeat, dead workers), :mod:`~durably.worker.signals` (wake-ups, signals); this module runs
them (start, serve, stop).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from durably.storage.committer import GroupCommitter
from durably.worker.claims import Claims
from durably.worker.leases import Leases, wall_time
from durably.worker.retention import Retention
from durably.worker.runtime import WorkerRuntime
from durably.worker.signals import Signals
from durably.worker.state import Stopping, log
from durably.worker.ticker import Ticker

__all__ = ["Worker"]


class Worker(Claims, Leases, Signals, Ticker, Retention):
    """Runs the workflows of a :class:`Registry` from a :class:`Store`."""

    def start_in_thread(self) -> None:
        """Run the worker on a background thread; return once it is serving."""

        def main() -> None:
            try:
                asyncio.run(self.serve())
            except BaseException as exc:  # surfaced by start_in_thread / stop
                self._error = exc
                self._ready.set()

        self._thread = threading.Thread(target=main, name="durably-worker", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def run(self, *, handle_signals: bool = True) -> None:
        """Serve in the calling thread until SIGINT/SIGTERM (or :meth:`stop`)."""

        async def main() -> None:
            if handle_signals:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, self.request_stop)
            await self.serve()

        asyncio.run(main())

    def request_stop(self) -> None:
        """Ask the worker to stop (thread-safe, returns at once)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:
                pass

    def stop(self, timeout: float = 30.0) -> None:
        """Stop: claim nothing more, unwind running workflows, release their leases."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    async def serve(self) -> None:
        """The worker's main coroutine."""
        opts = self.options
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        self._poke = asyncio.Event()
        self._stopping = asyncio.Event()
        committer = GroupCommitter(self.store)
        self._committer = committer
        step_pool = ThreadPoolExecutor(opts.step_threads, thread_name_prefix="durably-step")
        wf_pool = ThreadPoolExecutor(opts.workflow_threads, thread_name_prefix="durably-wf")
        self.runtime = WorkerRuntime(
            loop, self.codec, committer, step_pool, wf_pool,
            eviction_threshold=opts.eviction_threshold, clock=self.clock, notify=self.notify,
            parked=self._wake_claims, alone=self._alone, on_write=self._on_write,
        )  # fmt: skip
        self._started_at = wall_time()
        await asyncio.to_thread(self._register)
        try:
            await asyncio.to_thread(self._expire_dead_local_workers)
        except Exception as exc:  # the heartbeat tries again within a second
            log.warning("worker %s could not expire dead workers' leases: %s", self.id, exc)
        unlisten = await self._listen()
        committer.start()
        heartbeat = loop.create_task(self._heartbeat_loop())
        signals = loop.create_task(self._signals_loop())
        ticker = loop.create_task(self._ticker_loop()) if opts.schedules else None
        retention = loop.create_task(self._retention_loop())
        self._ready.set()
        try:
            await self._claim_loop()
        finally:
            heartbeat.cancel()
            signals.cancel()
            if ticker is not None:
                ticker.cancel()
            retention.cancel()
            if unlisten is not None:
                await asyncio.to_thread(unlisten)
            await self._shutdown(committer)
            step_pool.shutdown(wait=False, cancel_futures=True)
            wf_pool.shutdown(wait=False, cancel_futures=True)

    async def _shutdown(self, committer: GroupCommitter) -> None:
        self._committer = None
        for ctx in list(self.active.values()):
            ctx.halt(Stopping(f"worker {self.id} is stopping", workflow_id=ctx.workflow_id))
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await asyncio.to_thread(committer.stop)
        try:
            await asyncio.to_thread(self.store.release, self.id)
            await asyncio.to_thread(self.store.remove_worker, self.id)
        except Exception as exc:  # leases expire on their own
            log.warning("worker %s could not release its leases: %s", self.id, exc)
