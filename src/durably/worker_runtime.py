"""The engine's runtime inside a worker (group-committed writes, thread pools, the clock), and
the liveness check of local worker processes."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor

from durably.codec import Codec
from durably.storage.base import Park, WriteOp
from durably.storage.committer import GroupCommitter

__all__ = ["WorkerRuntime", "pid_alive"]


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
        # nothing else to run on this loop and nothing else being written: commit right here
        if not getattr(self.loop, "_ready", True):
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

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` on this host is alive (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that nobody reaped yet is a zombie: dead for our purposes
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
