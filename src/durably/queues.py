"""Named queues with flow control: global concurrency and rate limits, per-worker limits,
priorities.

Define a queue once, at import time of the module that holds your workflows, so that every
process (the ones that enqueue and the workers) knows its limits::

    emails = durably.Queue("emails", concurrency=10, rate_limit=(100, 60.0))

    emails.enqueue(send_welcome, user_id, id=f"welcome-{user_id}")

Limits hold across every worker on every host sharing the database: ``concurrency`` caps the
workflows of the queue admitted and not finished (a workflow is admitted when a worker first
picks it up and keeps its place until it finishes, through sleeps and waits); ``rate_limit``
``(n, seconds)`` caps admissions in any window of that many seconds; ``worker_concurrency``
caps the queue's workflows in progress in one worker process. Workers serve the ``default``
queue and every queue defined in their process, unless told which (``WorkerOptions(queues=...)``
or ``durably worker app:app --queue gpu``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, overload

from durably.errors import ConfigurationError, UnknownWorkflowError
from durably.storage.base import QueueClaim

if TYPE_CHECKING:
    from durably.app import App
    from durably.definitions import Workflow
    from durably.handle import WorkflowHandle

__all__ = [
    "DEFAULT_QUEUE",
    "Queue",
    "defined_queue",
    "defined_queues",
    "enqueue_target",
    "validate_priority",
    "validate_queue_name",
]

log = logging.getLogger("durably.queues")

R = TypeVar("R")

DEFAULT_QUEUE = "default"
"""The queue of workflows started with ``app.start``: no limits unless a Queue redefines it."""

_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
_defined: dict[str, Queue] = {}
_lock = threading.Lock()


def validate_queue_name(name: object) -> str:
    """``name`` if it is a valid queue name, else a ConfigurationError saying what is valid."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"invalid queue name {name!r}: use 1 to 100 letters, digits, '_', '-', '.' or ':'"
        )
    return name


def validate_priority(priority: object) -> int:
    """``priority`` if it is a 32-bit whole number, else a ConfigurationError."""
    if type(priority) is not int or not -(2**31) <= priority < 2**31:
        raise ConfigurationError(f"priority must be a 32-bit whole number, got {priority!r}")
    return priority


def enqueue_target(queue: Queue | str, priority: int) -> tuple[str, int]:
    """The queue name and checked priority of an enqueue onto ``queue`` (a Queue, or a name:
    checked against the Queue of that name defined here, if any)."""
    if isinstance(queue, Queue):
        return queue.name, queue.check_priority(priority)
    name = validate_queue_name(queue)
    defined = defined_queue(name)
    return name, validate_priority(priority) if defined is None else defined.check_priority(
        priority
    )


def defined_queue(name: str) -> Queue | None:
    """The Queue defined in this process under ``name``, if any."""
    return _defined.get(name)


def defined_queues() -> list[str]:
    """The names of every Queue defined in this process."""
    return sorted(_defined)


class Queue:
    """A named queue with flow control. See the module docstring.

    ``concurrency``: at most this many of the queue's workflows admitted and unfinished at once,
    across all workers. ``worker_concurrency``: at most this many in progress in one worker
    process. ``rate_limit=(n, seconds)``: at most ``n`` admitted in any ``seconds`` window,
    across all workers. ``priority=True``: ``enqueue(..., priority=p)`` orders the queue,
    higher ``p`` first (then oldest first); without it the queue is first in, first out.

    Defining a queue registers it in this process under its name (a later definition with the
    same name replaces it); workers read the limits from the definitions in their process.
    """

    def __init__(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        worker_concurrency: int | None = None,
        rate_limit: tuple[int, float] | None = None,
        priority: bool = False,
    ) -> None:
        self.name = validate_queue_name(name)
        for label, value in (("concurrency", concurrency),
                             ("worker_concurrency", worker_concurrency)):  # fmt: skip
            if value is not None and (type(value) is not int or value < 1):
                raise ConfigurationError(
                    f"queue {name!r}: {label} must be a whole number >= 1 or None, got {value!r}"
                )
        if rate_limit is not None:
            ok = (
                isinstance(rate_limit, tuple)
                and len(rate_limit) == 2
                and type(rate_limit[0]) is int
                and rate_limit[0] >= 1
                and isinstance(rate_limit[1], int | float)
                and rate_limit[1] > 0
            )
            if not ok:
                raise ConfigurationError(
                    f"queue {name!r}: rate_limit must be (count >= 1, seconds > 0), such as "
                    f"(100, 60.0) for 100 a minute; got {rate_limit!r}"
                )
            rate_limit = (rate_limit[0], float(rate_limit[1]))
        if not isinstance(priority, bool):
            raise ConfigurationError(f"queue {name!r}: priority must be True or False")
        self.concurrency = concurrency
        self.worker_concurrency = worker_concurrency
        self.rate_limit = rate_limit
        self.priority = priority
        with _lock:
            old = _defined.get(self.name)
            if old is not None and old.limits() != self.limits():
                log.warning("queue %r redefined: %s replaces %s", name, self, old)
            _defined[self.name] = self

    def limits(self) -> tuple[Any, ...]:
        """The queue's settings, comparable between definitions."""
        return (self.concurrency, self.worker_concurrency, self.rate_limit, self.priority)

    @property
    def limited(self) -> bool:
        """Whether any limit (global or per worker) applies to this queue."""
        return (self.concurrency, self.worker_concurrency, self.rate_limit) != (None, None, None)

    def claim(self, active_here: int) -> QueueClaim:
        """What a worker with ``active_here`` of this queue's workflows in progress may claim."""
        limit = (
            None
            if self.worker_concurrency is None
            else max(self.worker_concurrency - active_here, 0)
        )
        return QueueClaim(self.name, limit, self.concurrency, self.rate_limit)

    def check_priority(self, priority: int) -> int:
        """``priority`` if this queue accepts it, else a ConfigurationError."""
        validate_priority(priority)
        if priority and not self.priority:
            raise ConfigurationError(
                f"queue {self.name!r} does not order by priority: define it with "
                "durably.Queue(..., priority=True) to enqueue with a priority"
            )
        return priority

    @overload
    def enqueue(
        self,
        workflow: Workflow[..., Coroutine[Any, Any, R]],
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[R]: ...
    @overload
    def enqueue(
        self,
        workflow: Workflow[..., R],
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[R]: ...
    def enqueue(
        self,
        workflow: Workflow[..., Any],
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Start ``workflow(*args, **kwargs)`` on this queue, through the App it is registered
        on, and return its handle (starting an existing id returns that workflow).

        ``priority`` (queues defined with ``priority=True``): higher runs first. ``id`` and
        ``priority`` are taken by enqueue: pass workflow parameters of those names by position.
        To enqueue by workflow name, from a process without the code, use
        ``app.enqueue(queue, "name", ...)``.
        """
        return _app_of(workflow).enqueue(self, workflow, *args, id=id, priority=priority, **kwargs)

    async def enqueue_async(
        self,
        workflow: Workflow[..., Any],
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Async twin of :meth:`enqueue`."""
        app = _app_of(workflow)
        return await app.enqueue_async(self, workflow, *args, id=id, priority=priority, **kwargs)

    def __repr__(self) -> str:
        parts = [repr(self.name)]
        for label in ("concurrency", "worker_concurrency", "rate_limit"):
            if getattr(self, label) is not None:
                parts.append(f"{label}={getattr(self, label)!r}")
        if self.priority:
            parts.append("priority=True")
        return f"Queue({', '.join(parts)})"


def _app_of(workflow: object) -> App:
    from durably.definitions import Workflow

    if not isinstance(workflow, Workflow):
        raise UnknownWorkflowError(
            f"queue.enqueue() takes a workflow function decorated with @app.workflow, got "
            f"{type(workflow).__name__}; to enqueue by name use app.enqueue(queue, name, ...)"
        )
    app: App | None = workflow.app
    if app is None:
        raise UnknownWorkflowError(
            f"workflow {workflow.name!r} is not registered on an App: decorate it with "
            "@app.workflow"
        )
    return app
