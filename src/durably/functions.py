"""Functions workflow and step code calls: deterministic values, step calls, step context."""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Awaitable, Coroutine
from datetime import datetime
from typing import Any, ParamSpec, TypeVar, overload

from durably.definitions import Step
from durably.errors import NotInWorkflowError
from durably.scope import StepContext, StepFuture, WorkflowScope, current_scope, current_step

__all__ = ["now", "random", "run", "step_context", "submit", "uuid4", "workflow_id"]

P = ParamSpec("P")
T = TypeVar("T")


def _scope(what: str) -> WorkflowScope:
    scope = current_scope()
    if scope is None:
        raise NotInWorkflowError(
            f"durably.{what}() works only inside workflow code (a function decorated with "
            "@app.workflow, run by a worker); steps and plain code cannot call it"
        )
    return scope


def now() -> datetime:
    """The current UTC time, recorded in the journal: the same value on every replay."""
    return _scope("now").now()


def random() -> float:
    """A random float in [0, 1), the same on every replay."""
    return _scope("random").random()


def uuid4() -> _uuid.UUID:
    """A random UUID (version 4), the same on every replay."""
    return _scope("uuid4").uuid4()


def workflow_id() -> str:
    """The id of the workflow this code runs in (workflow code or a step it called)."""
    scope = current_scope()
    if scope is not None:
        return scope.workflow_id
    step = current_step()
    if step is not None:
        return step.workflow_id
    raise NotInWorkflowError("durably.workflow_id() works only inside workflow or step code")


@overload
def run(
    step: Step[P, Coroutine[Any, Any, T]], /, *args: P.args, **kwargs: P.kwargs
) -> Awaitable[T]: ...
@overload
def run(step: Step[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]: ...
def run(step: Step[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[Any]:
    """Call a step (sync or async) durably from an async workflow: ``await durably.run(s, ...)``.

    The step's sequence number is taken when ``run`` is called, so
    ``await asyncio.gather(durably.run(a, 1), durably.run(b, 2))`` is deterministic.
    """
    scope = _scope("run")
    if not scope.is_async:
        raise NotInWorkflowError(
            f"durably.run() is for async workflows; in sync workflow {scope.workflow_name!r} call "
            f"the step directly or use durably.submit({step.name}, ...).result()",
            workflow_id=scope.workflow_id,
            step=step.name,
        )
    return scope.run_step(step, args, kwargs)


@overload
def submit(
    step: Step[P, Coroutine[Any, Any, T]], /, *args: P.args, **kwargs: P.kwargs
) -> StepFuture[T]: ...
@overload
def submit(step: Step[P, T], /, *args: P.args, **kwargs: P.kwargs) -> StepFuture[T]: ...
def submit(step: Step[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> StepFuture[Any]:
    """Start a step (sync or async) from a sync workflow and return a future for its result.

    Futures-style fan-out: ``fs = [durably.submit(s, x) for x in xs]; [f.result() for f in fs]``.
    """
    scope = _scope("submit")
    if scope.is_async:
        raise NotInWorkflowError(
            f"durably.submit() is for sync workflows; in async workflow {scope.workflow_name!r} "
            f"use `await durably.run({step.name}, ...)` (and asyncio.gather for parallel steps)",
            workflow_id=scope.workflow_id,
            step=step.name,
        )
    return scope.submit_step(step, args, kwargs)


def step_context() -> StepContext:
    """The running step's context: workflow id, step name, seq, attempt, idempotency key."""
    ctx = current_step()
    if ctx is None:
        raise NotInWorkflowError(
            "durably.step_context() works only inside a step run by a workflow"
        )
    return ctx
