"""The engine's runtime inside a worker: group-committed writes, thread pools, the clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Executor

from durably.codec import Codec
from durably.storage.base import Park, WriteOp
from durably.storage.committer import GroupCommitter

__all__ = ["WorkerRuntime"]


class WorkerRuntime:
    """The engine's :class:`~durably.engine.Runtime`, backed by the store's group committer."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        codec: Codec,
        committer: GroupCommitter,
        step_executor: Executor,
        workflow_executor: Executor,
        *,
        eviction_threshold: float,
        clock: Callable[[], float],
        notify: Callable[[], None],
        parked: Callable[[], None] = lambda: None,
        alone: Callable[[], bool] = lambda: False,
        on_write: Callable[[WriteOp], None] | None = None,
    ) -> None:
        self.loop = loop
        self.codec = codec
        self.step_executor = step_executor
        self.workflow_executor = workflow_executor
        self.eviction_threshold = eviction_threshold
        self._committer = committer
        self._clock = clock
        self._notify = notify
        self._parked = parked
        self._alone = alone
        """Whether the execution committing is the only one its worker runs: then nothing else
        waits for the loop, and a write the writer is idle for is committed in place."""
        self._on_write = on_write
        """A test's hook (:mod:`durably.crash_safety`), called with each op as it is submitted."""
        self._parking_lock = threading.Lock()
        self.parking = 0
        """Park writes submitted and not yet committed: their workflows have left the worker's
        active set but still hold their leases, so they count against its capacity (else a
        slow store would let claims pile up without bound)."""

    def time(self) -> float:
        return self._clock()

    def notify_new_work(self) -> None:
        self._notify()

    def record(
        self, op: WriteOp, on_done: Callable[[bool | BaseException], None] | None = None
    ) -> None:
        if self._on_write is not None:
            self._on_write(op)
        if isinstance(op, Park):  # once parked, its timer is the worker's to schedule
            with self._parking_lock:
                self.parking += 1
            self._committer.submit(op, self._after_park(on_done))
        else:
            self._committer.submit(op, on_done)

    def _after_park(
        self, on_done: Callable[[bool | BaseException], None] | None
    ) -> Callable[[bool | BaseException], None]:
        def done(outcome: bool | BaseException) -> None:
            with self._parking_lock:
                self.parking -= 1
            try:
                if on_done is not None:
                    on_done(outcome)
            finally:
                self._parked()

        return done

    def commit(self, op: WriteOp) -> asyncio.Future[bool]:
        fut: asyncio.Future[bool] = self.loop.create_future()
        if self._on_write is not None:
            self._on_write(op)
        # no other execution to run on this loop and nothing else being written: commit here
        if self._alone():
            try:
                applied = self._committer.try_now(op)
            except Exception as exc:  # as a failed group commit reaches its waiters
                fut.set_exception(exc)
                return fut
            if applied is not None:
                fut.set_result(applied)
                return fut
        self._committer.submit(op, fut)
        return fut
