"""Named queues with flow control: global concurrency and rate limits, per-worker limits,
priorities.

Define a queue on the App that runs its workflows, at import time of the module that holds them,
so that every process (the ones that enqueue and the workers) knows its limits::

    emails = app.queue("emails", concurrency=10, rate_limit=(100, 60.0))

    emails.enqueue(send_welcome, user_id, id=f"welcome-{user_id}")

Limits hold across every worker on every host sharing the database: ``concurrency`` caps the
workflows of the queue admitted and not finished (a workflow is admitted when a worker first
picks it up and keeps its place until it finishes, through sleeps and waits); ``rate_limit``
``(n, seconds)`` caps admissions in any window of that many seconds; ``worker_concurrency``
caps the queue's workflows in progress in one worker process. A worker serves the ``default``
queue and every queue of its App, unless told which (``WorkerOptions(queues=...)`` or
``durably worker app:app --queue gpu``).

A queue belongs to the App that defines it (``app.queue(...)``, or ``app.add_queue(queue)`` for
a :class:`Queue` made elsewhere): another App in the same process does not see it.

A stand-alone ``durably.Queue(...)`` (the older way, still supported) belongs to no App until
one uses it: enqueuing onto it (``queue.enqueue(wf, ...)``, ``app.enqueue(queue, ...)``) makes
the App of that enqueue adopt it, and that App's worker serves it with its limits. Deprecated
fallback: a stand-alone Queue that no App has adopted is still found by name (a worker serves
it, ``app.enqueue("name", ...)`` checks against it) by an App that has no queue of that name, as
long as the Queue object lives (the module that defines it holds it); define it with
``app.queue(...)`` instead.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar, overload

from durably.errors import ConfigurationError, UnknownWorkflowError
from durably.storage.base import QueueClaim

if TYPE_CHECKING:
    from durably.handle import WorkflowHandle

__all__ = [
    "DEFAULT_QUEUE",
    "Queue",
    "QueueLimits",
    "QueueOwner",
    "defined_queue",
    "defined_queues",
    "enqueue_target",
    "standalone_queue",
    "standalone_queues",
    "validate_priority",
    "validate_queue_name",
]

log = logging.getLogger("durably.queues")

R = TypeVar("R")

DEFAULT_QUEUE = "default"
"""The queue of workflows started with ``app.start``: no limits unless a Queue redefines it."""

_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
_standalone: weakref.WeakValueDictionary[str, Queue] = weakref.WeakValueDictionary()
"""Deprecated fallback: the live stand-alone Queues (``durably.Queue(...)`` registered on no
App), by name, the latest definition of each name. Held weakly: a Queue no one holds any more
is forgotten (so a test's queue does not outlive it)."""
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
    """The queue name and checked priority of an enqueue onto ``queue`` by a process with no App
    (a :class:`~durably.Client`): a Queue, or a name (checked against the stand-alone Queue of
    that name, if any). An App checks against its own definitions (``Registry.enqueue_target``)."""
    if isinstance(queue, Queue):
        return queue.name, queue.check_priority(priority)
    name = validate_queue_name(queue)
    standalone = standalone_queue(name)
    return name, (
        validate_priority(priority) if standalone is None else standalone.check_priority(priority)
    )


def standalone_queue(name: str) -> Queue | None:
    """The live stand-alone Queue named ``name`` (made with ``durably.Queue(...)`` and registered
    on no App), if any: the deprecated fallback an App consults for a name it has no queue of."""
    with _lock:
        return _standalone.get(name)


def standalone_queues() -> list[str]:
    """The names of the live stand-alone Queues (see :func:`standalone_queue`)."""
    with _lock:
        return sorted(_standalone.keys())


def defined_queue(name: str) -> Queue | None:
    """Deprecated: queues belong to their App (``app.registry.queue(name)``); this is
    :func:`standalone_queue`, which knows no queue defined with ``app.queue(...)``."""
    warnings.warn(
        "durably.queues.defined_queue() is deprecated: queues belong to their App; use "
        "app.registry.queue(name)",
        DeprecationWarning,
        stacklevel=2,
    )
    return standalone_queue(name)


def defined_queues() -> list[str]:
    """Deprecated: the names of the stand-alone Queues (see :func:`defined_queue`); an App's
    are ``app.registry.queue_names()``."""
    warnings.warn(
        "durably.queues.defined_queues() is deprecated: queues belong to their App; use "
        "app.registry.queue_names()",
        DeprecationWarning,
        stacklevel=2,
    )
    return standalone_queues()


class QueueOwner(Protocol):
    """What a :class:`Queue` (and a workflow, see ``Workflow.app``) uses of the App it belongs
    to: its enqueues (:class:`durably.App` is one; typed here so that this layer needs no import
    of the App's)."""

    def enqueue(
        self, queue: Queue, workflow: Any, /, *args: Any, **kwargs: Any
    ) -> WorkflowHandle[Any]:
        """Start ``workflow(*args, **kwargs)`` on ``queue`` (``id=``, ``priority=`` as
        :meth:`durably.App.enqueue` takes them) and return its handle."""

    async def enqueue_async(
        self, queue: Queue, workflow: Any, /, *args: Any, **kwargs: Any
    ) -> WorkflowHandle[Any]:
        """Async twin of :meth:`enqueue`."""


class QueueLimits(TypedDict, total=False):
    """The limits of a queue, as the keyword arguments of ``app.queue(name, ...)`` (their
    meaning and defaults are :class:`Queue`'s)."""

    concurrency: int | None
    worker_concurrency: int | None
    rate_limit: tuple[int, float] | None
    priority: bool


class Queue:
    """A named queue with flow control. See the module docstring.

    ``concurrency``: at most this many of the queue's workflows admitted and unfinished at once,
    across all workers. ``worker_concurrency``: at most this many in progress in one worker
    process. ``rate_limit=(n, seconds)``: at most ``n`` admitted in any ``seconds`` window,
    across all workers. ``priority=True``: ``enqueue(..., priority=p)`` orders the queue,
    higher ``p`` first (then oldest first); without it the queue is first in, first out.

    Define a queue with ``app.queue(name, ...)``: it belongs to that App, whose workers serve it
    with these limits. ``durably.Queue(name, ...)`` makes a stand-alone queue, which the App of
    its first enqueue adopts (``app.add_queue(queue)`` registers it explicitly); until then it
    is a deprecated, process-wide fallback (see the module docstring).
    """

    app: QueueOwner | None
    """The App this queue is defined on (``app.queue``/``app.add_queue``); None for a
    stand-alone queue (which any App that enqueues onto it adopts)."""

    def __init__(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        worker_concurrency: int | None = None,
        rate_limit: tuple[int, float] | None = None,
        priority: bool = False,
    ) -> None:
        self._settle(name, concurrency, worker_concurrency, rate_limit, priority)
        with _lock:
            old = _standalone.get(self.name)
            if old is not None and old.limits() != self.limits():
                log.warning("queue %r redefined: %s replaces %s", name, self, old)
            _standalone[self.name] = self

    @classmethod
    def _unlisted(cls, name: str, limits: QueueLimits) -> Queue:
        """A queue for ``app.queue(name, **limits)``: never in the stand-alone fallback."""
        unknown = sorted(limits.keys() - QueueLimits.__optional_keys__)
        if unknown:
            raise TypeError(f"app.queue() got unexpected keyword arguments: {unknown}")
        queue = cls.__new__(cls)
        queue._settle(
            name,
            limits.get("concurrency"),
            limits.get("worker_concurrency"),
            limits.get("rate_limit"),
            limits.get("priority", False),
        )
        return queue

    def _settle(
        self,
        name: str,
        concurrency: int | None,
        worker_concurrency: int | None,
        rate_limit: tuple[int, float] | None,
        priority: bool,
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
        self.app = None

    def _unlist(self) -> None:
        """Leave the stand-alone fallback (this queue is now defined on an App)."""
        with _lock:
            if _standalone.get(self.name) is self:
                del _standalone[self.name]

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
                "app.queue(..., priority=True) to enqueue with a priority"
            )
        return priority

    @overload
    def enqueue(
        self,
        workflow: Callable[..., Coroutine[Any, Any, R]],
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[R]: ...
    @overload
    def enqueue(
        self,
        workflow: Callable[..., R],
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[R]: ...
    def enqueue(
        self,
        workflow: Callable[..., Any],
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Start ``workflow(*args, **kwargs)`` on this queue, through the App ``workflow`` is
        registered on (which adopts a stand-alone queue; a queue defined on another App is
        refused), and return its handle (starting an existing id returns that workflow).

        ``priority`` (queues defined with ``priority=True``): higher runs first. ``id`` and
        ``priority`` are taken by enqueue: pass workflow parameters of those names by position.
        To enqueue by workflow name, from a process without the code, use
        ``app.enqueue(queue, "name", ...)``.
        """
        return _app_of(workflow).enqueue(self, workflow, *args, id=id, priority=priority, **kwargs)

    async def enqueue_async(
        self,
        workflow: Callable[..., Any],
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


def _app_of(workflow: object) -> QueueOwner:
    """The App ``workflow`` is registered on (which checks that it is one of its workflows)."""
    app: QueueOwner | None = getattr(workflow, "app", None)  # (definitions import this module)
    if app is None:
        raise UnknownWorkflowError(
            "queue.enqueue() takes a workflow function decorated with @app.workflow (on an App), "
            f"got {type(workflow).__name__} {repr(workflow)[:100]}; to enqueue by name use "
            "app.enqueue(queue, name, ...)"
        )
    return app
