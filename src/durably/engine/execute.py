"""Run a workflow function to its outcome against its journal."""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass
from typing import Any

from durably.definitions import Workflow
from durably.engine import divergence
from durably.engine.branches import branch_var, install_task_factory
from durably.engine.execution import Execution
from durably.engine.failures import error_info
from durably.engine.waits import Parked
from durably.errors import Cancelled, LeaseLostError, NonDeterminismError, SerializationError
from durably.scope import ContinueAsNewSignal, WorkflowAborted, scope_var
from durably.storage.base import WorkflowStatus

__all__ = ["Outcome", "execute"]


@dataclass(slots=True)
class Outcome:
    """How an execution ended. ``status`` None means: write nothing (halted, not finished)."""

    status: WorkflowStatus | None
    output: str | None = None
    error: str | None = None
    reason: BaseException | None = None
    next_input: str | None = None
    """With status CONTINUED_AS_NEW: the encoded input of the next run."""

    @property
    def parked(self) -> bool:
        """Halted because it waits out of memory (a timer, event or child): the store holds it
        parked; its host has nothing to write and nothing to release."""
        return self.status is None and isinstance(self.reason, Parked)

    @property
    def lease_lost(self) -> bool:
        """Halted because its lease is no longer its host's (a command or another worker took
        it): its host must neither write nor release it."""
        return self.status is None and isinstance(self.reason, LeaseLostError)

    @property
    def release(self) -> bool:
        """Halted while still its host's (a store write failed, the host is stopping...): the
        host releases it, so that it resumes (here or elsewhere)."""
        return self.status is None and not self.parked and not self.lease_lost


def _failed(ctx: Execution, exc: BaseException) -> Outcome:
    return Outcome(
        WorkflowStatus.FAILED, error=ctx.runtime.codec.encode_error(error_info(exc)), reason=exc
    )


def _halted(ctx: Execution) -> Outcome:
    reason = ctx.halted
    if isinstance(reason, NonDeterminismError):
        return Outcome(
            WorkflowStatus.NEEDS_ATTENTION,
            error=ctx.runtime.codec.encode_error(error_info(reason, with_traceback=False)),
            reason=reason,
        )
    return Outcome(None, reason=reason)


async def _body(ctx: Execution, wf: Workflow[Any, Any], args: Any, kwargs: Any) -> Any:
    scope_var.set(ctx)
    branch_var.set(ctx.root)
    return await wf.fn(*args, **kwargs)


async def _run_async(ctx: Execution, wf: Workflow[Any, Any], args: Any, kwargs: Any) -> Any:
    loop = ctx.runtime.loop
    install_task_factory(loop)
    ctx.task = loop.create_task(_body(ctx, wf, args, kwargs), context=contextvars.Context())
    return await ctx.task


async def _run_sync(ctx: Execution, wf: Workflow[Any, Any], args: Any, kwargs: Any) -> Any:
    def body() -> Any:
        scope_var.set(ctx)
        branch_var.set(ctx.root)
        return wf.fn(*args, **kwargs)

    rt = ctx.runtime
    return await rt.loop.run_in_executor(rt.workflow_executor, contextvars.Context().run, body)


async def execute(ctx: Execution, wf: Workflow[Any, Any], encoded_input: str) -> Outcome:
    """Run ``wf`` from the top against ``ctx.journal`` until it returns, raises or is halted.

    Cancelling the calling task (a worker shutting down) propagates ``CancelledError``.
    """
    codec = ctx.runtime.codec
    try:
        args, kwargs = codec.decode_call(encoded_input, wf.fn)
    except SerializationError as exc:
        return _failed(ctx, exc)
    try:
        if wf.is_async:
            value = await _run_async(ctx, wf, args, kwargs)
        else:
            value = await _run_sync(ctx, wf, args, kwargs)
    except (WorkflowAborted, asyncio.CancelledError):
        current = asyncio.current_task()
        if ctx.halted is None or (current is not None and current.cancelling()):
            raise
        return _halted(ctx)
    except ContinueAsNewSignal as signal:
        if ctx.halted is not None:
            return _halted(ctx)
        return Outcome(WorkflowStatus.CONTINUED_AS_NEW, next_input=signal.encoded_input)
    except Cancelled as exc:
        if ctx.halted is not None:
            return _halted(ctx)
        info = error_info(exc)
        info["code"] = Cancelled.code
        return Outcome(WorkflowStatus.CANCELLED, error=codec.encode_error(info), reason=exc)
    except Exception as exc:
        return _halted(ctx) if ctx.halted is not None else _failed(ctx, exc)
    if ctx.halted is not None:
        return _halted(ctx)
    unreached = sorted(
        (e for key, e in ctx.by_key.items() if key not in ctx.taken), key=lambda e: e.seq
    )
    if unreached:
        entry = unreached[0]
        error = divergence.unreached(
            ctx.workflow_id, ctx.workflow_name, calls=len(ctx.taken), seq=entry.seq,
            key=entry.key or str(entry.seq), kind=entry.kind, name=entry.name,
        )  # fmt: skip
        ctx.halt(error)
        return _halted(ctx)
    try:
        output = codec.encode(
            value,
            what=f"result of workflow {ctx.workflow_name!r}",
            workflow_id=ctx.workflow_id,
        )
    except SerializationError as exc:
        return _failed(ctx, exc)
    return Outcome(WorkflowStatus.COMPLETED, output=output)
