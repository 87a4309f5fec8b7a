"""Step and workflow definitions: what ``@app.step`` and ``@app.workflow`` return."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from durably.errors import ConfigurationError, DurablyError, UnknownWorkflowError
from durably.retry import Retry
from durably.scope import current_scope

__all__ = ["Registry", "Step", "Workflow", "not_a_workflow"]

P = ParamSpec("P")
R = TypeVar("R")


def _return_hint(fn: Callable[..., Any]) -> Any:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: no conversion
        return Any
    return hints.get("return", Any)


class Step(Generic[P, R]):
    """A function whose calls inside a workflow are checkpointed.

    Inside an async workflow, ``await my_step(...)`` (async steps) or
    ``await durably.run(my_step, ...)`` (any step). Inside a sync workflow, ``my_step(...)``
    (sync steps) or ``durably.submit(my_step, ...).result()`` (any step). Outside any workflow a
    step is a plain function call, handy in unit tests.
    """

    def __init__(
        self, fn: Callable[P, R], *, name: str, retry: Retry, timeout: float | None
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"step {name!r}: timeout must be > 0 seconds, got {timeout}")
        self.fn = fn
        self.name = name
        self.retry = retry
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(fn)
        self.return_hint = _return_hint(fn)
        self.app: Any = None
        """The App this workflow is registered on (set by ``@app.workflow``)."""
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        scope = current_scope()
        if scope is None:
            return self.fn(*args, **kwargs)
        if scope.is_async:
            if not self.is_async:
                raise DurablyError(
                    f"sync step {self.name!r} called directly in async workflow "
                    f"{scope.workflow_name!r}: write `await durably.run({self.name}, ...)`",
                    workflow_id=scope.workflow_id,
                    step=self.name,
                )
            return scope.run_step(self, args, kwargs)  # type: ignore[return-value]
        if self.is_async:
            raise DurablyError(
                f"async step {self.name!r} called directly in sync workflow "
                f"{scope.workflow_name!r}: write `durably.submit({self.name}, ...).result()`",
                workflow_id=scope.workflow_id,
                step=self.name,
            )
        return typing.cast(R, scope.call_step(self, args, kwargs))

    def __repr__(self) -> str:
        return f"<durably step {self.name!r}>"


class Workflow(Generic[P, R]):
    """A durable function registered with ``@app.workflow``. Start it with ``app.start(...)``.

    Called inside another workflow it runs as a child workflow (``await child(...)`` in async
    workflows; a blocking call in sync ones). Called outside any workflow it runs as a plain
    function (its steps run undurably).
    """

    def __init__(self, fn: Callable[P, R], *, name: str) -> None:
        self.fn = fn
        self.name = name
        self.is_async = inspect.iscoroutinefunction(fn)
        self.return_hint = _return_hint(fn)
        self.app: Any = None
        """The App this workflow is registered on (set by ``@app.workflow``)."""
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        scope = current_scope()
        if scope is None:
            return self.fn(*args, **kwargs)
        handle = scope.start_child(self, args, kwargs, None)
        if scope.is_async:
            return handle  # type: ignore[return-value]  # awaitable like the coroutine it types
        return typing.cast(R, handle.result())

    def __repr__(self) -> str:
        return f"<durably workflow {self.name!r}>"


class Registry:
    """The workflows and steps an :class:`~durably.App` knows, by name."""

    def __init__(self) -> None:
        self.workflows: dict[str, Workflow[Any, Any]] = {}
        self.steps: dict[str, Step[Any, Any]] = {}

    def add_workflow(self, wf: Workflow[Any, Any]) -> None:
        """Register ``wf``; a second, different function under one name is an error."""
        old = self.workflows.get(wf.name)
        if old is not None and old.fn is not wf.fn:
            raise ConfigurationError(
                f"two workflows are named {wf.name!r}; pass @app.workflow(name=...) to tell "
                "them apart"
            )
        self.workflows[wf.name] = wf

    def add_step(self, step: Step[Any, Any]) -> None:
        """Register ``step``; a second, different function under one name is an error."""
        old = self.steps.get(step.name)
        if old is not None and old.fn is not step.fn:
            raise ConfigurationError(
                f"two steps are named {step.name!r}; pass @app.step(name=...) to tell them apart"
            )
        self.steps[step.name] = step

    def workflow(self, name: str) -> Workflow[Any, Any]:
        """The workflow registered under ``name``; :class:`UnknownWorkflowError` if none."""
        try:
            return self.workflows[name]
        except KeyError:
            known = ", ".join(sorted(self.workflows)) or "none"
            raise UnknownWorkflowError(
                f"unknown workflow {name!r} (registered here: {known}); decorate it with "
                "@app.workflow in the code this App imports"
            ) from None


def qualified_name(fn: Callable[..., Any]) -> str:
    """The default registered name of a function: its ``__name__``."""
    return getattr(fn, "__name__", repr(fn))


def not_a_workflow(who: str, value: object) -> str:
    """The message of ``<who>.start(value)`` when ``value`` is neither a workflow nor its name."""
    takes = f"{who}.start() takes a workflow registered with @app.workflow, or its name"
    if isinstance(value, Step):
        return f"{takes}; {value.name!r} is a step (@app.step): start a workflow that calls it"
    if callable(value):
        name = getattr(value, "__qualname__", None) or type(value).__name__
        return (
            f"{takes}; {name!r} is a plain {type(value).__name__}: decorate it with "
            "@app.workflow (or @app.workflow(name=...)) and start what the decorator returns"
        )
    return f"{takes}, got {type(value).__name__} {repr(value)[:100]}"
