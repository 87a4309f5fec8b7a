"""What running workflow or step code can see of the engine, found on the running context.

The user-facing functions (``durably.now()``, ``durably.run()``...) and the step decorator never
import the engine or the worker: they look up the :class:`WorkflowScope` that the engine placed
on the current context, as Temporal's SDK finds its runtime.
"""

from __future__ import annotations

import abc
import concurrent.futures
import uuid
from collections.abc import Awaitable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from durably.definitions import Step

__all__ = [
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


class WorkflowAborted(BaseException):
    """Unwinds workflow code that must stop now (lease lost, divergence, worker stopping).

    A ``BaseException`` so that ``except Exception`` in user code cannot swallow it.
    """


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
    workflow (``"<workflow id>:<seq>"``): hand it to external APIs so a re-run side effect is not
    applied twice.
    """

    workflow_id: str
    workflow_name: str
    step: str
    seq: int
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """``"<workflow id>:<seq>"``, the same for every attempt of this step."""
        return f"{self.workflow_id}:{self.seq}"


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
    def run_step(
        self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]:
        """Async workflows: take the next sequence number now and return the step's awaitable."""

    @abc.abstractmethod
    def submit_step(
        self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepFuture[Any]:
        """Sync workflows: take the next sequence number now and start the step; return a future."""

    @abc.abstractmethod
    def call_step(self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Sync workflows: run the step durably and block for its result."""


scope_var: ContextVar[WorkflowScope | None] = ContextVar("durably_workflow", default=None)
step_var: ContextVar[StepContext | None] = ContextVar("durably_step", default=None)


def current_scope() -> WorkflowScope | None:
    """The workflow running on this context, or None outside workflow code (and inside steps)."""
    return scope_var.get()


def current_step() -> StepContext | None:
    """The step running on this context, or None outside step code."""
    return step_var.get()
