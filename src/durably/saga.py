"""Sagas: register a compensation as each step succeeds; on failure, undo in reverse order."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, ParamSpec

from durably.definitions import Step
from durably.errors import StepFailed
from durably.scope import WorkflowAborted
from durably.with_block import WithBlock
from durably.workflow_api import run, submit

__all__ = ["Saga"]

P = ParamSpec("P")


class Saga(WithBlock):
    """Compensations for a workflow's completed steps, run in reverse order on failure.

    Async workflows::

        async with durably.Saga() as saga:
            await reserve(order)
            saga.add(release, order)          # undo of reserve, registered once it succeeded
            await charge(order)
            saga.add(refund, order)
            await ship(order)                 # raises StepFailed -> refund, then release, run

    Sync workflows use ``with durably.Saga() as saga:``. Leaving the block with an exception
    (including :class:`durably.Cancelled`) runs every compensation, newest first, each as a
    durable step, then re-raises. A compensation that fails does not stop the others; the first
    such failure is raised after all ran. Call :meth:`compensate` to undo explicitly.
    """

    def __init__(self) -> None:
        self._compensations: list[tuple[Step[Any, Any], tuple[Any, ...], dict[str, Any]]] = []

    def add(self, step: Step[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Register ``step(*args, **kwargs)`` as the undo of what just succeeded."""
        if not isinstance(step, Step):
            raise TypeError(f"Saga.add() takes a durably step (@app.step), got {step!r}")
        self._compensations.append((step, args, kwargs))

    def __len__(self) -> int:
        return len(self._compensations)

    async def compensate(self) -> None:
        """Run the compensations newest first (async workflows), then forget them."""
        first: StepFailed | None = None
        while self._compensations:
            step, args, kwargs = self._compensations.pop()
            try:
                await run(step, *args, **kwargs)
            except StepFailed as exc:
                first = first or exc
        if first is not None:
            raise first

    def compensate_sync(self) -> None:
        """Run the compensations newest first (sync workflows), then forget them."""
        first: StepFailed | None = None
        while self._compensations:
            step, args, kwargs = self._compensations.pop()
            try:
                submit(step, *args, **kwargs).result()
            except StepFailed as exc:
                first = first or exc
        if first is not None:
            raise first

    async def __aenter__(self) -> Saga:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and _compensable(exc):
            await self.compensate()

    def _exit(self, exc: BaseException | None) -> None:
        if exc is not None and _compensable(exc):
            self.compensate_sync()


def _compensable(exc: BaseException) -> bool:
    # Unwinding because the engine stopped this execution (lease lost, parked, worker stopping)
    # is not a failure of the workflow: it will be replayed, so nothing must be undone.
    return not isinstance(exc, WorkflowAborted | GeneratorExit | asyncio.CancelledError)
