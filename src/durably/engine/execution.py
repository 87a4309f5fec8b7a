"""One execution of one workflow: its journal, its sequence counter, and its durable calls.

Every durable call is identified, when it is called, by a key (its branch and its index there;
see :mod:`durably.engine.branches`) and gets a sequence number (the order calls were first made
in). A call whose key has a journal entry returns the recorded result (after checking that the
entry is the same kind and name: otherwise the code has diverged and the workflow is halted with
:class:`NonDeterminismError`); the first call without an entry runs for real and is recorded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import random as _random
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from durably.definitions import Step, Workflow
from durably.engine import first_of, retries
from durably.engine.branches import Branch, branch_var
from durably.engine.calls import StepCall
from durably.engine.divergence import diverged
from durably.engine.failures import error_info, step_failed
from durably.engine.runtime import Runtime
from durably.engine.waits import WaitingExecution, Waits
from durably.errors import (
    DurablyError,
    LeaseLostError,
    StepTimeoutError,
)
from durably.scope import (
    ChildHandle,
    ContinueAsNewSignal,
    StepContext,
    StepFuture,
    WorkflowAborted,
    WorkflowScope,
    scope_var,
    step_var,
)
from durably.storage.base import (
    ChildOutcome,
    InboxEvent,
    JournalEntry,
    RecordAttempt,
    RecordEntry,
    StepAttempt,
    WriteOp,
)
from durably.waitables import Fired, Waitable

__all__ = ["Execution", "StoreWriteFailed"]


class StoreWriteFailed(DurablyError):
    """Halt reason: a write of this execution failed in the store (unreachable, locked...).

    Unlike a lost lease, the workflow is still ours: the worker releases it so that it resumes
    from its journal, here or elsewhere.
    """

    code = "store_write_failed"


_PLAIN = frozenset({int, str, bool, type(None)})
"""Result types that decode from their JSON as the very same value (floats may not: -0.0...)."""
_ENDED = WorkflowAborted()
"""``halted`` of an execution that ended with nothing left running (never raised)."""


class Execution(WorkflowScope, WaitingExecution):
    """The engine's state for one execution (one claim) of one workflow."""

    def __init__(
        self,
        *,
        workflow_id: str,
        workflow_name: str,
        owner: str,
        epoch: int,
        journal: dict[int, JournalEntry],
        runtime: Runtime,
        is_async: bool,
        run: int = 1,
        inbox: list[InboxEvent] | None = None,
        children: list[ChildOutcome] | None = None,
        cancel_requested: bool = False,
        cancel_key: str | None = None,
        version: str | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.version = version
        """The version the workflow started under: its children start under it too."""
        self.workflow_name = workflow_name
        self.owner = owner
        self.epoch = epoch
        """The claim: the worker ``owner`` holds the workflow's lease at ``epoch``, and every write
        of this execution is fenced on both (a stale one is refused: the lease was lost)."""
        self.journal = journal
        self.runtime = runtime
        self.is_async = is_async
        self.run = run
        self.by_key = {e.key or str(e.seq): e for e in journal.values()}
        self.next_seq = max(journal) + 1 if journal else 0
        self.keys: dict[int, str] = {}
        self.taken: set[str] = set()
        self.root = Branch()
        self.halted: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.waits = Waits(
            self,
            inbox=list(inbox or []),
            children={c.id: c for c in children or []},
            cancel_pending=cancel_requested and cancel_key is None,
            cancel_key=cancel_key,
            seen_events={e.id for e in inbox or []},
        )

    # -- signals from the host (on the loop) ----------------------------------------------------

    def deliver(
        self,
        *,
        events: list[InboxEvent] | None = None,
        children: list[ChildOutcome] | None = None,
        cancel: bool = False,
    ) -> None:
        """Hand this execution what arrived for it (on its loop): new events, finished
        children, a cancel request. Each wakes the waits it satisfies; repeats are ignored."""
        if events:
            self.waits.add_events(events)
        if children:
            self.waits.add_children(children)
        if cancel:
            self.waits.request_cancel()

    # -- halting -------------------------------------------------------------------------------

    def halt(self, reason: BaseException) -> None:
        """Stop this execution: nothing more is written, and the workflow code is unwound.

        Safe to call from any thread. The first reason wins.
        """
        if self.halted is not None:
            return
        self.halted = reason
        loop = self.runtime.loop
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:  # not on any event loop's thread
            on_loop = False
        if on_loop:
            if self.task is None or not self.task.done() or self._tasks or self._pending:
                loop.call_soon(self._cancel_all)  # no self-pipe write from the loop's thread
            return
        try:
            loop.call_soon_threadsafe(self._cancel_all)
        except RuntimeError:  # the loop is closed: nothing left to cancel
            pass

    def end(self, reason: Callable[[], BaseException]) -> None:
        """The execution is over (on the worker's loop): refuse any later write, and unwind
        the branches it left running (halted with ``reason()``, made only then)."""
        if self.halted is not None:
            return
        task = self.task
        if (task is None or task.done()) and not self._tasks and not self._pending:
            self.halted = _ENDED  # nothing left to unwind
            return
        self.halt(reason())

    def _cancel_all(self) -> None:
        if self.task is not None:
            self.task.cancel()
        for task in list(self._tasks):
            task.cancel()
        for fut in list(self._pending):
            fut.cancel()

    def register_task(self, task: asyncio.Task[Any]) -> None:
        """A task created from this workflow's code: cancelled too if the execution halts."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self.halted is not None:
            task.cancel()

    def check_live(self) -> None:
        """Raise :class:`WorkflowAborted` if this execution was halted."""
        if self.halted is not None:
            raise WorkflowAborted()

    def track(self, fut: concurrent.futures.Future[Any]) -> None:
        """Cancel ``fut`` (a sync workflow's pending wait or step) if this execution halts."""
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        if self.halted is not None:
            fut.cancel()

    def on_written(self, applied: bool | BaseException) -> None:
        """Callback for fire-and-forget writes: a rejected one halts the execution."""
        if applied is not True:
            self.halt(self._lost(applied))

    def _lost(self, why: bool | BaseException) -> DurablyError:
        if isinstance(why, BaseException):
            return StoreWriteFailed(
                f"workflow {self.workflow_id!r}: could not write to the store ({why}); "
                "releasing it so that it resumes from its journal",
                workflow_id=self.workflow_id,
            )
        return LeaseLostError(
            f"workflow {self.workflow_id!r}: lease lost (epoch {self.epoch} of {self.owner}); "
            "another worker owns it now",
            workflow_id=self.workflow_id,
        )

    # -- sequence numbers ----------------------------------------------------------------------

    def take(self, kind: str, name: str) -> tuple[int, JournalEntry | None]:
        """Identify a durable call: return its sequence number and its entry, if recorded.

        Raises NonDeterminismError (and halts) if the entry is of another kind or name, and
        Cancelled where a delivered cancellation was recorded.
        """
        self.check_live()
        key = (branch_var.get() or self.root).next_key()
        entry = self.by_key.get(key)
        if entry is None:
            seq = self._new_seq(key)
        else:
            seq = entry.seq
            if entry.kind != kind or entry.name != name:
                err = diverged(
                    self.workflow_id, self.workflow_name, seq=seq, key=key,
                    recorded=(entry.kind, entry.name), called=(kind, name),
                )  # fmt: skip
                self.halt(err)
                raise err
        self.keys[seq] = key
        self.taken.add(key)
        return seq, entry

    def _new_seq(self, key: str) -> int:
        # a call of the main line keeps its index as seq when it is free (dense, readable
        # histories); other calls are numbered after every seq in use
        seq = self.next_seq
        if key.isdigit():
            index = int(key)
            if index not in self.keys and index not in self.journal:
                seq = index
        if seq >= self.next_seq:
            self.next_seq = seq + 1
        return seq

    def _recorded(self, entry: JournalEntry, kind: type[float] | type[str]) -> Any:
        """The value a ``now``/``random``/``uuid`` entry recorded, as ``kind``."""
        what = f"recorded {entry.kind} value"
        return kind(self.runtime.codec.decode(entry.result or "null", kind, what=what))

    def record_value(self, seq: int, kind: str, name: str, encoded: str) -> None:
        """Record a completed entry without waiting (it is durable before any later commit)."""
        entry = self.new_entry(seq, kind, name, "completed", encoded)
        self.runtime.record(RecordEntry(entry), self.on_written)

    # -- deterministic values ------------------------------------------------------------------

    def now(self) -> datetime:
        seq, entry = self.take("now", "now")
        if entry is not None:
            return datetime.fromtimestamp(self._recorded(entry, float), UTC)
        t = self.runtime.time()
        self.record_value(seq, "now", "now", self.runtime.codec.encode(t, what="now()"))
        return datetime.fromtimestamp(t, UTC)

    def _rng(self, seq: int) -> _random.Random:
        return _random.Random(f"{self.workflow_id}:{self.keys[seq]}")

    def random(self) -> float:
        seq, entry = self.take("random", "random")
        if entry is not None:
            return float(self._recorded(entry, float))
        value = self._rng(seq).random()
        self.record_value(
            seq, "random", "random", self.runtime.codec.encode(value, what="random()")
        )
        return value

    def uuid4(self) -> uuid.UUID:
        seq, entry = self.take("uuid", "uuid")
        if entry is not None:
            return uuid.UUID(self._recorded(entry, str))
        value = uuid.UUID(int=self._rng(seq).getrandbits(128), version=4)
        self.record_value(
            seq, "uuid", "uuid", self.runtime.codec.encode(str(value), what="uuid4()")
        )
        return value

    # -- patches -------------------------------------------------------------------------------

    def _marker_at(self, branch: Branch, patch_id: str) -> bool:
        """Whether the journal records the marker ``patch_id`` at ``branch``'s next call."""
        entry = self.by_key.get(branch.peek_key())
        return entry is not None and entry.kind == "patch" and entry.name == patch_id

    def patched(self, patch_id: str) -> bool:
        self.check_live()
        branch = branch_var.get() or self.root
        decided = branch.patches.get(patch_id)
        if decided is not None:
            return decided
        if self._marker_at(branch, patch_id):
            self.take("patch", patch_id)  # recorded by code that took the new path
            decided = True
        elif branch.peek_key() in self.by_key or branch.went_past(self.by_key):
            decided = False  # the journal went on without it: the old path, nothing taken
        else:  # new ground: take the new path and record that it did
            seq, _ = self.take("patch", patch_id)
            marker = self.runtime.codec.encode(True, what="patch marker")
            self.record_value(seq, "patch", patch_id, marker)
            decided = True
        branch.patches[patch_id] = decided
        return decided

    def deprecate_patch(self, patch_id: str) -> None:
        self.check_live()
        branch = branch_var.get() or self.root
        if self._marker_at(branch, patch_id):
            self.take("patch", patch_id)

    # -- steps ---------------------------------------------------------------------------------

    def run_step(self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        seq, entry = self.take("step", step.name)
        if entry is not None and entry.status != "waiting":
            inner = self._replayed(step, seq, entry)
        else:  # new, or between attempts (its retry wait recorded): run its next attempt
            inner = self._execute_step(step, seq, args, kwargs, entry)
        return StepCall(
            inner, step=step.name, seq=seq, workflow_id=self.workflow_id,
            workflow_name=self.workflow_name, quiet=lambda: self.halted is not None,
        )  # fmt: skip

    def submit_step(
        self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepFuture[Any]:
        seq, entry = self.take("step", step.name)
        if entry is not None and entry.status != "waiting":
            done: concurrent.futures.Future[Any] = concurrent.futures.Future()
            try:
                done.set_result(self._replay_value(step, seq, entry))
            except Exception as exc:
                done.set_exception(exc)
            return StepFuture(done)
        fut = asyncio.run_coroutine_threadsafe(
            self._execute_step(step, seq, args, kwargs, entry), self.runtime.loop
        )
        self.track(fut)
        return StepFuture(fut)

    def call_step(self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.submit_step(step, args, kwargs).result()

    async def _replayed(self, step: Step[Any, Any], seq: int, entry: JournalEntry) -> Any:
        return self._replay_value(step, seq, entry)

    def _replay_value(self, step: Step[Any, Any], seq: int, entry: JournalEntry) -> Any:
        if entry.status == "completed":
            return self.runtime.codec.decode(entry.result or "null", step.return_hint)
        info = self.runtime.codec.decode_error(entry.error) if entry.error else {}
        raise step_failed(self.workflow_id, step.name, seq, info, entry.attempts)

    async def _execute_step(
        self,
        step: Step[Any, Any],
        seq: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retrying: JournalEntry | None = None,
    ) -> Any:
        """Run the step's attempts (retrying as its policy says) and commit its entry.

        ``retrying``: the step's ``waiting`` entry, recorded when an attempt failed and another
        was due later (see :mod:`durably.engine.retries`): the attempts go on from there.
        """
        rt, waits = self.runtime, self.waits
        waits.deliver_cancel_if_pending(seq)
        first_started = rt.time()
        attempt = 0
        waits.step_started()
        try:
            if retrying is not None:
                attempt, first_started, retry_at = retries.resumed(rt.codec, retrying)
                if attempt >= step.retry.attempts:  # its policy changed: no attempt left
                    await self._fail(step, seq, retrying.error, attempt, first_started)
                await retries.wait(waits, seq, step.name, retry_at)
            while True:
                attempt += 1
                self.check_live()
                started = rt.time()
                try:
                    value = await self._invoke(step, seq, attempt, args, kwargs)
                    encoded = rt.codec.encode(
                        value, what=f"result of step {step.name!r}",
                        workflow_id=self.workflow_id, step=step.name,
                    )  # fmt: skip
                except Exception as exc:
                    finished = rt.time()
                    info = error_info(exc)
                    error = rt.codec.encode_error(info)
                    self._record_attempt(seq, attempt, error, started, finished)
                    if step.retry.should_retry(exc, attempt):
                        retry_at = finished + step.retry.delay(attempt)
                        retries.record(self, seq, step.name, attempt, error, first_started,
                                       retry_at)  # fmt: skip
                        await retries.wait(waits, seq, step.name, retry_at)
                        continue
                    await self._fail(step, seq, error, attempt, first_started, exc, info)
                done = JournalEntry(
                    self.workflow_id, seq, "step", step.name, "completed", encoded, None,
                    attempt, self.owner, self.epoch, first_started, rt.time(), self.keys[seq],
                )  # fmt: skip
                await self._commit(RecordEntry(done))
                if type(value) in _PLAIN and (
                    step.return_hint is Any or type(value) is step.return_hint
                ):
                    return value  # what decoding its JSON would give back
                return rt.codec.decode(encoded, step.return_hint)
        finally:
            waits.step_finished()

    async def _fail(
        self,
        step: Step[Any, Any],
        seq: int,
        error: str | None,
        attempts: int,
        first_started: float,
        exc: Exception | None = None,
        info: dict[str, Any] | None = None,
    ) -> NoReturn:
        """Commit the step's failed entry (its last attempt's ``error``) and raise StepFailed."""
        rt = self.runtime
        failed = JournalEntry(
            self.workflow_id, seq, "step", step.name, "failed", None, error,
            attempts, self.owner, self.epoch, first_started, rt.time(), self.keys[seq],
        )  # fmt: skip
        await self._commit(RecordEntry(failed))
        if info is None:
            info = rt.codec.decode_error(error) if error else {}
        raise step_failed(self.workflow_id, step.name, seq, info, attempts) from exc

    def _record_attempt(
        self, seq: int, attempt: int, error: str, started: float, finished: float
    ) -> None:
        """Record a failed attempt (fire-and-forget: durable before the step's entry)."""
        attempt_row = StepAttempt(
            self.workflow_id, seq, attempt, error, self.owner, self.epoch, started, finished
        )
        self.runtime.record(RecordAttempt(attempt_row), self.on_written)

    async def commit_op(self, op: WriteOp) -> None:
        """Write ``op`` and wait until it is durable; halt and unwind if it is rejected."""
        self.waits.step_started()  # a commit in flight: the workflow is not idle
        try:
            await self._commit(op)
        finally:
            self.waits.step_finished()

    async def _commit(self, op: WriteOp) -> None:
        """:meth:`commit_op` where the workflow already counts as busy (in a step)."""
        self.check_live()
        try:
            applied = await self.runtime.commit(op)
        except Exception as exc:
            applied = False
            self.halt(self._lost(exc))
        if not applied:
            self.halt(self._lost(False))
            raise WorkflowAborted()

    async def _invoke(
        self,
        step: Step[Any, Any],
        seq: int,
        attempt: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        info = StepContext(
            self.workflow_id, self.workflow_name, step.name, seq, attempt, self.run, self.keys[seq]
        )
        scope_token = scope_var.set(None)
        step_token = step_var.set(info)
        try:
            try:
                if step.is_async:
                    if step.timeout is None:
                        return await step.fn(*args, **kwargs)
                    async with asyncio.timeout(step.timeout):
                        return await step.fn(*args, **kwargs)
                call: Callable[[], Any] = functools.partial(step.fn, *args, **kwargs)
                ctx = contextvars.copy_context()
                fut = self.runtime.loop.run_in_executor(self.runtime.step_executor, ctx.run, call)
                return await asyncio.wait_for(fut, step.timeout)
            except TimeoutError as exc:
                if step.timeout is None:
                    raise
                raise StepTimeoutError(
                    f"step {step.name!r} (seq {seq}, attempt {attempt}) of workflow "
                    f"{self.workflow_id!r} ran longer than its timeout of {step.timeout}s",
                    workflow_id=self.workflow_id,
                    step=step.name,
                ) from exc
        finally:
            step_var.reset(step_token)
            scope_var.reset(scope_token)

    # -- waits, state, children, continue-as-new -----------------------------------------------

    def sleep(self, seconds: float | None, until: float | None = None) -> Any:
        seq, wake_at = self.waits.sleep_target(seconds, until)
        return self.waits.sleep_until(seq, wake_at)

    def sleep_blocking(self, seconds: float | None, until: float | None = None) -> None:
        seq, wake_at = self.waits.sleep_target(seconds, until)
        waits = self.waits
        if self.runtime.time() < wake_at or waits.cancel_pending or waits.cancel_key is not None:
            waits.run_blocking(waits.sleep_until(seq, wake_at))

    def wait_event(self, name: str, timeout: float | None, default: Any) -> Any:
        seq, entry = self.waits.event_target(name, timeout)
        return self.waits.wait_event(seq, entry, timeout, default)

    def wait_event_blocking(self, name: str, timeout: float | None, default: Any) -> Any:
        seq, entry = self.waits.event_target(name, timeout)
        return self.waits.run_blocking(self.waits.wait_event(seq, entry, timeout, default))

    def wait_any(self, waits: Sequence[Waitable], keys: Sequence[str | None]) -> Any:
        seq, entry = first_of.target(self, waits)
        return first_of.wait(self.waits, seq, entry, waits, keys)

    def wait_any_blocking(self, waits: Sequence[Waitable], keys: Sequence[str | None]) -> Fired:
        seq, entry = first_of.target(self, waits)
        fired: Fired = self.waits.run_blocking(first_of.wait(self.waits, seq, entry, waits, keys))
        return fired

    def set_state(self, key: str, value: Any) -> None:
        self.waits.set_state(key, value)

    def start_child(
        self,
        workflow: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        child_id: str | None,
    ) -> ChildHandle[Any]:
        seq, cid = self.waits.start_child(workflow, args, kwargs, child_id)
        return ChildHandle(self, seq, cid, workflow)

    def child_result(self, seq: int, child_id: str, workflow: Workflow[Any, Any]) -> Any:
        coro = self.waits.child_result(seq, child_id, workflow)
        return coro if self.is_async else self.waits.run_blocking(coro)

    def continue_as_new(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.check_live()
        encoded = self.runtime.codec.encode_call(
            args, kwargs, workflow_id=self.workflow_id, name=self.workflow_name
        )
        raise ContinueAsNewSignal(encoded)
