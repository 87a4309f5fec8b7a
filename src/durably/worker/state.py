"""What every part of a worker shares: its identity, the executions it runs, its wake-ups, and
the few acts they all need (release a workflow, say why one was lost)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from durably.codec import Codec, codec_for
from durably.definitions import Registry
from durably.engine import Execution
from durably.errors import DurablyError
from durably.serialization import Serializer
from durably.storage.base import Ended, Store, WorkflowRecord, WriteOp
from durably.storage.committer import GroupCommitter
from durably.worker.log import lease_loss
from durably.worker.options import WorkerOptions
from durably.worker.runtime import WorkerRuntime

__all__ = ["Stopping", "WorkerState", "log"]

log = logging.getLogger("durably.worker")


class Stopping(DurablyError):
    """Halt reason of the executions of a stopping worker (and of an execution's leftovers)."""

    code = "worker_stopping"


class WorkerState:
    """The state of one worker, and the helpers its parts share."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        serializer: Serializer | Codec,
        options: WorkerOptions,
        *,
        on_finished: Callable[[Ended], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.clock = clock
        self.registry = registry
        self.codec = codec_for(serializer)
        self.options = options
        self.hostname = socket.gethostname()
        self.id = f"{self.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._on_finished = on_finished
        self.active: dict[str, Execution] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finishing: set[str] = set()
        self._telling: set[asyncio.Task[None]] = set()  # logging why workflows were lost
        self._queue_of: dict[str, str] = {}
        """Queue of each workflow in ``active``."""
        self._in_queue: dict[str, int] = {}
        """Workflows in progress here, per queue."""
        self._registered_queues: list[str] = []
        self._backlog = True
        """Whether the last claim took all it asked for (more work may be waiting)."""
        self._suspects: set[str] = set()
        self.claiming = False
        self._committer: GroupCommitter | None = None
        self.runtime: WorkerRuntime | None = None
        """The engine's runtime here, once serving."""
        self._on_write: Callable[[WriteOp], None] | None = None
        """Internal, for tests only (:mod:`durably.crash_safety`): set before the worker
        starts, called with each write op of its executions as it is submitted."""
        self._adopting = 0
        self._adopt_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._poke: asyncio.Event | None = None
        self._posted = False
        self._poke_wanted = False
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._started_at = 0.0
        self.listening = False
        """Whether the store pushes wake-ups to this worker (then polling is a slow fallback)."""
        self.poll_interval = options.poll_interval
        """The effective poll interval (see :attr:`WorkerOptions.poll_interval`)."""

    @property
    def committer(self) -> GroupCommitter | None:
        """This worker's group committer while it serves (any thread may write through it)."""
        return self._committer

    def serves(self, record: WorkflowRecord) -> bool:
        """Whether this worker runs workflows of ``record``'s name, queue and version (see
        :class:`~durably.storage.base.VersionClaim`)."""
        wf = self.registry.workflows.get(record.name)
        if wf is None:
            return False
        mine = self.registry.version
        if not (mine is None or record.version in (None, mine) or wf.versioning == "auto_upgrade"):
            return False
        if self.options.queues is not None:
            return record.queue in self.options.queues
        return self.registry.serves_queue(record.queue)

    def queue_names(self) -> list[str]:
        """The queues served: :attr:`WorkerOptions.queues`, or ``default`` and every queue of
        the App (:meth:`Registry.queue_names`; looked up each time: a queue defined or adopted
        later is served too)."""
        if self.options.queues is not None:
            return list(self.options.queues)
        return self.registry.queue_names()

    def runs_unfinished(self, workflow_id: str) -> bool:
        """Whether ``workflow_id`` runs here and is not finishing (thread-safe snapshot)."""
        return workflow_id in self.active and workflow_id not in self._finishing

    def busy(self) -> bool:
        """Whether any workflow is running here or being claimed (thread-safe snapshot)."""
        return self.claiming or bool(self.active)

    def _busy(self) -> int:
        """Places taken: workflows running here, being adopted, or parking (not yet written)."""
        runtime = self.runtime
        return len(self.active) + self._adopting + (0 if runtime is None else runtime.parking)

    def _alone(self) -> bool:
        """Whether at most one execution runs here (the runtime commits its writes in place
        when the writer is idle)."""
        return len(self.active) <= 1

    # -- wake-ups ----------------------------------------------------------------------------

    def notify(self) -> None:
        """Tell the worker new work or signals (events, commands) may be ready (thread-safe)."""
        self._post(poke=True)

    def _wake_claims(self) -> None:
        """Run a claim pass (thread-safe): after a park, to schedule the parked timer."""
        self._post(poke=False)

    def _post(self, *, poke: bool) -> None:
        # many posts before the loop runs the first share one cross-thread wake-up (each
        # call_soon_threadsafe writes to the loop's self-pipe and wakes it)
        loop = self._loop
        if loop is None:
            return
        if poke:
            self._poke_wanted = True
        if self._posted:
            return
        self._posted = True
        try:
            loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop is closed
            self._posted = False

    def _deliver(self) -> None:
        self._posted = False  # before reading what was asked: a later post schedules anew
        if self._wake is not None:
            self._wake.set()
        if self._poke_wanted:
            self._poke_wanted = False
            if self._poke is not None:
                self._poke.set()

    # -- shared acts -------------------------------------------------------------------------

    async def _why_lost(self, wid: str) -> tuple[int, str, str]:
        """:func:`durably.worker.log.lease_loss` of ``wid``, from its record read now."""
        try:
            rec, known = await asyncio.to_thread(self.store.get_workflow, wid), True
        except Exception:
            rec, known = None, False
        return lease_loss(self.id, wid, rec, known)

    async def _release(self, ctx: Execution) -> None:
        try:
            await asyncio.to_thread(self.store.release, ctx.owner, [ctx.workflow_id])
        except Exception as exc:
            log.warning("workflow %s: could not release: %s", ctx.workflow_id, exc)
        if self._wake is not None:  # runnable again: any worker, this one too, may take it
            self._wake.set()

    def _limited_queue(self, name: str | None) -> bool:
        queue = None if name is None else self.registry.queue(name)
        return queue is not None and queue.limited
