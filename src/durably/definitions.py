"""Step and workflow definitions: what ``@app.step`` and ``@app.workflow`` return."""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Generic, Literal, ParamSpec, TypeVar

from durably.errors import ConfigurationError, DurablyError, UnknownWorkflowError
from durably.queues import (
    DEFAULT_QUEUE,
    Queue,
    QueueLimits,
    QueueOwner,
    standalone_queue,
    standalone_queues,
    validate_priority,
    validate_queue_name,
)
from durably.retention import APP_DEFAULT, AppDefault
from durably.retry import Retry
from durably.schedules.spec import Schedule
from durably.scope import WorkflowScope, current_scope
from durably.storage.base import VersionClaim

Versioning = Literal["pinned", "auto_upgrade"]
"""How a workflow follows the App's versions (see :attr:`Workflow.versioning`)."""
VERSIONING: tuple[Versioning, Versioning] = ("pinned", "auto_upgrade")

__all__ = ["Registry", "Step", "Workflow", "not_a_workflow"]

log = logging.getLogger("durably.queues")

P = ParamSpec("P")
R = TypeVar("R")


def _return_hint(fn: Callable[..., Any]) -> Any:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: no conversion
        return Any
    return hints.get("return", Any)


class _Definition(Generic[P, R]):
    """What steps and workflows share: the function, its registered name and the App."""

    def __init__(self, fn: Callable[P, R], *, name: str) -> None:
        self.fn = fn
        self.name = name
        self.is_async = inspect.iscoroutinefunction(fn)
        self.return_hint = _return_hint(fn)
        self.app: QueueOwner | None = None
        """The App a workflow is registered on (set by ``@app.workflow``; steps keep None)."""
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """A call: each kind says what it does inside and outside a workflow."""
        raise NotImplementedError


class Step(_Definition[P, R]):
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
        super().__init__(fn, name=name)
        self.retry = retry
        self.timeout = timeout

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        scope = current_scope()
        if scope is None:
            return self.fn(*args, **kwargs)
        if scope.is_async != self.is_async:
            raise self._called_directly(scope)
        if scope.is_async:
            return scope.run_step(self, args, kwargs)  # type: ignore[return-value]
        return typing.cast(R, scope.call_step(self, args, kwargs))

    def _called_directly(self, scope: WorkflowScope) -> DurablyError:
        """The error of a direct call of this step from a workflow of the other kind."""
        kind, other, how = (
            ("sync", "async", f"await durably.run({self.name}, ...)")
            if scope.is_async
            else ("async", "sync", f"durably.submit({self.name}, ...).result()")
        )
        return DurablyError(
            f"{kind} step {self.name!r} called directly in {other} workflow "
            f"{scope.workflow_name!r}: write `{how}`",
            workflow_id=scope.workflow_id,
            step=self.name,
        )

    def __repr__(self) -> str:
        return f"<durably step {self.name!r}>"


class Workflow(_Definition[P, R]):
    """A durable function registered with ``@app.workflow``. Start it with ``app.start(...)``.

    Called inside another workflow it runs as a child workflow (``await child(...)`` in async
    workflows; a blocking call in sync ones). Called outside any workflow it runs as a plain
    function (its steps run undurably).
    """

    versioning: Versioning = "pinned"
    """How it follows the App's versions: ``"pinned"`` (run only by workers of the version it
    started under) or ``"auto_upgrade"`` (run by workers of any version; changes to its code
    go behind :func:`durably.patched`)."""

    retention: timedelta | AppDefault | None = APP_DEFAULT
    """How long its finished runs are kept before the workers purge them: a timedelta, None
    (forever), or :data:`durably.APP_DEFAULT` (the App's ``retention``)."""

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
    """The workflows, steps and queues an :class:`~durably.App` knows, by name."""

    def __init__(self) -> None:
        self.workflows: dict[str, Workflow[Any, Any]] = {}
        self.steps: dict[str, Step[Any, Any]] = {}
        self.queues: dict[str, Queue] = {}
        """The App's queues: defined on it (``app.queue``, ``app.add_queue``), or stand-alone
        Queues it adopted when enqueuing onto them."""
        self._told: set[str] = set()
        self.version: str | None = None
        """The version of the code these definitions are (``App(version=...)``), or None."""
        self.schedules: dict[str, tuple[Schedule, str, str]] = {}
        """The schedules the App declares, by name: (schedule, workflow name, queue name);
        its workers write them when they start (see :mod:`durably.schedules`)."""
        self.retention: timedelta | None = None
        """How long finished workflows are kept (``App(retention=...)``); None: forever."""

    def retention_of(self, name: str) -> timedelta | None:
        """The retention of workflows named ``name`` registered here: their own
        (``@app.workflow(retention=...)``) or else the App's."""
        wf = self.workflows.get(name)
        if wf is None or isinstance(wf.retention, AppDefault):
            return self.retention
        return wf.retention

    def version_claim(self) -> VersionClaim | None:
        """What a worker of this code claims (see :class:`VersionClaim`): None when unversioned
        (anything), else its version's workflows, unversioned ones, and every version's of its
        ``auto_upgrade`` workflows."""
        if self.version is None:
            return None
        return VersionClaim(self.version, tuple(self.auto_upgrade()))

    def auto_upgrade(self) -> list[str]:
        """The names of the ``auto_upgrade`` workflows, sorted."""
        return sorted(n for n, w in self.workflows.items() if w.versioning == VERSIONING[1])

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

    def add_queue(self, queue: Queue, app: QueueOwner) -> Queue:
        """Define ``queue`` on ``app`` (the App of this registry) and return it. A later
        definition of a name replaces the earlier one (with a warning if their limits differ);
        a queue defined on another App is refused."""
        self._check_owner(queue, app)
        self._put(queue)
        queue.app = app
        queue._unlist()
        return queue

    def define_queue(self, name: str, limits: QueueLimits, app: QueueOwner) -> Queue:
        """Define a new queue ``name`` with ``limits`` on ``app`` (never listed process-wide,
        unlike a stand-alone ``durably.Queue``) and return it, as :meth:`add_queue`."""
        return self.add_queue(Queue._unlisted(name, limits), app)

    def enqueue_target(self, queue: Queue | str, priority: int, app: object) -> tuple[str, int]:
        """The queue name and checked priority of an enqueue by ``app`` (the App of this
        registry) onto ``queue``, checked against the App's definition of that queue. The App
        adopts a stand-alone Queue (but its own definition of that name, if any, holds); a
        queue defined on another App is refused."""
        if not isinstance(queue, Queue):
            name = validate_queue_name(queue)
            defined = self.queue(name)
            return name, (
                validate_priority(priority) if defined is None else defined.check_priority(priority)
            )
        self._check_owner(queue, app)
        current = self.queues.get(queue.name)
        if current is None or current.app is None:  # none here, or adopted: adopt this one
            priority = queue.check_priority(priority)
            self._put(queue)
            return queue.name, priority
        if current is not queue and current.limits() != queue.limits():
            self._tell(f"queue {queue.name!r}: this App defines {current}; {queue} is ignored")
        return queue.name, current.check_priority(priority)

    def queue(self, name: str) -> Queue | None:
        """The App's queue named ``name``; else, as a deprecated fallback, the live stand-alone
        ``durably.Queue`` of that name (see :mod:`durably.queues`), if any."""
        queue = self.queues.get(name)
        if queue is None:
            queue = standalone_queue(name)
            if queue is not None:
                self._tell(
                    f"queue {name!r}: using {queue}, defined in this process but not on this "
                    f"App (deprecated): define it with app.queue({name!r}, ...)"
                )
        return queue

    def queue_names(self) -> list[str]:
        """The queues a worker of this App serves unless told which: ``default``, the App's
        queues and, as a deprecated fallback, the live stand-alone Queues of the process."""
        names = {*self.queues, *standalone_queues()}
        names.discard(DEFAULT_QUEUE)
        return [DEFAULT_QUEUE, *sorted(names)]

    def serves_queue(self, name: str) -> bool:
        """Whether ``name`` is in :meth:`queue_names` (without listing them)."""
        return name == DEFAULT_QUEUE or name in self.queues or standalone_queue(name) is not None

    @staticmethod
    def _check_owner(queue: Queue, app: object) -> None:
        if queue.app is not None and queue.app is not app:
            raise ConfigurationError(
                f"queue {queue.name!r} is defined on another App ({queue.app!r}): enqueue onto "
                f"it through that App, or define one here with app.queue({queue.name!r}, ...)"
            )

    def _put(self, queue: Queue) -> None:
        old = self.queues.get(queue.name)
        if old is not None and old is not queue and old.limits() != queue.limits():
            log.warning("queue %r redefined: %s replaces %s", queue.name, queue, old)
        self.queues[queue.name] = queue

    def _tell(self, message: str) -> None:
        """Log ``message`` once for this App."""
        if message not in self._told:
            self._told.add(message)
            log.warning("%s", message)

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
