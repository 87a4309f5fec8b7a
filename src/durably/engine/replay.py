"""Replay-only execution: run workflow code against its journal without executing anything.

The deploy gate (``durably replay-check``) and ``durably.testing.replay`` use it to learn,
before a deploy, whether new code still matches the journals of workflows in flight. A replay:

- runs no step body, starts no child, records nothing: its runtime has no store (every write
  is dropped) and its step executor refuses work;
- stops a branch at its first durable call past the journal's end (the call a worker would run
  for real): steps, sleeps and event waits there wait forever, so that the other branches
  replay on; a call that cannot wait (``now()``, ``random()``, ``uuid4()``, ``set_state``,
  ``start_child``, a patch marker) in an async workflow ends the whole replay there;
- ends when every branch waits (past the journal, or on a wait the journal has not resolved),
  or when the workflow returns or raises.

The result is OK, or the first divergence: the call (seq, key) where the code called something
other than what the journal records, or the journal entry the code never reached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from durably.codec import Codec
from durably.definitions import Workflow
from durably.engine import first_of
from durably.engine.branches import branch_var
from durably.engine.execute import execute
from durably.engine.execution import Execution
from durably.engine.waits import Parked
from durably.errors import DurablyError, NonDeterminismError, SerializationError
from durably.scope import WorkflowAborted
from durably.storage.base import JournalEntry, WorkflowRecord, WorkflowStatus, WriteOp

__all__ = ["Divergence", "ReplayResult", "Replayer"]

_WAITABLE = frozenset({"step", "sleep", "event", "any"})
"""Kinds of durable call an async branch can stop at (they return an awaitable)."""
_END = "replay_end"
"""The wait kind of a branch stopped past the journal's end."""


class JournalEnd(DurablyError):
    """Halt reason of a replay that reached a call past the journal's end (not an error)."""

    code = "journal_end"


@dataclass(frozen=True, slots=True)
class Divergence:
    """Where new code first parts from a workflow's journal.

    ``journal_kind``/``journal_name``: the entry the journal records at ``seq`` (call ``key``),
    None where it records nothing there. ``code_kind``/``code_name``: what the code did
    instead: a durable call's kind and name (made at ``location``); ``"return"``, ``"raise"``
    or ``"wait"`` (it returned, raised, or waited, before reaching that entry); ``"missing"``
    (the code defines no workflow of that name) or ``"input"`` (it cannot decode the
    workflow's input).
    """

    workflow_id: str
    workflow_name: str
    seq: int | None
    key: str | None
    journal_kind: str | None
    journal_name: str | None
    code_kind: str
    code_name: str | None
    message: str
    location: str | None = None
    """``file:line`` of the diverging call in the workflow code, where known."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``--json`` of ``durably replay-check``)."""
        return {
            "seq": self.seq,
            "key": self.key,
            "journal": None
            if self.journal_kind is None
            else {"kind": self.journal_kind, "name": self.journal_name},
            "code": {"kind": self.code_kind, "name": self.code_name},
            "location": self.location,
            "message": self.message,
        }


@dataclass(slots=True)
class ReplayResult:
    """The replay of one workflow's journal: how many entries matched, and the divergence."""

    workflow_id: str
    workflow_name: str
    entries: int
    replayed: int = 0
    divergence: Divergence | None = None

    @property
    def ok(self) -> bool:
        """Whether the code matched the whole journal it reached."""
        return self.divergence is None


class _NoSteps(Executor):
    """The step executor of a replay: a step body reaching it is a bug, refused."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise RuntimeError("a replay runs no step")


@dataclass(slots=True)
class _ReplayRuntime:
    """An engine :class:`~durably.engine.runtime.Runtime` with no store: it writes nothing."""

    loop: asyncio.AbstractEventLoop
    codec: Codec
    workflow_executor: Executor
    step_executor: Executor = field(default_factory=_NoSteps)
    eviction_threshold: float = 0.0
    clock: Callable[[], float] = time.time

    def notify_new_work(self) -> None:
        """Nothing starts in a replay."""

    def time(self) -> float:
        """Wall-clock time: a recorded timer that is due lets the replay go on past it."""
        return self.clock()

    def record(
        self, op: WriteOp, on_done: Callable[[bool | BaseException], None] | None = None
    ) -> None:
        """Drop the write (only past the journal's end, or the final park, write at all)."""
        if on_done is not None:
            on_done(True)

    def commit(self, op: WriteOp) -> asyncio.Future[bool]:
        """Drop the write (:class:`_ReplayExecution` stops before any commit)."""
        fut: asyncio.Future[bool] = self.loop.create_future()
        fut.set_result(True)
        return fut


class _ReplayExecution(Execution):
    """An :class:`Execution` that stops at the journal's end instead of executing."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.divergence: Divergence | None = None
        self.beyond: set[int] = set()

    def take(self, kind: str, name: str) -> tuple[int, JournalEntry | None]:
        try:
            seq, entry = super().take(kind, name)
        except NonDeterminismError as err:
            if self.divergence is None:
                branch = branch_var.get() or self.root
                key = err.key or f"{branch.prefix}{branch.calls - 1}"
                found = self.by_key.get(key)
                self.divergence = Divergence(
                    self.workflow_id, self.workflow_name,
                    None if found is None else found.seq, key,
                    None if found is None else found.kind, None if found is None else found.name,
                    kind, name, err.message, err.location,
                )  # fmt: skip
            raise
        if entry is not None:
            return seq, entry
        self.beyond.add(seq)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a sync workflow's thread: wait here until the replay ends
            self.waits.run_blocking(self._stop(seq, name))
        if kind not in _WAITABLE:
            self.halt(JournalEnd(f"replay of {self.workflow_id!r} reached the journal's end"))
            raise WorkflowAborted()
        return seq, entry

    async def _stop(self, seq: int, name: str) -> Any:
        """Wait forever (until the replay ends): this branch reached the journal's end."""
        while True:
            await self.waits.block(seq, _END, name, None)

    async def _execute_step(
        self,
        step: Any,
        seq: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retrying: JournalEntry | None = None,
    ) -> Any:
        return await self._stop(seq, step.name)  # a new step, or the next attempt of one

    def sleep(self, seconds: float | None, until: float | None = None) -> Any:
        seq, wake_at = self.waits.sleep_target(seconds, until)
        if seq in self.beyond:
            return self._stop(seq, "sleep")
        return self.waits.sleep_until(seq, wake_at)

    def wait_event(self, name: str, timeout: float | None, default: Any) -> Any:
        seq, entry = self.waits.event_target(name, timeout)
        if seq in self.beyond:
            return self._stop(seq, name)
        return self.waits.wait_event(seq, entry, timeout, default)

    def wait_any(self, waits: Sequence[Any], keys: Sequence[str | None]) -> Any:
        seq, entry = first_of.target(self, waits)
        if seq in self.beyond:
            return self._stop(seq, first_of.ANY)
        return first_of.wait(self.waits, seq, entry, waits, keys)

    async def commit_op(self, op: WriteOp) -> None:
        # resolving a wait the journal left open (a timeout that passed): past its end
        seq = getattr(getattr(op, "entry", None), "seq", None)
        if seq not in self.keys:
            self.halt(JournalEnd(f"replay of {self.workflow_id!r} reached the journal's end"))
            raise WorkflowAborted()
        await self._stop(seq, "commit")


class Replayer:
    """Replays journals against workflow definitions, many in a row on one event loop.

    ``async with Replayer(codec) as r: result = await r.replay(wf, record, journal)``.
    """

    def __init__(self, codec: Codec, clock: Callable[[], float] = time.time) -> None:
        self._codec = codec
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> Replayer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _workflows(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(4, thread_name_prefix="durably-replay")
        return self._executor

    async def replay(
        self,
        wf: Workflow[Any, Any] | None,
        record: WorkflowRecord,
        journal: list[JournalEntry],
    ) -> ReplayResult:
        """Replay ``journal`` (of workflow ``record``) against ``wf`` (None: the code defines
        no workflow of that name). Writes nothing, runs no step."""
        result = ReplayResult(record.id, record.name, len(journal))
        if wf is None:
            result.divergence = _whole(
                record, "missing", f"the code defines no workflow named {record.name!r}"
            )
            return result
        try:
            self._codec.decode_call(record.input, wf.fn)
        except SerializationError as exc:
            result.divergence = _whole(
                record, "input", f"the code cannot decode the workflow's input: {exc.message}"
            )
            return result
        loop = asyncio.get_running_loop()
        runtime = _ReplayRuntime(loop, self._codec, self._workflows(), clock=self._clock)
        ctx = _ReplayExecution(
            workflow_id=record.id, workflow_name=record.name, owner="replay", epoch=0,
            journal={e.seq: e for e in journal}, runtime=runtime, is_async=wf.is_async,
            run=record.run, cancel_key=record.cancel_key,
        )  # fmt: skip
        outcome = await execute(ctx, wf, record.input)
        ctx.end(lambda: JournalEnd(f"replay of {record.id!r} is over"))
        result.replayed = len(ctx.taken) - len(ctx.beyond)
        if ctx.divergence is not None:
            result.divergence = ctx.divergence
            return result
        reason = outcome.reason
        if isinstance(reason, JournalEnd):
            return result
        if outcome.status is None and not isinstance(reason, Parked):
            raise RuntimeError(f"replay of {record.id!r} stopped: {reason!r}")  # pragma: no cover
        result.divergence = _unreached(ctx, outcome.status, reason)
        return result


def _whole(record: WorkflowRecord, code_kind: str, message: str) -> Divergence:
    return Divergence(
        record.id, record.name, None, None, None, None, code_kind, None,
        f"workflow {record.id!r} ({record.name}): {message}",
    )  # fmt: skip


def _unreached(
    ctx: _ReplayExecution, status: WorkflowStatus | None, reason: BaseException | None
) -> Divergence | None:
    """The first journal entry the code never reached, once it returned, raised or waits."""
    missed = [e for key, e in ctx.by_key.items() if key not in ctx.taken]
    if not missed:
        return None
    entry = min(missed, key=lambda e: e.seq)
    if status is None:
        what, did = "wait", "waits (every branch)"
    elif status in (WorkflowStatus.COMPLETED, WorkflowStatus.NEEDS_ATTENTION):
        what, did = "return", "returned"
    else:
        what, did = "raise", f"ended {status.value}"
        if reason is not None:
            did += f" ({type(reason).__name__}: {reason})"
    return Divergence(
        ctx.workflow_id, ctx.workflow_name, entry.seq, entry.key or str(entry.seq),
        entry.kind, entry.name, what, None,
        f"workflow {ctx.workflow_id!r} ({ctx.workflow_name}) {did} after "
        f"{len(ctx.taken) - len(ctx.beyond)} durable calls but its journal records "
        f"{entry.kind} {entry.name!r} at seq {entry.seq}: the code no longer makes that call",
    )  # fmt: skip
