"""``App``: where workflows and steps are registered, started, inspected and run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Unpack, overload

from durably import limits
from durably.app.handles import LocalHandleSource
from durably.app.lifecycle import Lifecycle
from durably.app.results import Results
from durably.app.schedules import ScheduleOperations
from durably.app.starts import Starts
from durably.bulk import Bulk
from durably.codec import codec_for
from durably.codecs.base import PayloadCodec
from durably.definitions import VERSIONING, Registry, Step, Versioning, Workflow, qualified_name
from durably.errors import ConfigurationError
from durably.handle import WorkflowHandle, WorkflowInfo, page_position, status_filter
from durably.operations import OperationsBase, StartCall, WorkflowFilter, forward, thread_twin
from durably.queues import Queue, QueueLimits
from durably.retention import APP_DEFAULT, AppDefault, check_retention
from durably.retry import Retry
from durably.schedules import Schedule, ScheduleInfo
from durably.serialization import DEFAULT_MAX_PAYLOAD_BYTES, JsonSerializer, Serializer
from durably.storage import (
    Store,
    check_database_url,
    open_store,
    redact_url,
    resolve_database_url,
)
from durably.storage.base import VersionCounts, WorkerInfo, WorkflowRecord, WorkflowStatus

if TYPE_CHECKING:  # the worker is imported when one is made: ``import durably`` skips it
    from durably.worker import Worker, WorkerOptions

__all__ = ["LIVE_WORKER_SECONDS", "App"]

VERSION_ENV = "DURABLY_VERSION"
"""The environment variable an App takes its version from when none is given."""
LIVE_WORKER_SECONDS = 30.0
"""A worker whose last heartbeat is older than this is not counted as live (workers beat at
least every second)."""

P = ParamSpec("P")
R = TypeVar("R")


class App(OperationsBase):
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

    ``codecs``: :class:`durably.PayloadCodec` layers applied, in order, to every stored value
    after the serializer, such as ``[durably.codecs.Compression(),
    durably.codecs.Encryption(keys={"k1": key})]`` (README, Payload codecs). The size limit
    holds before and after them.

    ``version``: the version of this code (default ``$DURABLY_VERSION``; None: unversioned).
    Each workflow records the version it started under, and is run only by workers of that
    version (pinned), unless it is ``@app.workflow(versioning="auto_upgrade")``. An unversioned
    worker runs workflows of every version, and a workflow started with no version runs on any
    worker: an App with no version behaves as if versions did not exist.

    ``retention``: how long finished workflows (completed, failed, cancelled, terminated) are
    kept before this App's workers purge them with everything they wrote (a timedelta; None,
    the default: forever); ``@app.workflow(retention=...)`` overrides it per name (see
    :mod:`durably.worker.retention` for which workers purge what).
    """

    def __init__(
        self,
        database: str | None = None,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        serializer: Serializer | None = None,
        worker_options: WorkerOptions | None = None,
        version: str | None = None,
        codecs: Sequence[PayloadCodec] | None = (),
        retention: timedelta | None = None,
    ) -> None:
        self.database_url = resolve_database_url(database)
        """The database URL as given (it may hold a password: never show it; show
        :attr:`safe_database_url`)."""
        check_database_url(self.database_url)
        self.serializer: Serializer = serializer or JsonSerializer(max_payload_bytes)
        codecs = () if codecs is None else codecs
        self.codec = codec_for(self.serializer, max_payload_bytes, codecs)
        """How this App stores values: every payload goes through ``serializer``, then
        ``codecs``."""
        self.codecs: tuple[PayloadCodec, ...] = tuple(codecs)
        """The payload codecs every stored value goes through after ``serializer``."""
        self._worker_options = worker_options
        self.registry = Registry()
        self.version = version if version is not None else os.environ.get(VERSION_ENV) or None
        self.registry.retention = check_retention(retention, "App(retention=...)")
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self._worker: Worker | None = None
        self.clock: Callable[[], float] = time.time
        """The Unix time of this App's workflows: their starts and commands, and its worker's
        (claims, leases, timers, ``now()``). :class:`durably.testing.WorkflowEnvironment` sets
        a virtual one; production keeps :func:`time.time`. A worker reads it when made."""
        # the parts it is composed of, each given what it needs of the App
        self._results = Results(self, self.unserved_filter, self._runs_here)
        self._handles = LocalHandleSource(self, self._results)  # what this App's handles read
        self._starts = Starts(self, self.registry, self.codec, self._now, self._current_worker)
        self._lifecycle = Lifecycle(self, self.codec, self._now, self._notify_worker, self.handle)
        self.schedules = ScheduleOperations(
            self, self.registry, self.codec, self._now, self._starts.resolve, self._notify_worker
        )
        """This App's schedules: list, get, update, pause, unpause, trigger, backfill, delete
        (see :class:`durably.app.schedules.ScheduleOperations`)."""
        self._bulk = Bulk(self, self._lifecycle)

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
    def version(self) -> str | None:
        """The version of this App's code: its workflows start under it, its workers run the
        workflows of it (see the class). Set it before the worker starts."""
        return self.registry.version

    @version.setter
    def version(self, version: str | None) -> None:
        if version is not None:
            limits.check_name(version, "version")
        self.registry.version = version

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
        self._starts.close()
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
        self._results.reset()  # its pollers read the store they were made with

    # -- registration --------------------------------------------------------------------------

    @overload
    def workflow(self, fn: Callable[P, R], /) -> Workflow[P, R]: ...
    @overload
    def workflow(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        versioning: Versioning = "pinned",
        schedule: Schedule | Sequence[Schedule] | None = None,
        retention: timedelta | AppDefault | None = APP_DEFAULT,
    ) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...
    def workflow(
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        name: str | None = None,
        versioning: Versioning = "pinned",
        schedule: Schedule | Sequence[Schedule] | None = None,
        retention: timedelta | AppDefault | None = APP_DEFAULT,
    ) -> Workflow[P, R] | Callable[[Callable[P, R]], Workflow[P, R]]:
        """Register a workflow: ``@app.workflow`` or ``@app.workflow(name="...")``.

        The function may be ``async def`` (its steps run on the worker's event loop) or plain
        ``def`` (it runs in a worker thread). It must be deterministic between durable calls.

        ``versioning``: ``"pinned"`` (default: a run started under a version is run only by
        workers of that version) or ``"auto_upgrade"`` (workers of any version may run it,
        and one started under another version moves to this code; guard changes with
        :func:`durably.patched`).

        ``schedule``: one :class:`durably.Schedule` or several that start this workflow (their
        ``name`` defaults to the workflow's); the App's workers write them when they start.

        ``retention``: how long its finished runs are kept (a timedelta; None: forever),
        overriding the App's ``retention``.
        """
        schedules = [schedule] if isinstance(schedule, Schedule) else list(schedule or ())
        if not isinstance(retention, AppDefault):
            check_retention(retention, "@app.workflow(retention=...)")
        if versioning not in VERSIONING:
            raise ConfigurationError(
                f"versioning must be one of {', '.join(map(repr, VERSIONING))}, got {versioning!r}"
            )

        def register(f: Callable[P, R]) -> Workflow[P, R]:
            wf = Workflow(f, name=name or qualified_name(f))
            wf.versioning = versioning
            wf.retention = retention
            self.registry.add_workflow(wf)
            wf.app = self
            for declared in schedules:
                self.schedules.declare(declared, wf)
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

    # -- schedules (see durably.app.schedules) ------------------------------------------------

    schedule = forward(ScheduleOperations.create, "schedules")

    def add_schedule(self, schedule: Schedule) -> Schedule:
        """Declare ``schedule`` (a :class:`durably.Schedule` naming its workflow) on this App:
        each of its workers creates it in the database when it starts, or updates the stored
        one to it. Returns it. ``app.schedule(...)`` also writes it at once."""
        return self.schedules.declare(schedule)

    def get_schedule(self, name: str) -> ScheduleInfo:
        """The stored schedule ``name`` (:class:`durably.ScheduleInfo`)."""
        return self.schedules.get(name)

    # -- queues (they belong to this App: its workers serve them, its enqueues check them) ----

    def queue(self, name: str, **limits: Unpack[QueueLimits]) -> Queue:
        """Define the queue ``name`` on this App with its limits (``concurrency``,
        ``worker_concurrency``, ``rate_limit``, ``priority``: see :class:`durably.Queue`) and
        return it: ``emails = app.queue("emails", concurrency=10)``, then
        ``emails.enqueue(wf, ...)``. This App's workers serve it; other Apps do not see it. A
        later definition of the name replaces this one."""
        return self.registry.define_queue(name, limits, self)

    def add_queue(self, queue: Queue) -> Queue:
        """Define a :class:`durably.Queue` made elsewhere on this App (as :meth:`queue`) and
        return it; a queue defined on another App is refused."""
        return self.registry.add_queue(queue, self)

    # -- starting and inspecting ---------------------------------------------------------------

    def _create(self, call: StartCall) -> tuple[WorkflowHandle[Any], bool]:
        workflow_id, created = self._starts.start(call)
        return WorkflowHandle(self._handles, workflow_id), created

    async def _create_async(self, call: StartCall) -> tuple[WorkflowHandle[Any], bool]:
        workflow_id, created = await self._starts.start_async(call)
        return WorkflowHandle(self._handles, workflow_id), created

    def _list_workflows(
        self, filters: WorkflowFilter, limit: int, before: WorkflowInfo | tuple[float, str] | None
    ) -> list[WorkflowInfo]:
        position = None if before is None else page_position(before)
        statuses = status_filter(filters.status)
        limits.check_count(limit, "limit", 1)
        name, id_prefix = filters.name, filters.id_prefix
        after, until = limits.check_filters(
            name, id_prefix, filters.created_after, filters.created_before
        )
        records = self.store.list_workflows(
            statuses=statuses, name=name, limit=limit, created_after=after,
            created_before=until, id_prefix=id_prefix, before=position,
        )  # fmt: skip
        unserved = self.unserved_filter()
        reveal = self.codec.reveal
        return [WorkflowInfo.summary_of(r, unserved=unserved(r), reveal=reveal) for r in records]

    def _iter_workflows(self, filters: WorkflowFilter, page_size: int) -> Iterator[WorkflowInfo]:
        filters = filters.in_epoch_seconds()
        before: WorkflowInfo | None = None
        while True:
            page = self._list_workflows(filters, page_size, before)
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

    def count_versions(self) -> VersionCounts:
        """How many unfinished workflows (any status but a terminal one) each version has, by
        status: ``{"2026.12.1": {WorkflowStatus.RUNNING: 3}, None: {...}}`` (None: started
        with no version). ``durably versions`` prints it; ``durably move-version`` moves the
        workflows of an old version to a new one."""
        return self.store.count_versions()

    def unserved_filter(self) -> Callable[[WorkflowRecord], bool]:
        """A predicate: whether a workflow is pending or running while no live worker serves
        its name on its queue and its version (it stays where it is until one does).

        A worker serves a workflow's version if the worker is unversioned, or the workflow is
        unversioned, or the versions are equal, or the worker's code marks that workflow
        ``auto_upgrade`` (:attr:`WorkerInfo.auto_upgrade`)."""
        workers = self.list_workers()
        served = {(n, q) for w in workers for n in w.workflows for q in w.queues}
        anyver = {(n, q) for w in workers for n in w.workflows for q in w.queues
                  if w.version is None or n in w.auto_upgrade}  # fmt: skip
        versions = {(n, q, w.version) for w in workers for n in w.workflows for q in w.queues}
        active = (WorkflowStatus.PENDING, WorkflowStatus.RUNNING)

        def unserved(rec: WorkflowRecord) -> bool:
            if rec.status not in active:
                return False
            key = (rec.name, rec.queue)
            if key not in served:
                return True
            if rec.version is None or key in anyver:
                return False
            return (*key, rec.version) not in versions

        return unserved

    # -- the embedded worker -------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock()  # read on each use: a test environment sets another clock

    def _current_worker(self) -> Worker | None:
        return self._worker

    def _runs_here(self, workflow_id: str) -> bool:
        """Whether the worker here runs ``workflow_id`` and will hand its end to the waiters
        (not yet finishing: a waiter that comes after the hand-over must read it)."""
        worker = self._worker
        return worker is not None and worker.runs_unfinished(workflow_id)

    def _notify_worker(self) -> None:
        if self._worker is not None:
            self._worker.notify()

    def _new_worker(self) -> Worker:
        from durably.worker import Worker

        return Worker(
            self.store, self.registry, self.codec, self.worker_options,
            on_finished=self._results.on_finished, clock=self.clock,
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

    def _enter(self) -> None:
        self.start_worker()

    def _exit(self, exc: BaseException | None) -> None:
        self.stop_worker()

    # -- lifecycle commands (see durably.app.lifecycle) -----------------------------------------

    send_event = forward(Lifecycle.send_event, "_lifecycle")
    cancel = forward(Lifecycle.cancel, "_lifecycle")
    terminate = forward(Lifecycle.terminate, "_lifecycle")
    suspend = forward(Lifecycle.suspend, "_lifecycle")
    resume = forward(Lifecycle.resume, "_lifecycle")
    retry = forward(Lifecycle.retry, "_lifecycle")
    fork = forward(Lifecycle.fork, "_lifecycle")
    purge = forward(Lifecycle.purge, "_lifecycle")

    bulk = forward(Bulk.bulk, "_bulk")
    bulk_async = thread_twin(bulk)
