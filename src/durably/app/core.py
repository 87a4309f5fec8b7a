"""``App``: where workflows and steps are registered, started, inspected and run."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Unpack, overload

from durably import limits
from durably.app.handles import LocalHandleSource
from durably.app.lifecycle import Lifecycle
from durably.app.results import ResultPoller
from durably.codec import codec_for
from durably.definitions import Registry, Step, Workflow, not_a_workflow, qualified_name
from durably.errors import ConfigurationError, UnknownWorkflowError, WorkflowIdConflictError
from durably.handle import WorkflowHandle, WorkflowInfo, page_position, status_filter
from durably.ids import new_workflow_id, validate_workflow_id
from durably.queues import DEFAULT_QUEUE, Queue, QueueLimits
from durably.retry import Retry
from durably.serialization import DEFAULT_MAX_PAYLOAD_BYTES, JsonSerializer, Serializer
from durably.storage import (
    Store,
    check_database_url,
    open_store,
    redact_url,
    resolve_database_url,
)
from durably.storage.base import (
    CreateWorkflow,
    Ended,
    WorkerInfo,
    WorkflowRecord,
    WorkflowStatus,
)
from durably.storage.committer import GroupCommitter

if TYPE_CHECKING:  # the worker is imported when one is made: ``import durably`` skips it
    from durably.worker import Worker, WorkerOptions

__all__ = ["LIVE_WORKER_SECONDS", "App"]

LIVE_WORKER_SECONDS = 30.0
"""A worker whose last heartbeat is older than this is not counted as live (workers beat at
least every second)."""

P = ParamSpec("P")
R = TypeVar("R")


class App(Lifecycle):
    """A durably application: a database, the workflows and steps registered on it, and
    (optionally) an embedded worker that runs them.

    ``App()`` uses ``$DURABLY_DB`` or the SQLite file ``./durably.db``;
    ``App("sqlite:///path/to.db")`` another file. An App whose worker is not running is a client:
    it can start, list and inspect workflows that other processes' workers run.

    Use ``with app:`` (or :meth:`start_worker`/:meth:`stop_worker`) to run an embedded worker in
    a background thread, or :meth:`run_worker` to serve in the foreground until SIGTERM.

    ``serializer``: a :class:`durably.Serializer` that every stored value goes through (default
    :class:`JsonSerializer`); ``max_payload_bytes`` caps the size of one encoded value (a
    ``JsonSerializer`` passed in keeps its own limit).
    """

    def __init__(
        self,
        database: str | None = None,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        serializer: Serializer | None = None,
        worker_options: WorkerOptions | None = None,
    ) -> None:
        self.database_url = resolve_database_url(database)
        """The database URL as given (it may hold a password: never show it; show
        :attr:`safe_database_url`)."""
        check_database_url(self.database_url)
        self.serializer: Serializer = serializer or JsonSerializer(max_payload_bytes)
        self.codec = codec_for(self.serializer, max_payload_bytes)
        """How this App stores values: every payload goes through ``serializer``."""
        self._worker_options = worker_options
        self.registry = Registry()
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self._committer: GroupCommitter | None = None
        self._committer_lock = threading.Lock()
        self._worker: Worker | None = None
        self._finished = threading.Condition()
        self._finished_generation = 0
        self._pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ResultPoller] = (
            weakref.WeakKeyDictionary()
        )
        self.clock: Callable[[], float] = time.time
        """The Unix time of this App's workflows: their starts and commands, and its worker's
        (claims, leases, timers, ``now()``). :class:`durably.testing.WorkflowEnvironment` sets
        a virtual one; production keeps :func:`time.time`. A worker reads it when made."""
        self._handles = LocalHandleSource(self)  # what this App's handles read

    def __repr__(self) -> str:
        return f"<durably.App {self.safe_database_url}>"

    @property
    def _clock(self) -> Callable[[], float]:
        """Deprecated: :attr:`clock`."""
        return self.clock

    @_clock.setter
    def _clock(self, clock: Callable[[], float]) -> None:
        self.clock = clock

    @property
    def worker_options(self) -> WorkerOptions:
        """The tuning of the workers this App makes (the defaults unless given)."""
        if self._worker_options is None:
            from durably.worker.options import WorkerOptions

            self._worker_options = WorkerOptions()
        return self._worker_options

    @worker_options.setter
    def worker_options(self, options: WorkerOptions) -> None:
        self._worker_options = options

    # -- storage -------------------------------------------------------------------------------

    @property
    def safe_database_url(self) -> str:
        """The database URL fit for messages and logs: its password and the values of options
        that may be secret replaced by ``***`` (see :func:`durably.storage.urls.redact_url`)."""
        return redact_url(self.database_url)

    @property
    def store(self) -> Store:
        """The store, opened and migrated on first use."""
        store = self._store
        if store is None:
            with self._store_lock:
                if self._store is None:
                    opened = open_store(self.database_url)
                    try:
                        opened.migrate()
                    except BaseException:
                        opened.close()  # a schema it cannot migrate: no pool left behind
                        raise
                    self._store = opened
                store = self._store
        return store

    def close(self) -> None:
        """Stop the embedded worker (if running) and close the database."""
        self.stop_worker()
        with self._committer_lock:
            committer, self._committer = self._committer, None
        if committer is not None:
            committer.stop()
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def use_database(self, database: str) -> None:
        """Close this App's database and use ``database`` from now on, keeping its
        registrations (``durably.testing.WorkflowEnvironment`` moves an App to a fresh file so).
        Refused while the App's embedded worker runs: stop it first."""
        if self._worker is not None:
            raise ConfigurationError("stop the App's worker before it changes its database")
        url = resolve_database_url(database)
        check_database_url(url)
        self.close()
        with self._store_lock:
            self.database_url = url
        self._pollers.clear()  # they read the store they were made with

    # -- registration --------------------------------------------------------------------------

    @overload
    def workflow(self, fn: Callable[P, R], /) -> Workflow[P, R]: ...
    @overload
    def workflow(
        self, fn: None = None, /, *, name: str | None = None
    ) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...
    def workflow(
        self, fn: Callable[P, R] | None = None, /, *, name: str | None = None
    ) -> Workflow[P, R] | Callable[[Callable[P, R]], Workflow[P, R]]:
        """Register a workflow: ``@app.workflow`` or ``@app.workflow(name="...")``.

        The function may be ``async def`` (its steps run on the worker's event loop) or plain
        ``def`` (it runs in a worker thread). It must be deterministic between durable calls.
        """

        def register(f: Callable[P, R]) -> Workflow[P, R]:
            wf = Workflow(f, name=name or qualified_name(f))
            self.registry.add_workflow(wf)
            wf.app = self
            return wf

        return register if fn is None else register(fn)

    @overload
    def step(self, fn: Callable[P, R], /) -> Step[P, R]: ...
    @overload
    def step(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[P, R]], Step[P, R]]: ...
    def step(
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
    ) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
        """Register a step: a checkpointed unit of side effects.

        ``retry`` is the :class:`Retry` policy (default ``Retry()``: 3 attempts); ``timeout``
        bounds each attempt in seconds (an async step is cancelled; a sync step's thread cannot
        be, so its late result is ignored).
        """

        def register(f: Callable[P, R]) -> Step[P, R]:
            s = Step(f, name=name or qualified_name(f), retry=retry or Retry(), timeout=timeout)
            self.registry.add_step(s)
            return s

        return register if fn is None else register(fn)

    # -- queues (they belong to this App: its workers serve them, its enqueues check them) ----

    def queue(self, name: str, **limits: Unpack[QueueLimits]) -> Queue:
        """Define the queue ``name`` on this App with its limits (``concurrency``,
        ``worker_concurrency``, ``rate_limit``, ``priority``: see :class:`durably.Queue`) and
        return it: ``emails = app.queue("emails", concurrency=10)``, then
        ``emails.enqueue(wf, ...)``. This App's workers serve it; other Apps do not see it. A
        later definition of the name replaces this one."""
        return self.registry.add_queue(Queue._unlisted(name, limits), self)

    def add_queue(self, queue: Queue) -> Queue:
        """Define a :class:`durably.Queue` made elsewhere on this App (as :meth:`queue`) and
        return it; a queue defined on another App is refused."""
        return self.registry.add_queue(queue, self)

    # -- starting and inspecting ---------------------------------------------------------------

    async def _resolve_async(self, workflow: Workflow[..., Any] | str, id: str | None) -> str:
        """:meth:`_resolve` on an event loop: a name not registered here reads the worker
        registry, in a thread."""
        if isinstance(workflow, str) and workflow not in self.registry.workflows:
            return await asyncio.to_thread(self._resolve, workflow, id)
        return self._resolve(workflow, id)

    def _resolve(self, workflow: Workflow[..., Any] | str, id: str | None = None) -> str:
        """The registered name to start, after checking ``id`` (a bad id is the first thing to
        hear about): a workflow of this App, or a name registered here or served by a worker on
        this database."""
        if id is not None:
            validate_workflow_id(id)
        if isinstance(workflow, Workflow):
            if self.registry.workflows.get(workflow.name) is not workflow:
                raise UnknownWorkflowError(
                    f"workflow {workflow.name!r} is registered on another App; start it from the "
                    "App whose @app.workflow decorated it"
                )
            return workflow.name
        if not isinstance(workflow, str):
            raise UnknownWorkflowError(not_a_workflow("app", workflow))
        if workflow in self.registry.workflows:
            return workflow
        limits.check_name(workflow, "workflow name")
        workers = self.store.list_workers()
        if any(workflow in w.workflows for w in workers):
            return workflow
        known = sorted({*self.registry.workflows, *(n for w in workers for n in w.workflows)})
        raise UnknownWorkflowError(
            f"unknown workflow {workflow[:200]!r}: it is not registered on this App and no "
            f"worker on {self.safe_database_url} serves it (known: {', '.join(known) or 'none'}); "
            "check the name, or start a worker whose app defines it (durably worker MODULE:APP), "
            "or decorate it with @app.workflow in the code this App imports"
        )

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
        name = self._resolve(workflow, id)
        return self._create(name, args, kwargs, id, DEFAULT_QUEUE, 0)[0]

    def _record(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        id: str | None,
        queue: str,
        priority: int,
    ) -> WorkflowRecord:
        workflow_id = new_workflow_id() if id is None else id  # checked by _resolve
        encoded = self.codec.encode_call(args, kwargs, workflow_id=workflow_id, name=name)
        now = self.clock()
        return WorkflowRecord(
            id=workflow_id, name=name, status=WorkflowStatus.PENDING, input=encoded,
            created_at=now, updated_at=now, queue=queue, priority=priority,
        )  # fmt: skip

    def _create(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        id: str | None,
        queue: str,
        priority: int,
    ) -> tuple[WorkflowHandle[Any], bool]:
        """Start (a resolved name): the handle, and whether this call created the workflow
        (False: one with that id existed, and nothing was written)."""
        record = self._record(name, args, kwargs, id, queue, priority)
        worker = self._worker
        # a worker here takes it at once: created already claimed, in its next group commit
        created = None if worker is None else worker.start_here(record)
        if created is None:
            # else a shared commit (alone, it commits in this thread with no hop)
            created = self._creations().write(CreateWorkflow(record), inline=True)
            if created:
                self._notify_worker()
        if not created:
            self._check_same_name(record)
        return WorkflowHandle(self._handles, record.id), created

    def _check_same_name(self, record: WorkflowRecord) -> None:
        """After a start that found its id taken (the only case that reads): raise
        :class:`WorkflowIdConflictError` if the workflow there has another name."""
        existing = self.store.get_workflow(record.id)
        if existing is not None and existing.name != record.name:
            raise WorkflowIdConflictError.taken(record.id, record.name, existing.name)

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
        resolved = self._resolve(name, id)
        queue_name, priority = self.registry.enqueue_target(queue, priority, self)
        return self._create(resolved, tuple(args), dict(kwargs or {}), id, queue_name, priority)

    async def _start_async(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        id: str | None,
        queue: str,
        priority: int,
    ) -> WorkflowHandle[Any]:
        record = self._record(name, args, kwargs, id, queue, priority)
        worker = self._worker
        # with a worker here, concurrent starts share its group commits, with no thread hop
        created = None if worker is None else await worker.start_here_async(record)
        if created is None:
            created = await self._creations().write_async(CreateWorkflow(record))
            if created:
                self._notify_worker()
        if not created:
            await asyncio.to_thread(self._check_same_name, record)
        return WorkflowHandle(self._handles, record.id)

    def _creations(self) -> GroupCommitter:
        """Where this App's creations are written: the group commit of its worker, if one runs
        here (shared with its steps), else its own (started on first use), so that concurrent
        starts (threads, or ``start_async`` under ``gather``) share commits."""
        worker = self._worker
        committer = None if worker is None else worker.committer
        if committer is not None:
            return committer
        with self._committer_lock:
            if self._committer is None:
                started = GroupCommitter(self.store)
                started.start()
                self._committer = started
            return self._committer

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
        name, priority = self.registry.enqueue_target(queue, priority, self)
        return self._create(self._resolve(workflow, id), args, kwargs, id, name, priority)[0]

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
        name, priority = self.registry.enqueue_target(queue, priority, self)
        resolved = await self._resolve_async(workflow, id)
        return await self._start_async(resolved, args, kwargs, id, name, priority)

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
        name = await self._resolve_async(workflow, id)
        return await self._start_async(name, args, kwargs, id, DEFAULT_QUEUE, 0)

    def handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle to an existing workflow by id (checked when used)."""
        return WorkflowHandle(self._handles, validate_workflow_id(workflow_id))

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
        position = None if before is None else page_position(before)
        statuses = status_filter(status)
        limits.check_count(limit, "limit", 1)
        after, until = limits.check_filters(name, id_prefix, created_after, created_before)
        records = self.store.list_workflows(
            statuses=statuses, name=name, limit=limit, created_after=after,
            created_before=until, id_prefix=id_prefix, before=position,
        )  # fmt: skip
        unserved = self.unserved_filter()
        return [WorkflowInfo.summary_of(r, unserved=unserved(r)) for r in records]

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
        after = created_after.timestamp() if isinstance(created_after, datetime) else created_after
        until = (
            created_before.timestamp() if isinstance(created_before, datetime) else created_before
        )
        before: WorkflowInfo | None = None
        while True:
            page = self.list_workflows(
                status=status, name=name, limit=page_size, created_after=after,
                created_before=until, id_prefix=id_prefix, before=before,
            )  # fmt: skip
            yield from page
            if len(page) < page_size:
                return
            before = page[-1]

    # -- workers -------------------------------------------------------------------------------

    def list_workers(self, *, include_stale: bool = False) -> list[WorkerInfo]:
        """The worker processes on this database: live ones (a heartbeat in the last
        ``LIVE_WORKER_SECONDS``), or every registration with ``include_stale=True`` (a worker
        that died without stopping cleanly stays registered until pruned). Each lists the
        workflow names and queues it serves."""
        workers = self.store.list_workers()
        if include_stale:
            return workers
        cutoff = time.time() - LIVE_WORKER_SECONDS
        return [w for w in workers if w.heartbeat_at >= cutoff]

    def unserved_filter(self) -> Callable[[WorkflowRecord], bool]:
        """A predicate: whether a workflow is pending or running while no live worker serves
        its name on its queue (it stays where it is until one does)."""
        served = {(n, q) for w in self.list_workers() for n in w.workflows for q in w.queues}
        active = (WorkflowStatus.PENDING, WorkflowStatus.RUNNING)
        return lambda rec: rec.status in active and (rec.name, rec.queue) not in served

    # -- the embedded worker -------------------------------------------------------------------

    def _on_finished(self, ended: Ended) -> None:
        with self._finished:
            self._finished_generation += 1
            self._finished.notify_all()
            pollers = list(self._pollers.values())
        for poller in pollers:
            poller.wake_if_waiting(ended.id, ended)

    def _result_poller(self) -> ResultPoller:
        """The poller of the running loop's ``result_async`` waiters (made on first use)."""
        loop = asyncio.get_running_loop()
        with self._finished:
            poller = self._pollers.get(loop)
            if poller is None:
                poller = ResultPoller(
                    loop, self.store.finished_workflows, self._runs_here, self.safe_database_url
                )
                self._pollers[loop] = poller
            return poller

    def _runs_here(self, workflow_id: str) -> bool:
        """Whether the worker here runs ``workflow_id`` and will hand its end to the pollers
        (not yet finishing: a waiter that comes after the hand-over must read it)."""
        worker = self._worker
        return worker is not None and worker.runs_unfinished(workflow_id)

    def _wait_finished(self, generation: int, timeout: float) -> None:
        """Wait up to ``timeout`` s for a workflow here to finish after ``generation``."""
        with self._finished:
            if self._finished_generation == generation:
                self._finished.wait(timeout)

    def _notify_worker(self) -> None:
        if self._worker is not None:
            self._worker.notify()

    def _new_worker(self) -> Worker:
        from durably.worker import Worker

        return Worker(
            self.store, self.registry, self.codec, self.worker_options,
            on_finished=self._on_finished, clock=self.clock,
        )  # fmt: skip

    def start_worker(self) -> None:
        """Start an embedded worker on a background thread (idempotent)."""
        if self._worker is None:
            worker = self._new_worker()
            worker.start_in_thread()
            self._worker = worker

    def stop_worker(self) -> None:
        """Stop the embedded worker; its unfinished workflows are released for others."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    def run_worker(self) -> None:
        """Serve workflows in the foreground until SIGINT or SIGTERM."""
        worker = self._new_worker()
        self._worker = worker
        try:
            worker.run()
        finally:
            self._worker = None

    def __enter__(self) -> App:
        self.start_worker()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_worker()
