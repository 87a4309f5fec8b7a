"""The awaitable a step call returns in an async workflow, which notices a forgotten ``await``.

``my_step(x)`` without ``await`` takes the step's place in the journal but never runs it;
Python would only say ``coroutine 'Execution._execute_step' was never awaited``. A
:class:`StepCall` is a coroutine (``asyncio.gather``, ``create_task`` and ``TaskGroup`` take it
as one) that, dropped without ever being awaited or scheduled, closes its inner coroutine and
warns with a ``RuntimeWarning`` naming the step and the workflow.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Coroutine, Generator
from typing import Any

__all__ = ["StepCall"]


class StepCall(Coroutine[Any, Any, Any]):
    """A step call's coroutine ``inner``: step ``step`` (seq ``seq``) of workflow
    ``workflow_id`` (``workflow_name``). ``quiet()`` says whether a drop is expected (the
    execution was halted: what it left unawaited does not matter)."""

    __slots__ = ("_inner", "_quiet", "_started", "seq", "step", "workflow_id", "workflow_name")

    def __init__(
        self,
        inner: Coroutine[Any, Any, Any],
        *,
        step: str,
        seq: int,
        workflow_id: str,
        workflow_name: str,
        quiet: Callable[[], bool],
    ) -> None:
        self._inner = inner
        self._started = False
        """Whether ``inner`` was ever awaited, scheduled, thrown into or closed: dropped before
        that, this call was never awaited (:meth:`__del__` warns)."""
        self._quiet = quiet
        self.step = step
        self.seq = seq
        self.workflow_id = workflow_id
        self.workflow_name = workflow_name

    def __await__(self) -> Generator[Any, None, Any]:
        self._started = True
        return self._inner.__await__()

    def send(self, value: Any) -> Any:
        """Run the step's coroutine on (what a Task does)."""
        self._started = True
        return self._inner.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """Raise into the step's coroutine (a cancelled Task)."""
        self._started = True
        if val is None and tb is None:
            return self._inner.throw(typ)
        return self._inner.throw(typ, val, tb)  # pragma: no cover - the old signature

    def close(self) -> None:
        """Close the step's coroutine (a deliberate close is no forgotten ``await``)."""
        self._started = True
        self._inner.close()

    def __repr__(self) -> str:
        return f"<durably step call {self.step!r} (seq {self.seq}) of {self.workflow_id!r}>"

    def __del__(self) -> None:
        if self._started:
            return
        self._inner.close()  # no "coroutine ... was never awaited" of its own
        if self._quiet():
            return
        warnings.warn(
            f"step {self.step!r} (seq {self.seq}) of workflow {self.workflow_id!r} "
            f"({self.workflow_name}) was called but never awaited, so it did not run: write "
            f"`await {self.step}(...)` (or pass the call to asyncio.gather / create_task)",
            RuntimeWarning,
            stacklevel=2,
        )
