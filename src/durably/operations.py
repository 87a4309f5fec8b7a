"""``WorkflowOperations``: what can be done to workflows from outside them, in process or remote.

:class:`durably.App` (reading and writing its database) and :class:`durably.Client` (through a
``durably server``) both satisfy this protocol, so code that operates workflows (the CLI's
management commands, the HTTP server, a user's admin script) can take either::

    def cancel_stuck(ops: durably.WorkflowOperations) -> None:
        for info in ops.iter_workflows(status="needs_attention"):
            ops.cancel(info.id)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from durably.definitions import Workflow
    from durably.handle import WorkflowHandle, WorkflowInfo
    from durably.queues import Queue
    from durably.storage.base import WorkerInfo, WorkflowStatus

__all__ = ["WorkflowOperations"]


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

    def close(self) -> None:
        """Release the connections (database or server) this object holds."""
