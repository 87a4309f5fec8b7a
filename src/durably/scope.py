"""What running workflow or step code can see of the engine, found on the running context.

The user-facing functions (``durably.now()``, ``durably.run()``...) and the step decorator never
import the engine or the worker: they look up the :class:`WorkflowScope` that the engine placed
on the current context, as Temporal's SDK finds its runtime.
"""

from __future__ import annotations

import abc
import concurrent.futures
import uuid
from collections.abc import Awaitable, Generator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeAlias, TypeVar

__all__ = [
    "NO_DEFAULT",
    "ChildHandle",
    "ContinueAsNewSignal",
    "StepContext",
    "StepFuture",
    "WorkflowAborted",
    "WorkflowScope",
    "current_scope",
    "current_step",
    "scope_var",
    "step_var",
]

T = TypeVar("T")

StepDefinition: TypeAlias = Any
"""A :class:`durably.Step`. Named loosely: :mod:`durably.definitions` imports this module, so
this one may not import it back (no import cycle, not even a type-only one); the engine's
:class:`~durably.engine.execution.Execution` declares the precise types."""

WorkflowDefinition: TypeAlias = Any
"""A :class:`durably.Workflow` (typed loosely for the reason given at :data:`StepDefinition`)."""


class _NoDefault:
    """The type of :data:`NO_DEFAULT`."""

    def __repr__(self) -> str:
        return "<no default: raise EventTimeoutError>"


NO_DEFAULT: Any = _NoDefault()
"""``wait_event``'s ``default`` when none is given: a timeout raises ``EventTimeoutError``."""


class WorkflowAborted(BaseException):
    """Unwinds workflow code that must stop now (lease lost, divergence, worker stopping).

    A ``BaseException`` so that ``except Exception`` in user code cannot swallow it.
    """


class ContinueAsNewSignal(BaseException):
    """Raised by ``durably.continue_as_new()``: ends this run; carries the next run's input."""

    def __init__(self, encoded_input: str) -> None:
        super().__init__("continue as new")
        self.encoded_input = encoded_input


class StepFuture(Generic[T]):
    """The pending result of a step started with ``durably.submit()`` in a sync workflow."""

    def __init__(self, future: concurrent.futures.Future[T]) -> None:
        self._future = future

    def result(self, timeout: float | None = None) -> T:
        """Block until the step finished; return its result or raise its :class:`StepFailed`."""
        try:
            return self._future.result(timeout)
        except concurrent.futures.CancelledError:
            raise WorkflowAborted() from None

    def done(self) -> bool:
        """Whether the step has finished (or its result was replayed from the journal)."""
        return self._future.done()


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a running step knows about itself.

    ``idempotency_key`` is stable across retries, crashes and replays of this step in this
    workflow (``"<workflow id>:<key>"``): hand it to external APIs so a re-run side effect is not
    applied twice.
    """

    workflow_id: str
    workflow_name: str
    step: str
    seq: int
    attempt: int
    run: int = 1
    key: str = ""
    """The call's identity in the workflow code (see :class:`~durably.JournalEntry`): equal to
    ``str(seq)`` on a workflow's main line, ``"b1/0"`` and the like in concurrent branches."""

    @property
    def idempotency_key(self) -> str:
        """``"<workflow id>:<key>"`` (``"<id>:r<run>:<key>"`` after continue-as-new), the same
        for every attempt, crash and replay of this step. On a workflow's main line the key is
        the step's seq: ``"order-1:3"``."""
        key = self.key or str(self.seq)
        if self.run == 1:
            return f"{self.workflow_id}:{key}"
        return f"{self.workflow_id}:r{self.run}:{key}"


class WorkflowScope(abc.ABC):
    """The engine's side of a running workflow, as workflow code sees it."""

    workflow_id: str
    workflow_name: str
    is_async: bool

    @abc.abstractmethod
    def now(self) -> datetime:
        """Deterministic current time (recorded on first execution, replayed after)."""

    @abc.abstractmethod
    def random(self) -> float:
        """Deterministic random float in [0, 1)."""

    @abc.abstractmethod
    def uuid4(self) -> uuid.UUID:
        """Deterministic random UUID."""

    @abc.abstractmethod
    def patched(self, patch_id: str) -> bool:
        """Whether this point of the workflow takes the code path added by change ``patch_id``:
        True where the journal records its marker here or ends before here (the marker is then
        recorded), False where the journal went past here without it."""

    @abc.abstractmethod
    def deprecate_patch(self, patch_id: str) -> None:
        """Accept (consume) the marker of change ``patch_id`` here if the journal has one."""

    @abc.abstractmethod
    def run_step(
        self, step: StepDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]:
        """Async workflows: take the next sequence number now and return the step's awaitable."""

    @abc.abstractmethod
    def submit_step(
        self, step: StepDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepFuture[Any]:
        """Sync workflows: take the next sequence number now and start the step; return a future."""

    @abc.abstractmethod
    def call_step(self, step: StepDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Sync workflows: run the step durably and block for its result."""

    @abc.abstractmethod
    def sleep(self, seconds: float | None, until: float | None = None) -> Awaitable[None]:
        """Async workflows: a durable timer (``seconds`` from now, or ``until`` a Unix time)."""

    @abc.abstractmethod
    def sleep_blocking(self, seconds: float | None, until: float | None = None) -> None:
        """Sync workflows: a durable timer, blocking."""

    @abc.abstractmethod
    def wait_event(self, name: str, timeout: float | None, default: Any) -> Awaitable[Any]:
        """Async workflows: the next event ``name``'s payload; after ``timeout``, ``default``,
        or ``EventTimeoutError`` raised if it is :data:`NO_DEFAULT`."""

    @abc.abstractmethod
    def wait_event_blocking(self, name: str, timeout: float | None, default: Any) -> Any:
        """Sync workflows: like :meth:`wait_event`, blocking."""

    @abc.abstractmethod
    def wait_any(self, waits: Sequence[Any], keys: Sequence[str | None]) -> Awaitable[Any]:
        """Async workflows: the first of ``waits`` (``durably.event``, ``durably.timer``, child
        handles) to fire, as a ``durably.Fired`` with its index, its key from ``keys`` and its
        value; the choice is journaled."""

    @abc.abstractmethod
    def wait_any_blocking(self, waits: Sequence[Any], keys: Sequence[str | None]) -> Any:
        """Sync workflows: like :meth:`wait_any`, blocking."""

    @abc.abstractmethod
    def set_state(self, key: str, value: Any) -> None:
        """Publish ``key = value`` for readers outside the workflow."""

    @abc.abstractmethod
    def start_child(
        self,
        workflow: WorkflowDefinition,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        child_id: str | None,
    ) -> ChildHandle[Any]:
        """Start a child workflow (once, durably) and return a handle to await it."""

    @abc.abstractmethod
    def child_result(self, seq: int, child_id: str, workflow: WorkflowDefinition) -> Any:
        """The child's result: an awaitable in async workflows, the value in sync ones."""

    @abc.abstractmethod
    def continue_as_new(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """End this run and start the workflow afresh with new arguments (never returns)."""


class ChildHandle(Generic[T]):
    """A child workflow started with ``durably.start_child()``.

    ``await handle`` (async workflows) or ``handle.result()`` (sync workflows) waits durably for
    its result; a child that did not complete raises :class:`~durably.ChildWorkflowFailed`, and
    so does a child that could not start because another workflow holds its id (status
    ``not_started``).
    """

    def __init__(
        self, scope: WorkflowScope, seq: int, child_id: str, workflow: WorkflowDefinition
    ) -> None:
        self._scope = scope
        self._seq = seq
        self._workflow = workflow
        self.id = child_id

    def __await__(self) -> Generator[Any, None, T]:
        awaitable: Awaitable[T] = self._scope.child_result(self._seq, self.id, self._workflow)
        return awaitable.__await__()

    def result(self) -> T:
        """Sync workflows: block until the child finished; return its result."""
        value: T = self._scope.child_result(self._seq, self.id, self._workflow)
        return value

    def __repr__(self) -> str:
        return f"<ChildHandle {self.id!r}>"


scope_var: ContextVar[WorkflowScope | None] = ContextVar("durably_workflow", default=None)
step_var: ContextVar[StepContext | None] = ContextVar("durably_step", default=None)


def current_scope() -> WorkflowScope | None:
    """The workflow running on this context, or None outside workflow code (and inside steps)."""
    return scope_var.get()


def current_step() -> StepContext | None:
    """The step running on this context, or None outside step code."""
    return step_var.get()
