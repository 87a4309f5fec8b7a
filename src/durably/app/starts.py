"""Starting workflows from an App: resolve the name, record the call, create it once.

A start is written by the worker in this process, if one runs (the workflow is created already
claimed, in the worker's next group commit), else by the App's own group commit, so that
concurrent starts (threads, or ``start_async`` under ``asyncio.gather``) share commits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from durably import limits
from durably.definitions import Registry, Workflow, not_a_workflow
from durably.errors import UnknownWorkflowError, WorkflowIdConflictError
from durably.ids import new_workflow_id, validate_workflow_id
from durably.queues import DEFAULT_QUEUE
from durably.storage.base import CreateWorkflow, WorkflowRecord, WorkflowStatus
from durably.storage.committer import GroupCommitter

if TYPE_CHECKING:
    from durably.app.database import Database
    from durably.codec import Codec
    from durably.operations import StartCall
    from durably.worker import Worker

__all__ = ["Starts"]


@dataclass(eq=False, slots=True)
class Starts:
    """How an App starts workflows.

    ``database``: where they are created; ``registry``: the App's workflows; ``codec``: how
    their arguments are stored; ``clock``: their creation time; ``worker``: the App's embedded
    worker, if one runs now (it creates them, and is woken for those created otherwise).
    """

    database: Database
    registry: Registry
    codec: Codec
    clock: Callable[[], float]
    worker: Callable[[], Worker | None]
    _committer: GroupCommitter | None = field(default=None, init=False)
    _committer_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def resolve(self, workflow: Workflow[..., Any] | str, id: str | None = None) -> str:
        """The registered name to start, after checking ``id`` (a bad id is the first thing to
        hear about): a workflow of this App, or a name registered here or served by a worker on
        this database."""
        if id is not None:
            validate_workflow_id(id)
        workflows = self.registry.workflows
        if isinstance(workflow, Workflow):
            if workflows.get(workflow.name) is not workflow:
                raise UnknownWorkflowError(
                    f"workflow {workflow.name!r} is registered on another App; start it from the "
                    "App whose @app.workflow decorated it"
                )
            return workflow.name
        if not isinstance(workflow, str):
            raise UnknownWorkflowError(not_a_workflow("app", workflow))
        if workflow in workflows:
            return workflow
        limits.check_name(workflow, "workflow name")
        workers = self.database.store.list_workers()
        if any(workflow in w.workflows for w in workers):
            return workflow
        known = sorted({*workflows, *(n for w in workers for n in w.workflows)})
        raise UnknownWorkflowError(
            f"unknown workflow {workflow[:200]!r}: it is not registered on this App and no "
            f"worker on {self.database.safe_database_url} serves it (known: "
            f"{', '.join(known) or 'none'}); check the name, or start a worker whose app "
            "defines it (durably worker MODULE:APP), or decorate it with @app.workflow in the "
            "code this App imports"
        )

    async def _resolve_async(self, workflow: Workflow[..., Any] | str, id: str | None) -> str:
        """:meth:`resolve` on an event loop: a name not registered here reads the worker
        registry, in a thread."""
        if isinstance(workflow, str) and workflow not in self.registry.workflows:
            return await asyncio.to_thread(self.resolve, workflow, id)
        return self.resolve(workflow, id)

    def start(self, call: StartCall) -> tuple[str, bool]:
        """Make ``call`` unless its id exists: the workflow's id, and whether this call created
        it (if not, :class:`WorkflowIdConflictError` when the existing one has another name)."""
        record = self._record(self.resolve(call.workflow, call.id), call)
        worker = self.worker()
        # a worker here takes it at once: created already claimed, in its next group commit
        created = None if worker is None else worker.start_here(record)
        if created is None:
            # else a shared commit (alone, it commits in this thread with no hop)
            created = self._creations(worker).write(CreateWorkflow(record), inline=True)
            if created:
                self._wake_worker()
        if not created:
            self._check_same_name(record)
        return record.id, created

    async def start_async(self, call: StartCall) -> tuple[str, bool]:
        """:meth:`start` on an event loop."""
        record = self._record(await self._resolve_async(call.workflow, call.id), call)
        worker = self.worker()
        # with a worker here, concurrent starts share its group commits, with no thread hop
        created = None if worker is None else await worker.start_here_async(record)
        if created is None:
            created = await self._creations(worker).write_async(CreateWorkflow(record))
            if created:
                self._wake_worker()
        if not created:
            await asyncio.to_thread(self._check_same_name, record)
        return record.id, created

    def _record(self, name: str, call: StartCall) -> WorkflowRecord:
        """The record of ``call`` of workflow ``name`` (resolved), after checking its queue."""
        queue, priority = call.queue, call.priority
        queue_name, priority = (
            (DEFAULT_QUEUE, 0)
            if queue is None
            else self.registry.enqueue_target(queue, priority, self.database)
        )
        workflow_id = new_workflow_id() if call.id is None else call.id  # checked by resolve
        encoded = self.codec.encode_call(call.args, call.kwargs, workflow_id=workflow_id, name=name)
        now = self.clock()
        return WorkflowRecord(
            id=workflow_id, name=name, status=WorkflowStatus.PENDING, input=encoded,
            created_at=now, updated_at=now, queue=queue_name, priority=priority,
            version=self.registry.version,
        )  # fmt: skip

    def _wake_worker(self) -> None:
        """Tell the worker here (if one runs now) that a workflow was created for it."""
        worker = self.worker()
        if worker is not None:
            worker.notify()

    def _check_same_name(self, record: WorkflowRecord) -> None:
        """After a start that found its id taken (the only case that reads): raise
        :class:`WorkflowIdConflictError` if the workflow there has another name."""
        existing = self.database.store.get_workflow(record.id)
        if existing is not None and existing.name != record.name:
            raise WorkflowIdConflictError.taken(record.id, record.name, existing.name)

    def _creations(self, worker: Worker | None) -> GroupCommitter:
        """Where creations are written: the group commit of ``worker`` (the App's, if it runs
        here: shared with its steps), else the App's own (started on first use)."""
        committer = None if worker is None else worker.committer
        if committer is not None:
            return committer
        with self._committer_lock:
            if self._committer is None:
                started = GroupCommitter(self.database.store)
                started.start()
                self._committer = started
            return self._committer

    def close(self) -> None:
        """Stop the App's own group commit, if started (the next start starts a new one)."""
        with self._committer_lock:
            committer, self._committer = self._committer, None
        if committer is not None:
            committer.stop()
