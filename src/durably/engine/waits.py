"""Durable waits: timers, event waits and child workflows, plus cancellation and parking.

A wait that is not satisfied blocks its branch on a future. When every branch of a workflow is
blocked on durable waits and no step is running, the workflow is idle. An idle workflow whose
next timer is further away than the eviction threshold (or that has been idle that long) is
parked: its lease is released with ``wake_at`` set to its next timer (or "never" when only an
event or a child can wake it), its coroutine or thread is unwound, and it is replayed from its
journal when it is claimed again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from durably.definitions import Workflow
from durably.engine.runtime import Runtime
from durably.errors import (
    Cancelled,
    ChildWorkflowFailed,
    DurablyError,
    EventTimeoutError,
    WorkflowIdConflictError,
)
from durably.scope import NO_DEFAULT, WorkflowAborted
from durably.storage.base import (
    FAR_FUTURE,
    ChildOutcome,
    ConsumeEvent,
    DeliverCancel,
    InboxEvent,
    JournalEntry,
    Park,
    RecordEntry,
    SetState,
    StartChild,
    WorkflowRecord,
    WorkflowStatus,
    WriteOp,
)

__all__ = ["Parked", "WaitingExecution", "Waits"]


class WaitingExecution(Protocol):
    """What :class:`Waits` uses of its execution: an :class:`~durably.engine.execution.Execution`,
    which owns its Waits (the Protocol keeps the import one way), subclasses it and takes
    :meth:`new_entry` from it."""

    workflow_id: str
    owner: str
    epoch: int
    run: int
    version: str | None
    runtime: Runtime
    journal: dict[int, JournalEntry]
    keys: dict[int, str]
    halted: BaseException | None

    def halt(self, reason: BaseException) -> None: ...

    def track(self, fut: concurrent.futures.Future[Any]) -> None: ...

    def on_written(self, applied: bool | BaseException) -> None: ...

    def take(self, kind: str, name: str) -> tuple[int, JournalEntry | None]: ...

    def new_entry(
        self,
        seq: int,
        kind: str,
        name: str,
        status: str,
        result: str | None,
        error: str | None = None,
    ) -> JournalEntry:
        """A journal entry of this execution, stamped now."""
        t = self.runtime.time()
        return JournalEntry(
            self.workflow_id, seq, kind, name, status, result, error, 1, self.owner, self.epoch,
            t, t, self.keys[seq],
        )  # fmt: skip

    def record_value(self, seq: int, kind: str, name: str, encoded: str) -> None: ...

    async def commit_op(self, op: WriteOp) -> None: ...


class Parked(DurablyError):
    """Halt reason of an execution that was unwound because it is waiting (not an error)."""

    code = "parked"


@dataclass(slots=True)
class _Wait:
    seq: int
    kind: str
    name: str
    deadline: float | None
    future: asyncio.Future[None]
    events: tuple[str, ...] = ()
    """The names of the events that wake it."""
    children: tuple[str, ...] = ()
    """The ids of the children whose end wakes it."""
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class Waits:
    """The wait bookkeeping of one execution (everything runs on its loop)."""

    ctx: WaitingExecution
    inbox: list[InboxEvent] = field(default_factory=list)
    children: dict[str, ChildOutcome] = field(default_factory=dict)
    cancel_pending: bool = False
    cancel_key: str | None = None
    cancel_raised: bool = False
    active_steps: int = 0
    blocked: dict[int, _Wait] = field(default_factory=dict)
    seen_events: set[int] = field(default_factory=set)
    _idle_generation: int = 0
    _idle_timer: asyncio.TimerHandle | None = None
    _check_scheduled: bool = False

    # -- signals from the worker (on the loop) -------------------------------------------------

    def add_events(self, events: list[InboxEvent]) -> None:
        """New unconsumed events for this workflow: wake its event waits."""
        fresh = [e for e in events if e.id not in self.seen_events]
        if not fresh:
            return
        for e in fresh:
            self.seen_events.add(e.id)
        self.inbox.extend(fresh)
        self.inbox.sort(key=lambda e: e.id)
        self._wake(lambda w: bool(w.events))

    def add_children(self, outcomes: list[ChildOutcome]) -> None:
        """Children that finished: wake the waits on them."""
        new = {o.id: o for o in outcomes if o.id not in self.children}
        if new:
            self.children.update(new)
            self._wake(lambda w: any(c in new for c in w.children))

    def request_cancel(self) -> None:
        """A cancellation was requested: raise it at the next durable point."""
        if self.cancel_pending or self.cancel_key is not None:
            return
        self.cancel_pending = True
        if self.blocked:
            first = self.blocked[min(self.blocked)]
            if not first.future.done():
                first.future.set_exception(_CancelSignal())

    def _wake(self, which: Any) -> None:
        for w in list(self.blocked.values()):
            if which(w) and not w.future.done():
                w.future.set_result(None)

    # -- cancellation --------------------------------------------------------------------------

    def deliver_cancel_if_pending(self, seq: int, live: bool = True) -> None:
        """A point where a cancellation may be raised: the durable call ``seq`` is about to
        run a step or block on a wait (``live``), or is replayed through (not ``live``).

        Raises the cancellation recorded at this call (on replay, once), or a pending one if
        ``live`` (recording where it was raised, so that a replay raises it at the same call).
        """
        ctx = self.ctx
        key = ctx.keys[seq]
        if self.cancel_key == key and not self.cancel_raised:
            self.cancel_raised = True
            raise Cancelled(
                f"workflow {ctx.workflow_id!r} was cancelled", workflow_id=ctx.workflow_id
            )
        if not (live and self.cancel_pending):
            return
        self.cancel_pending = False
        self.cancel_key = key
        self.cancel_raised = True
        ctx.runtime.record(
            DeliverCancel(ctx.workflow_id, ctx.owner, ctx.epoch, key), ctx.on_written
        )
        raise Cancelled(f"workflow {ctx.workflow_id!r} was cancelled", workflow_id=ctx.workflow_id)

    # -- blocking ------------------------------------------------------------------------------

    async def block(
        self,
        seq: int,
        kind: str,
        name: str,
        deadline: float | None,
        child_id: str | None = None,
        *,
        events: tuple[str, ...] = (),
        children: tuple[str, ...] = (),
    ) -> None:
        """Wait until woken (an event, a child, the deadline) or cancelled; may be parked.

        An ``"event"`` wait is woken by events named ``name``, one with a ``child_id`` by that
        child's end; ``events`` and ``children`` add more (a wait on several things at once)."""
        self.deliver_cancel_if_pending(seq)
        ctx = self.ctx
        loop = ctx.runtime.loop
        if kind == "event":
            events = (name, *events)
        if child_id is not None:
            children = (child_id, *children)
        w = _Wait(seq, kind, name, deadline, loop.create_future(), events, children)
        if deadline is not None:
            delay = max(0.0, deadline - ctx.runtime.time())
            w.timer = loop.call_later(delay, _resolve, w.future)
        self.blocked[seq] = w
        self.changed()
        try:
            await w.future
        except _CancelSignal:
            self.deliver_cancel_if_pending(seq)
        finally:
            if w.timer is not None:
                w.timer.cancel()
            self.blocked.pop(seq, None)
            self.changed()

    def step_started(self) -> None:
        """A step began executing: the workflow is not idle."""
        self.active_steps += 1
        self.changed()

    def step_finished(self) -> None:
        """A step finished executing."""
        self.active_steps -= 1
        self.changed()

    def changed(self) -> None:
        """Something that decides idleness changed: re-check it soon (coalesced)."""
        self._idle_generation += 1
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if not self.blocked:  # idle needs a blocked wait; blocking calls changed() itself
            return
        if not self._check_scheduled:
            self._check_scheduled = True
            self.ctx.runtime.loop.call_soon(self._check_idle)

    def _check_idle(self) -> None:
        self._check_scheduled = False
        ctx = self.ctx
        if ctx.halted is not None or not self._idle():
            return
        threshold = ctx.runtime.eviction_threshold
        deadlines = [w.deadline for w in self.blocked.values() if w.deadline is not None]
        remaining = (min(deadlines) - ctx.runtime.time()) if deadlines else None
        if remaining is not None and remaining <= threshold and threshold > 0:
            return  # its timer fires soon: stay in memory
        only_timers = all(not w.events and not w.children for w in self.blocked.values())
        if only_timers or threshold <= 0:
            self.park()
            return
        generation = self._idle_generation
        self._idle_timer = ctx.runtime.loop.call_later(
            threshold, self._park_if_still_idle, generation
        )

    def _park_if_still_idle(self, generation: int) -> None:
        self._idle_timer = None
        if generation == self._idle_generation and self._idle():
            self.park()

    def _idle(self) -> bool:
        """No step or commit running, and every branch blocked on a wait nothing woke yet (a
        woken one resumes soon, and re-checks when it blocks again)."""
        waits = self.blocked.values()
        return not self.active_steps and bool(waits) and not any(w.future.done() for w in waits)

    def park(self) -> None:
        """Unwind this execution and release the workflow until its next wake-up."""
        ctx = self.ctx
        if ctx.halted is not None:
            return
        blocked = list(self.blocked.values())
        deadlines = [w.deadline for w in blocked if w.deadline is not None]
        op = Park(
            ctx.workflow_id, ctx.owner, ctx.epoch,
            wake_at=min(deadlines) if deadlines else FAR_FUTURE,
            now=ctx.runtime.time(),
            event_names=sorted({name for w in blocked for name in w.events}),
            child_ids=sorted({child for w in blocked for child in w.children}),
        )  # fmt: skip
        ctx.halt(Parked(f"workflow {ctx.workflow_id!r} is waiting", workflow_id=ctx.workflow_id))
        ctx.runtime.record(op, None)

    def run_blocking(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Sync workflows: run a wait coroutine on the loop and block this thread for it."""
        ctx = self.ctx
        fut = asyncio.run_coroutine_threadsafe(coro, ctx.runtime.loop)
        ctx.track(fut)
        try:
            return fut.result()
        except concurrent.futures.CancelledError:
            raise WorkflowAborted() from None

    # -- timers --------------------------------------------------------------------------------

    def sleep_target(self, seconds: float | None, until: float | None) -> tuple[int, float]:
        """Take the seq of a sleep (``seconds`` from now, or ``until`` a Unix time) and return
        (seq, its wake time), recording the wake time the first time."""
        ctx = self.ctx
        seq, entry = ctx.take("sleep", "sleep")
        if entry is not None:
            codec = ctx.runtime.codec
            return seq, float(codec.decode(entry.result or "0", float, what="sleep's wake time"))
        wake_at = until if until is not None else ctx.runtime.time() + max(0.0, seconds or 0.0)
        encoded = ctx.runtime.codec.encode(float(wake_at), what="sleep's wake time")
        ctx.record_value(seq, "sleep", "sleep", encoded)
        return seq, wake_at

    async def sleep_until(self, seq: int, wake_at: float) -> None:
        """Wait for the timer at ``seq``."""
        self.deliver_cancel_if_pending(seq, live=self.ctx.runtime.time() < wake_at)
        while self.ctx.runtime.time() < wake_at:
            await self.block(seq, "sleep", "sleep", wake_at)

    # -- events --------------------------------------------------------------------------------

    def event_target(self, name: str, timeout: float | None) -> tuple[int, JournalEntry]:
        """Take the seq of an event wait; the first time, record its deadline."""
        ctx = self.ctx
        seq, entry = ctx.take("event", name)
        if entry is None:
            deadline = None if timeout is None else ctx.runtime.time() + max(0.0, timeout)
            waiting = ctx.runtime.codec.encode({"deadline": deadline}, what="event deadline")
            entry = ctx.new_entry(seq, "event", name, "waiting", waiting)
            ctx.runtime.record(RecordEntry(entry), ctx.on_written)
        return seq, entry

    async def wait_event(
        self, seq: int, entry: JournalEntry, timeout: float | None, default: Any = NO_DEFAULT
    ) -> Any:
        """The payload of the next ``entry.name`` event; once its deadline passed, ``default``
        (or :class:`EventTimeoutError` if it is ``NO_DEFAULT``).

        The journal tells the two apart, on every replay: a received event's entry holds its
        payload's JSON (``"null"`` for an event sent with no payload), a timeout's holds none.
        """
        ctx = self.ctx
        if entry.status != "waiting":
            if entry.result is None:
                return self._timed_out(entry.name, timeout, default)
            return ctx.runtime.codec.decode(entry.result)
        recorded = ctx.runtime.codec.decode(entry.result or "{}", what="event deadline")
        deadline = recorded.get("deadline") if isinstance(recorded, dict) else None
        while True:
            self.deliver_cancel_if_pending(seq)
            event = next((e for e in self.inbox if e.name == entry.name), None)
            if event is not None:
                self.inbox.remove(event)
                payload = event.payload
                if payload is None:
                    payload = ctx.runtime.codec.encode(
                        None, what=f"payload of event {entry.name!r}"
                    )
                done = ctx.new_entry(seq, "event", entry.name, "completed", payload)
                await ctx.commit_op(ConsumeEvent(done, event.id))
                ctx.journal[seq] = done
                return ctx.runtime.codec.decode(payload)
            if deadline is not None and ctx.runtime.time() >= deadline:
                done = ctx.new_entry(seq, "event", entry.name, "completed", None)
                await ctx.commit_op(RecordEntry(done))
                ctx.journal[seq] = done
                return self._timed_out(entry.name, timeout, default)
            await self.block(seq, "event", entry.name, deadline)

    def _timed_out(self, name: str, timeout: float | None, default: Any) -> Any:
        """``default`` for an event wait whose timeout passed, or its EventTimeoutError."""
        if default is not NO_DEFAULT:
            return default
        wid = self.ctx.workflow_id
        waited = "its timeout" if timeout is None else f"{timedelta(seconds=timeout)}"
        raise EventTimeoutError(
            f"no event {name!r} reached workflow {wid!r} within {waited}; catch "
            "durably.EventTimeoutError to act on the timeout, or pass default=... to "
            "wait_event to receive that value instead",
            workflow_id=wid,
            event=name,
            timeout=timeout,
        )

    # -- published state -----------------------------------------------------------------------

    def set_state(self, key: str, value: Any) -> None:
        """Publish ``key = value`` (journaled; readable from outside with handle.state())."""
        ctx = self.ctx
        seq, entry = ctx.take("state", key)
        if entry is not None:
            return
        encoded = ctx.runtime.codec.encode(
            value, what=f"state {key!r}", workflow_id=ctx.workflow_id
        )
        ctx.record_value(seq, "state", key, encoded)
        ctx.runtime.record(
            SetState(ctx.workflow_id, ctx.owner, ctx.epoch, key, encoded, seq, ctx.runtime.time()),
            ctx.on_written,
        )

    # -- child workflows -----------------------------------------------------------------------

    def start_child(
        self,
        wf: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        child_id: str | None,
    ) -> tuple[int, str]:
        """Take the seq of a child start, start it the first time; return (seq, child id)."""
        ctx = self.ctx
        seq, entry = ctx.take("child", wf.name)
        if child_id is None:
            prefix = ctx.workflow_id if ctx.run == 1 else f"{ctx.workflow_id}:r{ctx.run}"
            child_id = f"{prefix}:{ctx.keys[seq]}"
        if entry is None:
            rt = ctx.runtime
            now = rt.time()
            encoded = rt.codec.encode_call(args, kwargs, workflow_id=child_id, name=wf.name)
            child = WorkflowRecord(
                id=child_id, name=wf.name, status=WorkflowStatus.PENDING, input=encoded,
                created_at=now, updated_at=now, parent_id=ctx.workflow_id, parent_seq=seq,
                version=ctx.version,
            )  # fmt: skip
            ref = rt.codec.encode({"id": child_id}, what="child reference")
            waiting = ctx.new_entry(seq, "child", wf.name, "waiting", ref)
            op = StartChild(child, waiting, self._conflict_entry(seq, wf.name, child_id))
            ctx.journal[seq] = waiting
            # not idle (so not parked) until the store said whether the id was free
            rt.loop.call_soon_threadsafe(self.step_started)
            rt.record(op, lambda applied: self._child_started(op, applied))
            rt.notify_new_work()
        return seq, child_id

    def _conflict_entry(
        self, seq: int, name: str, child_id: str
    ) -> Callable[[str, str | None], JournalEntry]:
        """What a start of child ``name`` at ``seq`` records if ``child_id`` is held by another
        workflow (given the holder's name and parent): a failed entry that fails every replay
        the same way."""
        ctx = self.ctx

        def conflict(holder: str, holder_parent: str | None) -> JournalEntry:
            if holder_parent is None:
                who = "a top-level workflow"
            elif holder_parent == ctx.workflow_id:
                who = "another child of this workflow"
            else:
                who = f"a child of workflow {holder_parent!r}"
            error = {
                "type": "WorkflowIdConflictError",
                "message": (
                    f"workflow {ctx.workflow_id!r} could not start child workflow {name!r} "
                    f"with id {child_id!r}: that id is already held by {who} named {holder!r}, "
                    "so nothing was started. Pass start_child() another id, or omit id= for "
                    "one generated from the parent's id"
                ),
                "status": "not_started",
                "child_id": child_id,
                "existing_name": holder,
                "existing_parent": holder_parent,
            }
            error_text = ctx.runtime.codec.encode_error(error)
            return ctx.new_entry(seq, "child", name, "failed", None, error=error_text)

        return conflict

    def _child_started(self, op: StartChild, applied: bool | BaseException) -> None:
        """Callback (on any thread) of a child start's write: a rejected one halts the
        execution; an accepted one ends the wait for the store's answer, and a conflict fails
        the waits on that child."""
        if applied is not True:
            self.ctx.on_written(applied)
        try:
            self.ctx.runtime.loop.call_soon_threadsafe(self._child_start_done, op)
        except RuntimeError:  # the loop is closed: the execution is gone
            pass

    def _child_start_done(self, op: StartChild) -> None:
        self.step_finished()
        failed = op.conflicted
        if failed is not None and self.ctx.halted is None:
            self.ctx.journal[failed.seq] = failed
            self._wake(lambda w: op.child.id in w.children)

    async def child_result(self, seq: int, child_id: str, wf: Workflow[Any, Any]) -> Any:
        """Wait for child ``child_id`` (started at ``seq``) and return its result."""
        ctx = self.ctx
        while True:
            entry = ctx.journal.get(seq)
            if entry is not None and entry.status != "waiting":
                return self.child_value(entry, child_id, wf)
            self.deliver_cancel_if_pending(seq)
            outcome = self.children.get(child_id)
            if outcome is not None:
                if outcome.status is WorkflowStatus.COMPLETED:
                    done = ctx.new_entry(seq, "child", wf.name, "completed", outcome.output)
                else:
                    codec = ctx.runtime.codec
                    error = codec.decode_error(outcome.error) if outcome.error else {}
                    error["status"] = outcome.status.value
                    error["child_id"] = child_id
                    done = ctx.new_entry(
                        seq, "child", wf.name, "failed", None, error=codec.encode_error(error)
                    )
                await ctx.commit_op(RecordEntry(done))
                ctx.journal[seq] = done
                continue
            await self.block(seq, "child", wf.name, None, child_id)

    def child_value(self, entry: JournalEntry, child_id: str, wf: Workflow[Any, Any]) -> Any:
        """The result a resolved child entry records (or its ChildWorkflowFailed, raised)."""
        ctx = self.ctx
        if entry.status == "completed":
            return ctx.runtime.codec.decode(entry.result or "null", wf.return_hint)
        error = ctx.runtime.codec.decode_error(entry.error) if entry.error else {}
        status = error.get("status", "failed")
        if status == "not_started":  # its id was held by another workflow
            message = str(error.get("message"))
            cause = WorkflowIdConflictError(
                message, workflow_id=child_id, name=wf.name,
                existing_name=str(error.get("existing_name", "")),
            )  # fmt: skip
            raise ChildWorkflowFailed(
                message, workflow_id=ctx.workflow_id, child_id=child_id, status=status,
                error=error,
            ) from cause  # fmt: skip
        raise ChildWorkflowFailed(
            f"child workflow {child_id!r} ({wf.name}) of {ctx.workflow_id!r} ended {status}: "
            f"{error.get('type')}: {error.get('message')}",
            workflow_id=ctx.workflow_id,
            child_id=child_id,
            status=status,
            error=error,
        )


class _CancelSignal(Exception):
    """Wakes a blocked wait so that it raises the requested cancellation."""


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
