"""Functions workflow and step code calls: deterministic values, step calls, step context."""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Awaitable, Coroutine
from datetime import datetime, timedelta
from typing import Any, NoReturn, ParamSpec, TypeVar, overload

from durably import limits
from durably.definitions import Step, Workflow
from durably.errors import ConfigurationError, NotInWorkflowError
from durably.scope import (
    NO_DEFAULT,
    ChildHandle,
    StepContext,
    StepFuture,
    WorkflowScope,
    current_scope,
    current_step,
)
from durably.waitables import EventWait, Fired, TimerWait, Waitable, validated

__all__ = [
    "continue_as_new",
    "deprecate_patch",
    "event",
    "now",
    "patched",
    "random",
    "run",
    "set_state",
    "sleep",
    "sleep_sync",
    "sleep_until",
    "sleep_until_sync",
    "start_child",
    "step_context",
    "submit",
    "timer",
    "uuid4",
    "wait_any",
    "wait_any_sync",
    "wait_event",
    "wait_event_sync",
    "workflow_id",
]

P = ParamSpec("P")
T = TypeVar("T")


def _seconds(value: float | timedelta | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{what} must be seconds (a number) or a timedelta, got {value!r}")
    return float(value)


def _timestamp(when: datetime) -> float:
    if not isinstance(when, datetime):
        raise ConfigurationError(f"sleep_until() takes a datetime, got {when!r}")
    if when.tzinfo is None:
        raise ConfigurationError(
            f"sleep_until({when!r}): pass a timezone-aware datetime (e.g. tzinfo=timezone.utc)"
        )
    return when.timestamp()


def _async_scope(what: str, sync_name: str) -> WorkflowScope:
    return _scope_of_kind(
        what,
        True,
        f"durably.{what}() returns an awaitable, for async workflows",
        f"call durably.{sync_name}()",
    )


def _sync_scope(what: str, async_name: str) -> WorkflowScope:
    return _scope_of_kind(
        what,
        False,
        f"durably.{what}() blocks, for sync workflows",
        f"write `await durably.{async_name}(...)`",
    )


def _scope_of_kind(
    what: str, is_async: bool, head: str, advice: str, step: str | None = None
) -> WorkflowScope:
    """The running workflow's scope if it is an async one (``is_async``), else a sync one;
    otherwise NotInWorkflowError: "<head>; in <its kind> workflow '<name>' <advice>"."""
    scope = _scope(what)
    if scope.is_async is not is_async:
        kind = "async" if scope.is_async else "sync"
        raise NotInWorkflowError(
            f"{head}; in {kind} workflow {scope.workflow_name!r} {advice}",
            workflow_id=scope.workflow_id,
            step=step,
        )
    return scope


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


def patched(patch_id: str) -> bool:
    """Whether to take the code path of a change named ``patch_id`` (changing code under
    workflows already in flight): ``if durably.patched("add-fraud-check"): <new code> else:
    <old code>``.

    True in a new workflow, or where the workflow reaches this point for the first time; the
    decision is recorded in the journal (a ``patch`` entry), so every replay takes the same
    path. False in a replay of a journal that went past this point without the marker: that
    workflow ran the old code here, and keeps doing so. Asking again for the same ``patch_id``
    in the same branch (or a branch started after the first answer) gives the same answer.
    Async and sync workflows alike.
    """
    limits.check_name(patch_id, "patched() id")
    return _scope("patched").patched(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """Mark the change ``patch_id`` as the only code path, once no workflow that went past it
    without the marker is left: replace ``if durably.patched(X): new else: old`` with
    ``durably.deprecate_patch(X); new``. Records nothing; a journal with the marker at this
    point still replays (the marker is accepted), one without it just goes on. Remove the call
    once no workflow with the marker is left either.
    """
    limits.check_name(patch_id, "deprecate_patch() id")
    _scope("deprecate_patch").deprecate_patch(patch_id)


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
    scope = _scope_of_kind(
        "run",
        True,
        "durably.run() is for async workflows",
        f"call the step directly or use durably.submit({step.name}, ...).result()",
        step.name,
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
    scope = _scope_of_kind(
        "submit",
        False,
        "durably.submit() is for sync workflows",
        f"use `await durably.run({step.name}, ...)` (and asyncio.gather for parallel steps)",
        step.name,
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


def sleep(duration: float | timedelta) -> Awaitable[None]:
    """A durable timer in an async workflow: ``await durably.sleep(timedelta(days=30))``.

    It survives crashes and restarts and fires once. A long sleep holds no coroutine or thread:
    the workflow is unwound and replayed from its journal when the timer is due.
    """
    seconds = _seconds(duration, "sleep duration")
    return _async_scope("sleep", "sleep_sync").sleep(seconds)


def sleep_until(when: datetime) -> Awaitable[None]:
    """A durable timer until a timezone-aware ``datetime`` (async workflows)."""
    return _async_scope("sleep_until", "sleep_until_sync").sleep(None, _timestamp(when))


def sleep_sync(duration: float | timedelta) -> None:
    """:func:`sleep` for sync workflows (blocks the workflow's thread, or unwinds it)."""
    seconds = _seconds(duration, "sleep duration")
    _sync_scope("sleep_sync", "sleep").sleep_blocking(seconds)


def sleep_until_sync(when: datetime) -> None:
    """:func:`sleep_until` for sync workflows."""
    _sync_scope("sleep_until_sync", "sleep_until").sleep_blocking(None, _timestamp(when))


def wait_event(
    name: str, timeout: float | timedelta | None = None, *, default: Any = NO_DEFAULT
) -> Awaitable[Any]:
    """Wait durably for the next event ``name`` sent with ``app.send_event`` and return its
    payload (None for an event sent without one).

    If ``timeout`` passes first, raise :class:`durably.EventTimeoutError`, or return ``default``
    when one is given (``default=None`` gives None for a timeout; pick a value no sender uses to
    tell the two apart). Events sent before the wait are kept; each is consumed exactly once, in
    the order sent. The journal records which happened, so a replay takes the same branch.
    """
    limits.check_event_name(name)
    seconds = _seconds(timeout, "wait_event timeout")
    return _async_scope("wait_event", "wait_event_sync").wait_event(name, seconds, default)


def wait_event_sync(
    name: str, timeout: float | timedelta | None = None, *, default: Any = NO_DEFAULT
) -> Any:
    """:func:`wait_event` for sync workflows (blocks; raises or returns ``default`` alike)."""
    limits.check_event_name(name)
    seconds = _seconds(timeout, "wait_event timeout")
    scope = _sync_scope("wait_event_sync", "wait_event")
    return scope.wait_event_blocking(name, seconds, default)


def event(name: str) -> EventWait:
    """A wait for the next event ``name``, for :func:`wait_any` (it waits for nothing by
    itself): ``await durably.wait_any(durably.event("approved"), durably.timer(...))``. Its
    value is the event's payload; only the wait that fires consumes its event."""
    limits.check_event_name(name)
    return EventWait(name)


def timer(duration: float | timedelta | None = None, *, until: datetime | None = None) -> TimerWait:
    """A durable timer for :func:`wait_any`, due ``duration`` (seconds or a timedelta) after
    ``wait_any`` is called, or ``until`` a timezone-aware datetime. Its value is None."""
    if (duration is None) == (until is None):
        raise ConfigurationError("durably.timer() takes a duration or until=..., exactly one")
    if until is not None:
        return TimerWait(until=_timestamp(until))
    return TimerWait(seconds=_seconds(duration, "timer duration"))


def wait_any(*waits: Waitable, **named: Waitable) -> Awaitable[Fired]:
    """Wait durably for the first of several things and return it, in an async workflow::

        fired = await durably.wait_any(
            approval=durably.event("approval"),
            escalate=durably.timer(timedelta(days=2)),
            review=review_handle,               # from durably.start_child(...)
        )
        if fired.key == "approval": ...         # fired.value: the event's payload

    Waits on events (:func:`event`), timers (:func:`timer`) and child workflows (their
    :class:`~durably.ChildHandle`), given positionally or by keyword. Returns a
    :class:`~durably.Fired`: ``index`` (position: positional waits first, then keyword ones),
    ``key`` (the keyword, or None) and ``value`` (the payload, None for a timer, the child's
    result; a child that did not complete raises :class:`~durably.ChildWorkflowFailed`).

    The choice is journaled: every replay returns the same one, whatever else has become ready
    since. The others are left as they are: an event not consumed stays for a later wait, a
    child keeps running (await or cancel it later), a timer is dropped. If several are ready
    when the workflow looks (it was parked or down meanwhile), the first to become ready wins
    (by the time an event was sent, a timer was due, a child ended; at the same moment events
    first, in the order sent, then argument order). A
    long wait holds no coroutine or thread: the workflow is parked until one of them fires.
    """
    specs, keys = validated(waits, named)
    return _async_scope("wait_any", "wait_any_sync").wait_any(specs, keys)


def wait_any_sync(*waits: Waitable, **named: Waitable) -> Fired:
    """:func:`wait_any` for sync workflows (blocks; returns the same :class:`~durably.Fired`)."""
    specs, keys = validated(waits, named)
    fired: Fired = _sync_scope("wait_any_sync", "wait_any").wait_any_blocking(specs, keys)
    return fired


def set_state(key: str, value: Any) -> None:
    """Publish ``key = value`` from a workflow (journaled); read it from outside with
    ``handle.state(key)`` or ``handle.states()``, while the workflow runs and after it ends."""
    limits.check_name(key, "set_state() key")
    _scope("set_state").set_state(key, value)


@overload
def start_child(
    workflow: Workflow[P, Coroutine[Any, Any, T]],
    /,
    *args: Any,
    id: str | None = None,
    **kwargs: Any,
) -> ChildHandle[T]: ...
@overload
def start_child(
    workflow: Workflow[P, T], /, *args: Any, id: str | None = None, **kwargs: Any
) -> ChildHandle[T]: ...
def start_child(
    workflow: Workflow[P, Any], /, *args: Any, id: str | None = None, **kwargs: Any
) -> ChildHandle[Any]:
    """Start a child workflow now and return a handle to await later (``await handle`` in async
    workflows, ``handle.result()`` in sync ones). Its id defaults to ``"<parent id>:<key>"``.
    An ``id`` already held by another workflow starts nothing: awaiting the handle raises
    :class:`~durably.ChildWorkflowFailed` (status ``not_started``). Cancelling or terminating
    the parent does the same to the child."""
    scope = _scope("start_child")
    if id is not None:
        from durably.ids import validate_workflow_id

        validate_workflow_id(id)
    return scope.start_child(workflow, args, kwargs, id)


def continue_as_new(*args: Any, **kwargs: Any) -> NoReturn:
    """End this run and start the same workflow id afresh with these arguments and an empty
    journal (earlier runs stay visible in ``handle.runs()``). Never returns."""
    _scope("continue_as_new").continue_as_new(args, kwargs)
    raise AssertionError("unreachable")  # pragma: no cover
