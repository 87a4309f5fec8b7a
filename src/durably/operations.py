"""``WorkflowOperations``: what can be done to workflows from outside them, in process or remote.

:class:`durably.App` (reading and writing its database) and :class:`durably.Client` (through a
``durably server``) both satisfy this protocol, so code that operates workflows (the CLI's
management commands, the HTTP server, a user's admin script) can take either::

    def cancel_stuck(ops: durably.WorkflowOperations) -> None:
        for info in ops.iter_workflows(status="needs_attention"):
            ops.cancel(info.id)

:class:`OperationsBase` is what they share of its implementation: the typed starts over each
one's ``_create``, :meth:`~OperationsBase.handle`, and the async twins; :func:`thread_twin` and
:func:`forward` make methods out of others.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    ParamSpec,
    Protocol,
    TypeVar,
    overload,
    runtime_checkable,
)

from durably.handle import WorkflowHandle
from durably.ids import validate_workflow_id
from durably.queues import DEFAULT_QUEUE
from durably.with_block import WithBlock

if TYPE_CHECKING:
    from durably.bulk import BulkAction, BulkFilter, BulkResult
    from durably.definitions import Workflow
    from durably.handle import HandleSource, WorkflowInfo
    from durably.queues import Queue
    from durably.storage.base import VersionCounts, WorkerInfo, WorkflowStatus

__all__ = [
    "OperationsBase",
    "StartCall",
    "WorkflowFilter",
    "WorkflowOperations",
    "forward",
    "thread_twin",
]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


@runtime_checkable
class WorkflowOperations(Protocol):
    """Start, find, list and steer workflows: the operations :class:`durably.App` and
    :class:`durably.Client` share (each method is documented on :class:`durably.App`)."""

    def start(
        self,
        workflow: Workflow[..., Any] | str,
        /,
        *args: Any,
        id: str | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Start a workflow (or find the one with that id) and return its handle."""

    async def start_async(
        self,
        workflow: Workflow[..., Any] | str,
        /,
        *args: Any,
        id: str | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Async twin of :meth:`start`."""

    def enqueue(
        self,
        queue: Queue | str,
        workflow: Workflow[..., Any] | str,
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Start a workflow on a queue and return its handle."""

    async def enqueue_async(
        self,
        queue: Queue | str,
        workflow: Workflow[..., Any] | str,
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Async twin of :meth:`enqueue`."""

    def start_named(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        id: str | None = None,
        queue: Queue | str = "default",
        priority: int = 0,
    ) -> tuple[WorkflowHandle[Any], bool]:
        """Start a workflow by name with explicit arguments: its handle, and whether this call
        created it (False: the id existed; nothing was written or run)."""

    def handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle to an existing workflow by id (checked when used)."""

    def list_workflows(
        self,
        *,
        status: WorkflowStatus | str | Sequence[WorkflowStatus | str] | None = None,
        name: str | None = None,
        limit: int = 100,
        created_after: float | None = None,
        created_before: float | None = None,
        id_prefix: str | None = None,
        before: WorkflowInfo | tuple[float, str] | None = None,
    ) -> list[WorkflowInfo]:
        """One page of workflow summaries, newest first, filtered."""

    def iter_workflows(
        self,
        *,
        status: WorkflowStatus | str | Sequence[WorkflowStatus | str] | None = None,
        name: str | None = None,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
        id_prefix: str | None = None,
        page_size: int = 100,
    ) -> Iterator[WorkflowInfo]:
        """Every workflow summary matching the filters, newest first, page by page."""

    def list_workers(self, *, include_stale: bool = False) -> list[WorkerInfo]:
        """The worker processes on the database (live ones unless ``include_stale``)."""

    def count_versions(self) -> VersionCounts:
        """How many unfinished workflows each version has, by status."""

    def send_event(
        self, workflow_id: str, name: str, payload: Any = None, *, dedup_key: str | None = None
    ) -> bool:
        """Send an event to an unfinished workflow; False if ``dedup_key`` was already sent."""

    def cancel(self, workflow_id: str) -> None:
        """Cancel a workflow at its next durable point."""

    def terminate(self, workflow_id: str, reason: str = "terminated") -> None:
        """Stop a workflow now, with ``reason``."""

    def suspend(self, workflow_id: str) -> None:
        """Pause a workflow until resumed."""

    def resume(self, workflow_id: str) -> None:
        """Let a suspended workflow continue."""

    def retry(self, workflow_id: str) -> None:
        """Run a failed (or needs_attention) workflow again from its failed step."""

    def fork(
        self, workflow_id: str, *, from_step: int, new_id: str | None = None
    ) -> WorkflowHandle[Any]:
        """A new workflow re-executing this one from seq ``from_step``; returns its handle."""

    def purge(self, workflow_id: str) -> None:
        """Delete a finished workflow and everything it wrote."""

    def bulk(
        self,
        action: BulkAction,
        filter: BulkFilter,
        *,
        dry_run: bool = False,
        reason: str = "terminated",
        batch_size: int = 500,
        limit: int | None = None,
        after: str | None = None,
        progress: Callable[[BulkResult], None] | None = None,
    ) -> BulkResult:
        """Apply ``action`` to every workflow ``filter`` selects (see :mod:`durably.bulk`)."""

    async def start_named_async(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        id: str | None = None,
        queue: Queue | str = "default",
        priority: int = 0,
    ) -> tuple[WorkflowHandle[Any], bool]:
        """Async twin of :meth:`start_named`."""

    async def list_workflows_async(
        self,
        *,
        status: WorkflowStatus | str | Sequence[WorkflowStatus | str] | None = None,
        name: str | None = None,
        limit: int = 100,
        created_after: float | None = None,
        created_before: float | None = None,
        id_prefix: str | None = None,
        before: WorkflowInfo | tuple[float, str] | None = None,
    ) -> list[WorkflowInfo]:
        """Async twin of :meth:`list_workflows`."""

    async def list_workers_async(self, *, include_stale: bool = False) -> list[WorkerInfo]:
        """Async twin of :meth:`list_workers`."""

    async def count_versions_async(self) -> VersionCounts:
        """Async twin of :meth:`count_versions`."""

    async def send_event_async(
        self, workflow_id: str, name: str, payload: Any = None, *, dedup_key: str | None = None
    ) -> bool:
        """Async twin of :meth:`send_event`."""

    async def cancel_async(self, workflow_id: str) -> None:
        """Async twin of :meth:`cancel`."""

    async def terminate_async(self, workflow_id: str, reason: str = "terminated") -> None:
        """Async twin of :meth:`terminate`."""

    async def suspend_async(self, workflow_id: str) -> None:
        """Async twin of :meth:`suspend`."""

    async def resume_async(self, workflow_id: str) -> None:
        """Async twin of :meth:`resume`."""

    async def retry_async(self, workflow_id: str) -> None:
        """Async twin of :meth:`retry`."""

    async def fork_async(
        self, workflow_id: str, *, from_step: int, new_id: str | None = None
    ) -> WorkflowHandle[Any]:
        """Async twin of :meth:`fork`."""

    async def purge_async(self, workflow_id: str) -> None:
        """Async twin of :meth:`purge`."""

    def close(self) -> None:
        """Release the connections (database or server) this object holds."""


def thread_twin(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """The ``async`` twin of ``method``: it runs, in a thread, the method of that name on the
    object it is called on (so a subclass's own ``method`` runs)."""
    name = method.__name__

    @functools.wraps(method)
    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(getattr(self, name), *args, **kwargs)

    twin.__name__ = twin.__qualname__ = f"{name}_async"
    twin.__doc__ = f"Async twin of :meth:`{name}` (runs it in a worker thread)."
    return twin


def forward(method: Callable[Concatenate[S, P], R], part: str) -> Callable[Concatenate[Any, P], R]:
    """A method that calls ``method`` on the object's attribute ``part`` (a component it is
    composed of), with ``method``'s name, signature and docstring."""

    @functools.wraps(method)
    def forwarded(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(getattr(self, part), *args, **kwargs)

    return forwarded


@dataclass(frozen=True, slots=True)
class StartCall:
    """A start as asked for: the workflow (or its name), its arguments, its id (None: a new
    one is made), its queue (None: the default queue, with nothing to check) and priority."""

    workflow: Workflow[..., Any] | str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    id: str | None
    queue: Queue | str | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True)
class WorkflowFilter:
    """Which workflows a listing shows (see :meth:`WorkflowOperations.list_workflows`)."""

    status: WorkflowStatus | str | Sequence[WorkflowStatus | str] | None
    name: str | None
    created_after: float | datetime | None
    created_before: float | datetime | None
    id_prefix: str | None

    def in_epoch_seconds(self) -> WorkflowFilter:
        """This filter with its datetimes as epoch seconds."""
        after, until = self.created_after, self.created_before
        return replace(
            self,
            created_after=after.timestamp() if isinstance(after, datetime) else after,
            created_before=until.timestamp() if isinstance(until, datetime) else until,
        )


class OperationsBase(WithBlock):
    """What :class:`durably.App` and :class:`durably.Client` share of :class:`WorkflowOperations`:
    the typed starts, each made by the subclass's :meth:`_create`; :meth:`handle` on its
    ``_handles``; and the async twins of the other operations, which run them in a thread."""

    _handles: HandleSource
    """What the handles this object makes read."""

    def _create(self, call: StartCall) -> tuple[WorkflowHandle[Any], bool]:
        """Make ``call``: the workflow's handle, and whether this call created it (False: the
        id existed, and nothing was written). Checks the id, then the workflow, then the
        queue."""
        raise NotImplementedError

    async def _create_async(self, call: StartCall) -> tuple[WorkflowHandle[Any], bool]:
        """:meth:`_create` on an event loop (unless overridden: in a thread)."""
        return await asyncio.to_thread(self._create, call)

    @overload
    def start(
        self,
        workflow: Workflow[..., Coroutine[Any, Any, R]],
        /,
        *args: Any,
        id: str | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[R]: ...
    @overload
    def start(
        self, workflow: Workflow[..., R], /, *args: Any, id: str | None = None, **kwargs: Any
    ) -> WorkflowHandle[R]: ...
    @overload
    def start(
        self, workflow: str, /, *args: Any, id: str | None = None, **kwargs: Any
    ) -> WorkflowHandle[Any]: ...
    def start(
        self,
        workflow: Workflow[..., Any] | str,
        /,
        *args: Any,
        id: str | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Start a workflow (or return the existing one with the same id) and return its handle.

        ``app.start(wf, *args, id="order-1", **kwargs)``: ``id`` is optional (a random one is
        made); starting with an id that exists returns a handle to that workflow and runs
        nothing again, if it is a workflow of the same name (else
        :class:`WorkflowIdConflictError`, and nothing is written). Arguments must be
        serializable (JSON, dataclasses, pydantic, datetime...). A workflow parameter cannot
        itself be named ``id``: pass it positionally.
        """
        return self._create(StartCall(workflow, args, kwargs, id))[0]

    async def start_async(
        self,
        workflow: Workflow[..., Any] | str,
        /,
        *args: Any,
        id: str | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Async twin of :meth:`start`. Many concurrent ``start_async`` calls (e.g. under
        ``asyncio.gather``) share group commits when this App runs a worker."""
        return (await self._create_async(StartCall(workflow, args, kwargs, id)))[0]

    def enqueue(
        self,
        queue: Queue | str,
        workflow: Workflow[..., Any] | str,
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Start a workflow on a queue (see :class:`durably.Queue`) and return its handle.

        ``queue`` is a Queue or a queue's name; ``workflow`` a registered workflow or its name
        (known to a live worker). ``priority`` (queues with ``priority=True``): higher runs
        first. As with :meth:`start`, an existing ``id`` returns that workflow, whatever queue
        it is on.
        """
        return self._create(StartCall(workflow, args, kwargs, id, queue, priority))[0]

    async def enqueue_async(
        self,
        queue: Queue | str,
        workflow: Workflow[..., Any] | str,
        /,
        *args: Any,
        id: str | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Async twin of :meth:`enqueue`."""
        call = StartCall(workflow, args, kwargs, id, queue, priority)
        return (await self._create_async(call))[0]

    def start_named(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        id: str | None = None,
        queue: Queue | str = DEFAULT_QUEUE,
        priority: int = 0,
    ) -> tuple[WorkflowHandle[Any], bool]:
        """Start a workflow by name with explicit arguments (for servers and tools that relay
        starts): its handle, and whether this call created it (False: the id existed; nothing
        was written or run). Checks the id, then the name (registered here or served by a
        worker on this database), then the queue."""
        return self._create(StartCall(name, tuple(args), dict(kwargs or {}), id, queue, priority))

    async def start_named_async(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        id: str | None = None,
        queue: Queue | str = DEFAULT_QUEUE,
        priority: int = 0,
    ) -> tuple[WorkflowHandle[Any], bool]:
        """Async twin of :meth:`start_named`."""
        call = StartCall(name, tuple(args), dict(kwargs or {}), id, queue, priority)
        return await self._create_async(call)

    def handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle to an existing workflow by id (checked when used)."""
        return WorkflowHandle(self._handles, validate_workflow_id(workflow_id))

    def _list_workflows(
        self, filters: WorkflowFilter, limit: int, before: WorkflowInfo | tuple[float, str] | None
    ) -> list[WorkflowInfo]:
        """One page of :meth:`list_workflows`."""
        raise NotImplementedError

    def _iter_workflows(self, filters: WorkflowFilter, page_size: int) -> Iterator[WorkflowInfo]:
        """What :meth:`iter_workflows` yields (a generator: nothing is read before the first)."""
        raise NotImplementedError

    def list_workflows(
        self,
        *,
        status: WorkflowStatus | str | Sequence[WorkflowStatus | str] | None = None,
        name: str | None = None,
        limit: int = 100,
        created_after: float | None = None,
        created_before: float | None = None,
        id_prefix: str | None = None,
        before: WorkflowInfo | tuple[float, str] | None = None,
    ) -> list[WorkflowInfo]:
        """Workflows, newest first, filtered by status (one or several), name, creation time
        (``created_after <= created_at < created_before``, epoch seconds) and id prefix.

        ``before`` pages on: only the workflows listed after that one. Pass the last
        :class:`WorkflowInfo` of the previous page (its exact stored creation time,
        ``created_at_epoch``, is used, so every workflow is listed exactly once, even many
        created in the same microsecond), or a ``(created_at, id)`` pair of the exact epoch
        seconds as stored (``WorkflowRecord.created_at``; not ``WorkflowInfo.created_at``,
        which is rounded to the microsecond)::

            page = app.list_workflows(limit=100)
            while page:
                ...
                page = app.list_workflows(limit=100, before=page[-1])

        Each is a summary (:attr:`WorkflowInfo.summary`): ``input``, ``output`` and ``error``
        are None and only their first characters are read, as ``input_preview``,
        ``output_preview`` and ``error_preview``, so a page costs the same whatever the
        workflows carry; ``app.handle(info.id).info()`` reads one workflow whole.
        """
        filters = WorkflowFilter(status, name, created_after, created_before, id_prefix)
        return self._list_workflows(filters, limit, before)

    def iter_workflows(
        self,
        *,
        status: WorkflowStatus | str | Sequence[WorkflowStatus | str] | None = None,
        name: str | None = None,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
        id_prefix: str | None = None,
        page_size: int = 100,
    ) -> Iterator[WorkflowInfo]:
        """Every workflow matching the filters (as :meth:`list_workflows`, summaries too),
        newest first, read ``page_size`` at a time; each exactly once, however many are started
        meanwhile (those are newer than the first page: not listed)."""
        filters = WorkflowFilter(status, name, created_after, created_before, id_prefix)
        return self._iter_workflows(filters, page_size)

    list_workflows_async = thread_twin(WorkflowOperations.list_workflows)
    list_workers_async = thread_twin(WorkflowOperations.list_workers)
    count_versions_async = thread_twin(WorkflowOperations.count_versions)
    send_event_async = thread_twin(WorkflowOperations.send_event)
    cancel_async = thread_twin(WorkflowOperations.cancel)
    terminate_async = thread_twin(WorkflowOperations.terminate)
    suspend_async = thread_twin(WorkflowOperations.suspend)
    resume_async = thread_twin(WorkflowOperations.resume)
    retry_async = thread_twin(WorkflowOperations.retry)
    fork_async = thread_twin(WorkflowOperations.fork)
    purge_async = thread_twin(WorkflowOperations.purge)
