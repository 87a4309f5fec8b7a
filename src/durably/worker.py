"""The worker: claims runnable workflows, holds their leases, and runs them on one event loop.

A worker is one process's engine host. It registers itself in the workers table, claims
workflows it serves under a lease (renewed in bulk by a heartbeat), runs each claimed workflow
with the replay engine, and writes through one group-committing writer. On start, and on every
heartbeat, it expires at once the leases of dead worker processes on its own host, so a worker
restarted after ``kill -9`` resumes their workflows immediately; leases of other hosts' workers
are taken over when they expire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from durably.codec import Codec, codec_for
from durably.definitions import Registry, Workflow
from durably.engine import Outcome, WorkflowContext, execute
from durably.engine.waits import Parked
from durably.errors import DurablyError, LeaseLostError
from durably.queues import DEFAULT_QUEUE, defined_queue, defined_queues
from durably.results import Ended
from durably.serialization import Serializer
from durably.storage.base import (
    ClaimedWorkflow,
    ContinueAsNew,
    CreateWorkflow,
    FinishWorkflow,
    InboxEvent,
    QueueClaim,
    Store,
    WorkerInfo,
    WorkflowRecord,
    WorkflowStatus,
    WriteOp,
)
from durably.storage.committer import GroupCommitter
from durably.worker_log import lease_loss, log_bad_end
from durably.worker_options import WorkerOptions
from durably.worker_runtime import WorkerRuntime, pid_alive

__all__ = ["Worker", "WorkerOptions"]  # WorkerOptions lives in durably.worker_options

log = logging.getLogger("durably.worker")

STALE_WORKER_SECONDS = 3600.0
"""Registrations of workers silent for this long (died on another host) are deleted."""


class _Stopping(DurablyError):
    code = "worker_stopping"


class Worker:
    """Runs the workflows of a :class:`Registry` from a :class:`Store`."""

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
        self.active: dict[str, WorkflowContext] = {}
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
        self.listening = False
        """Whether the store pushes wake-ups to this worker (then polling is a slow fallback)."""
        self.poll_interval = options.poll_interval
        """The effective poll interval (see :attr:`WorkerOptions.poll_interval`)."""

    # -- lifecycle -------------------------------------------------------------------------------

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

    def start_here(self, record: WorkflowRecord) -> bool | None:
        """From any thread but the worker's: create ``record`` already claimed by this worker
        (epoch 1, leased) in its next group commit, and run it here: a start and a claim in one
        write. Returns whether it was created (False: the id exists), or None if this worker
        cannot take it (not serving, not its workflow, a limited queue, or full): then start
        it normally."""
        reserved = self._reserve(record)
        if reserved is None:
            return None
        owned, committer = reserved
        try:
            created = committer.write(CreateWorkflow(owned))
        except BaseException:
            self._unreserve()
            raise
        return self._adopt_when_written(owned, created)

    async def start_here_async(self, record: WorkflowRecord) -> bool | None:
        """:meth:`start_here` for a coroutine on any event loop but the worker's: waits for
        the group commit without a thread, so many concurrent starts share commits."""
        reserved = self._reserve(record)
        if reserved is None:
            return None
        owned, committer = reserved
        try:
            created = await committer.write_async(CreateWorkflow(owned))
        except BaseException:
            self._unreserve()
            raise
        return self._adopt_when_written(owned, created)

    @property
    def committer(self) -> GroupCommitter | None:
        """This worker's group committer while it serves (any thread may write through it)."""
        return self._committer

    def _reserve(self, record: WorkflowRecord) -> tuple[WorkflowRecord, GroupCommitter] | None:
        """Count a place for ``record`` (so that capacity is never exceeded) and return it as
        owned by this worker, with the committer to create it through; None if this worker
        cannot take it."""
        loop, stopping, committer = self._loop, self._stopping, self._committer
        if loop is None or stopping is None or stopping.is_set() or committer is None:
            return None
        if not self.serves(record):
            return None
        queue = defined_queue(record.queue)
        if queue is not None and queue.limited:
            return None  # a limited queue admits it in a claim, where its limits are checked
        with self._adopt_lock:  # counted until spawned, so that capacity is never exceeded
            if self._busy() >= self.options.max_concurrent:
                return None
            self._adopting += 1
        now = self.clock()
        owned = dataclasses.replace(
            record, status=WorkflowStatus.RUNNING, owner=self.id, epoch=1,
            lease_expires_at=now + self.options.lease_seconds, started_at=now,
        )  # fmt: skip
        return owned, committer

    def _busy(self) -> int:
        """Places taken: workflows running here, being adopted, or parking (not yet written)."""
        runtime = getattr(self, "runtime", None)  # set once serving
        return len(self.active) + self._adopting + (0 if runtime is None else runtime.parking)

    def _unreserve(self) -> None:
        with self._adopt_lock:
            self._adopting -= 1

    def _adopt_when_written(self, owned: WorkflowRecord, created: bool) -> bool:
        """After the creation committed: run it here if it was created, else free the place."""
        loop = self._loop
        if not created or loop is None:
            self._unreserve()
            return created
        try:
            loop.call_soon_threadsafe(self._adopt, ClaimedWorkflow(owned))
        except RuntimeError:  # the loop closed meanwhile: shutdown releases the lease
            self._unreserve()
        return True

    def serves(self, record: WorkflowRecord) -> bool:
        """Whether this worker runs workflows of ``record``'s name and queue."""
        return record.name in self.registry.workflows and record.queue in self.queue_names()

    def queue_names(self) -> list[str]:
        """The queues served: :attr:`WorkerOptions.queues`, or ``default`` and every Queue
        defined in this process (looked up each time: a queue defined later is served too)."""
        if self.options.queues is not None:
            return list(self.options.queues)
        return [DEFAULT_QUEUE, *(q for q in defined_queues() if q != DEFAULT_QUEUE)]

    def _queue_claims(self) -> list[QueueClaim]:
        claims = []
        for name in self.queue_names():
            queue = defined_queue(name)
            in_progress = self._in_queue.get(name, 0)
            claims.append(QueueClaim(name) if queue is None else queue.claim(in_progress))
        return claims

    def _adopt(self, claim: ClaimedWorkflow) -> None:
        with self._adopt_lock:
            self._adopting -= 1
        self._spawn(claim)

    def runs_unfinished(self, workflow_id: str) -> bool:
        """Whether ``workflow_id`` runs here and is not finishing (thread-safe snapshot)."""
        return workflow_id in self.active and workflow_id not in self._finishing

    def busy(self) -> bool:
        """Whether any workflow is running here or being claimed (thread-safe snapshot)."""
        return self.claiming or bool(self.active)

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

    # -- serving -------------------------------------------------------------------------------

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
            parked=self._wake_claims,
        )  # fmt: skip
        self._started_at = time.time()
        await asyncio.to_thread(self._register)
        try:
            await asyncio.to_thread(self._expire_dead_local_workers)
        except Exception as exc:  # the heartbeat tries again within a second
            log.warning("worker %s could not expire dead workers' leases: %s", self.id, exc)
        unlisten = await self._listen()
        committer.start()
        heartbeat = loop.create_task(self._heartbeat_loop())
        signals = loop.create_task(self._signals_loop())
        self._ready.set()
        try:
            await self._claim_loop()
        finally:
            heartbeat.cancel()
            signals.cancel()
            if unlisten is not None:
                await asyncio.to_thread(unlisten)
            await self._shutdown(committer)
            step_pool.shutdown(wait=False, cancel_futures=True)
            wf_pool.shutdown(wait=False, cancel_futures=True)

    def _register(self) -> None:
        """Insert or refresh this worker's registration (names and queues it serves)."""
        queues = self.queue_names()
        now = time.time()
        info = WorkerInfo(
            self.id, self.hostname, os.getpid(), self._started_at, now,
            sorted(self.registry.workflows), queues,
        )  # fmt: skip
        self.store.register_worker(info)
        self._registered_queues = queues

    async def _listen(self) -> Callable[[], None] | None:
        """Subscribe to the store's wake-ups, if it pushes them; then poll only slowly."""

        def woken(kind: str) -> None:
            self.notify()

        try:
            unlisten = await asyncio.to_thread(self.store.listen, woken)
        except Exception as exc:
            log.warning("worker %s cannot listen for wake-ups, polling: %s", self.id, exc)
            unlisten = None
        self.listening = unlisten is not None
        opts = self.options
        self.poll_interval = (
            max(opts.poll_interval, opts.listen_poll_interval)
            if self.listening
            else opts.poll_interval
        )
        return unlisten

    async def _next_wake(self, names: list[str], queues: list[QueueClaim]) -> float:
        """Seconds to sleep after an idle claim pass: until the earliest timer of an unowned
        workflow is due, or the poll interval, whichever is sooner."""
        poll = self.poll_interval
        try:
            at = await asyncio.to_thread(self.store.next_wake_at, names, queues)
        except Exception as exc:
            log.warning("worker %s could not read its next wake-up: %s", self.id, exc)
            return poll
        if at is None:
            return poll
        # due now but not claimed (another worker's claim holds it, or it raced our claim):
        # look again soon, not in a busy loop
        return min(poll, max(at - self.clock() + 0.001, 0.02))

    async def _shutdown(self, committer: GroupCommitter) -> None:
        self._committer = None
        for ctx in list(self.active.values()):
            ctx.halt(_Stopping(f"worker {self.id} is stopping", workflow_id=ctx.workflow_id))
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await asyncio.to_thread(committer.stop)
        try:
            await asyncio.to_thread(self.store.release, self.id)
            await asyncio.to_thread(self.store.remove_worker, self.id)
        except Exception as exc:  # leases expire on their own
            log.warning("worker %s could not release its leases: %s", self.id, exc)

    def _expire_dead_local_workers(self) -> int:
        workers = self.store.list_workers()
        stale = time.time() - STALE_WORKER_SECONDS
        dead = [
            w.id
            for w in workers
            if w.id != self.id
            and ((w.hostname == self.hostname and not pid_alive(w.pid)) or w.heartbeat_at < stale)
        ]
        if dead:
            n = self.store.expire_leases(dead)
            for worker_id in dead:
                self.store.remove_worker(worker_id)
            log.info("expired %d lease(s) of dead or long-silent worker(s) %s", n, dead)
            return n
        return 0

    async def _claim_loop(self) -> None:
        assert self._wake is not None and self._stopping is not None
        opts = self.options
        names = sorted(self.registry.workflows)
        while not self._stopping.is_set():
            self._wake.clear()
            free = opts.max_concurrent - self._busy()
            want = min(free, opts.claim_batch)
            queues = self._queue_claims()
            if want > 0 and names:
                self.claiming = True
                try:
                    claims = await asyncio.to_thread(
                        self.store.claim, self.id, names, self.clock(), opts.lease_seconds, want,
                        queues,
                    )  # fmt: skip
                except Exception as exc:
                    log.warning("worker %s could not claim work: %s", self.id, exc)
                    claims = []
                    await asyncio.sleep(self.poll_interval)
                for claim in claims:
                    if self._stopping.is_set():
                        break
                    self._spawn(claim)
                self.claiming = False
                self._backlog = len(claims) == want
                if self._backlog:
                    continue
            # full: a finishing workflow sets _wake; idle: sleep until the next timer is due
            if want > 0 and names:
                timeout = await self._next_wake(names, queues)
                if any(q.limited for q in queues):  # admissions there wait on other workers
                    timeout = min(timeout, opts.poll_interval)
            else:
                timeout = self.poll_interval
            if self._wake.is_set() or self._stopping.is_set():
                continue
            wake = asyncio.ensure_future(self._wake.wait())
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({wake, stop}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            wake.cancel()
            stop.cancel()

    async def _heartbeat_loop(self) -> None:
        interval = min(self.options.lease_seconds / 4, 1.0)
        while True:
            await asyncio.sleep(interval)
            snapshot = dict(self.active)
            try:
                owned = await asyncio.to_thread(
                    self.store.renew_leases, self.id, self.clock() + self.options.lease_seconds
                )
                if self.queue_names() != self._registered_queues:
                    await asyncio.to_thread(self._register)  # a Queue was defined since
                else:
                    await asyncio.to_thread(self.store.heartbeat_worker, self.id, time.time())
                if await asyncio.to_thread(self._expire_dead_local_workers) and self._wake:
                    self._wake.set()  # their workflows are claimable now: take them at once
            except Exception as exc:
                log.warning("worker %s heartbeat failed: %s", self.id, exc)
                continue
            # ours but not running here on two heartbeats in a row (a release that failed):
            # let them go; one heartbeat is not enough, a claim may be about to spawn them
            suspects = owned - set(self.active) - self._finishing
            orphans, self._suspects = suspects & self._suspects, suspects
            if orphans:
                try:
                    await asyncio.to_thread(self.store.release, self.id, sorted(orphans))
                except Exception as exc:
                    log.warning("worker %s could not release %s: %s", self.id, orphans, exc)
            lost = []
            for wid, ctx in snapshot.items():
                if wid not in owned and wid not in self._finishing and self.active.get(wid) is ctx:
                    ctx.halt(
                        LeaseLostError(
                            f"workflow {wid!r}: lease lost by {self.id}", workflow_id=wid
                        )
                    )
                    lost.append(wid)
            if lost:  # why, read and logged aside: the heartbeat must not wait for it
                task = asyncio.create_task(self._say_why_lost(lost))
                self._telling.add(task)
                task.add_done_callback(self._telling.discard)

    async def _say_why_lost(self, workflow_ids: list[str]) -> None:
        """Log why each of these workflows is no longer this worker's: taken by a command
        (INFO) or by another worker (WARNING)."""
        for wid in workflow_ids:
            level, message, _ = await self._why_lost(wid)
            log.log(level, "%s", message)

    async def _signals_loop(self) -> None:
        """Deliver new events, finished children and cancel requests to live workflows."""
        assert self._poke is not None
        while True:
            try:
                await asyncio.wait_for(self._poke.wait(), self.poll_interval)
            except TimeoutError:
                pass
            self._poke.clear()
            ids = list(self.active)
            if not ids:
                continue
            try:
                signals = await asyncio.to_thread(self.store.poll_signals, ids, 0)
            except Exception as exc:
                log.warning("worker %s could not poll signals: %s", self.id, exc)
                continue
            by_workflow: dict[str, list[InboxEvent]] = {}
            for event in signals.events:
                by_workflow.setdefault(event.workflow_id, []).append(event)
            for wid, ctx in list(self.active.items()):
                waits = ctx.waits
                if wid in by_workflow:
                    waits.add_events(by_workflow[wid])
                if wid in signals.children:
                    waits.add_children(signals.children[wid])
                if wid in signals.cancel_requested:
                    waits.request_cancel()

    def _spawn(self, claim: ClaimedWorkflow) -> None:
        rec = claim.record
        wf = self.registry.workflows[rec.name]
        old = self.active.get(rec.id)
        if old is not None:  # we claimed it again after losing it: the old run must stop
            old.halt(LeaseLostError(f"workflow {rec.id!r} reclaimed", workflow_id=rec.id))
        ctx = WorkflowContext(
            workflow_id=rec.id,
            workflow_name=rec.name,
            owner=self.id,
            epoch=rec.epoch,
            journal={e.seq: e for e in claim.journal},
            runtime=self.runtime,
            is_async=wf.is_async,
            run=rec.run,
            inbox=claim.events,
            children=claim.children,
            cancel_requested=rec.cancel_requested,
            cancel_key=rec.cancel_key,
        )
        self.active[rec.id] = ctx
        if old is None:
            self._queue_of[rec.id] = rec.queue
            self._in_queue[rec.queue] = self._in_queue.get(rec.queue, 0) + 1
        assert self._loop is not None
        self._tasks[rec.id] = self._loop.create_task(self._run(ctx, wf, rec.input))

    async def _run(self, ctx: WorkflowContext, wf: Workflow[Any, Any], encoded_input: str) -> None:
        wid = ctx.workflow_id
        try:
            outcome = await execute(ctx, wf, encoded_input)
            await self._finish(ctx, outcome)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("workflow %s: engine error; releasing it", wid)
            await self._release(ctx)
        finally:
            # stray branches (e.g. of an asyncio.gather the workflow left) must not write on
            ctx.end(lambda: _Stopping(f"workflow {wid!r}: execution over", workflow_id=wid))
            if self.active.get(wid) is ctx:
                del self.active[wid]
                self._tasks.pop(wid, None)
                queue = self._queue_of.pop(wid, None)
                if queue is not None:
                    self._in_queue[queue] -= 1
            else:
                queue = None
            self._finishing.discard(wid)
            # a freed place matters if the last claim left work behind, or in a limited queue
            # (its next admission may be due); else the claim loop has nothing to take
            if self._wake is not None and (self._backlog or self._limited_queue(queue)):
                self._wake.set()

    async def _finish(self, ctx: WorkflowContext, outcome: Outcome) -> None:
        wid = ctx.workflow_id
        if outcome.status is None:
            reason = outcome.reason
            if isinstance(reason, Parked):
                return
            said: object = reason
            if isinstance(reason, LeaseLostError):
                level, _, why = await self._why_lost(wid)
                if level == logging.INFO:  # a command took it: say so, not "lease lost"
                    said = why
            log.info("workflow %s: execution stopped: %s", wid, said)
            if not isinstance(reason, LeaseLostError):  # still ours: let it resume
                await self._release(ctx)
            return
        self._finishing.add(wid)
        op: WriteOp
        if outcome.status is WorkflowStatus.CONTINUED_AS_NEW:
            assert outcome.next_input is not None
            op = ContinueAsNew(
                wid, ctx.owner, ctx.epoch, outcome.next_input, outcome.output, self.clock()
            )
        else:
            op = FinishWorkflow(
                wid, ctx.owner, ctx.epoch, outcome.status, outcome.output, outcome.error,
                self.clock(),
            )  # fmt: skip
        try:
            applied = await self.runtime.commit(op)
        except Exception as exc:
            log.warning("workflow %s: could not record its outcome: %s", wid, exc)
            await self._release(ctx)
            return
        if not applied:
            level, message, _ = await self._why_lost(wid)
            log.log(level, "workflow %s: outcome not recorded: %s", wid, message)
            return
        if isinstance(op, ContinueAsNew):
            self.notify()
            return
        log_bad_end(wid, ctx.workflow_name, op.status, op.error, ctx.runtime.codec.view_error)
        if self._on_finished is not None:
            self._on_finished(Ended(wid, ctx.workflow_name, op.status, op.output, op.error))

    async def _why_lost(self, wid: str) -> tuple[int, str, str]:
        """:func:`durably.worker_log.lease_loss` of ``wid``, from its record read now."""
        try:
            rec, known = await asyncio.to_thread(self.store.get_workflow, wid), True
        except Exception:
            rec, known = None, False
        return lease_loss(self.id, wid, rec, known)

    async def _release(self, ctx: WorkflowContext) -> None:
        try:
            await asyncio.to_thread(self.store.release, ctx.owner, [ctx.workflow_id])
        except Exception as exc:
            log.warning("workflow %s: could not release: %s", ctx.workflow_id, exc)
        if self._wake is not None:  # runnable again: any worker, this one too, may take it
            self._wake.set()

    @staticmethod
    def _limited_queue(name: str | None) -> bool:
        queue = None if name is None else defined_queue(name)
        return queue is not None and queue.limited
