"""Waiting on an event loop for workflows to end: one store read per poll for all the waiters.

``await handle.result_async()`` on many handles at once (``asyncio.gather``) would otherwise
read each workflow on its own, again and again. Here every handle awaited on one loop joins one
poller, which reads the ended ones among them in one query (in a thread, so the loop keeps
running), resolves their waiters and backs off while nothing ends. Waiters that arrive together
share the first read; a lone waiter's read runs on the loop, with no thread hop. A worker in the
same process hands the poller the outcome of an awaited workflow as soon as its end is committed,
so its waiters need no read at all.

:class:`Results` is the one place an App waits for workflows to end: in a thread (woken by the
worker here, else polling the store) or on an event loop (through that loop's
:class:`ResultPoller`), warning when no live worker serves an awaited workflow and saying why a
wait timed out.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from durably.app.database import found, missing
from durably.errors import WorkflowNotFoundError, WorkflowTimeoutError
from durably.storage.base import TERMINAL_STATUSES, Ended, WorkflowRecord
from durably.storage.committer import settle
from durably.waiting import UnservedWatch, unserved_hint

if TYPE_CHECKING:
    from durably.app.database import Database

__all__ = ["ResultPoller", "Results"]

FIRST_DELAY = 0.001
"""The wait after a poll that found an ended workflow (or a new waiter)."""
REMOTE_CAP = 0.02
"""The longest wait between polls while some awaited workflow runs elsewhere."""
LOCAL_CAP = 0.5
"""The longest wait while every awaited workflow runs on this process's worker, which wakes the
poller when it finishes one (this is only a fallback)."""
READ_SHARE = 4.0
"""After a read that took t seconds, wait at least READ_SHARE * t before the next (but no
longer than MAX_FLOOR: a slow read must not make every waiter late)."""
MAX_FLOOR = 0.05
CHUNK = 2000
"""At most this many ids per read; with more waiters, successive reads take turns."""


Finished = Callable[[Sequence[str]], dict[str, WorkflowRecord | None]]
Outcome = WorkflowRecord | Ended


class ResultPoller:
    """The waiters of one event loop, polled together.

    ``finished`` reads which of some ids have ended (``Store.finished_workflows``), ``local``
    tells whether a workflow runs on this process's worker (which hands over its end: it is not
    read while it runs there), and ``where`` names the database in errors. With ``quick_reads``
    (``Store.quick_reads``: SQLite) a lone waiter's read runs on the loop, with no thread hop;
    otherwise every read runs in a thread, so that a database outage never stalls the loop (a
    server answering other requests on it). Use it from its loop only, except
    :meth:`wake_if_waiting`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        finished: Finished,
        local: Callable[[str], bool],
        where: str,
        quick_reads: bool = False,
    ) -> None:
        # weakly: the App keys its pollers by loop, weakly, so a poller must not keep it alive
        self._loop = weakref.ref(loop)
        self._finished = finished
        self._local = local
        self._where = where
        self._quick_reads = quick_reads  # a lone waiter's read may run on the loop
        self._waiting: dict[str, list[asyncio.Future[Outcome | None]]] = {}
        self._deadlines: list[tuple[float, int, str, asyncio.Future[Outcome | None]]] = []
        self._kicked = False
        self._sleeper: asyncio.Future[None] | None = None
        self._wake_sent = False  # a kick from another thread is on its way to the loop
        self._handed: deque[Ended] = deque()  # ends handed over by the worker here
        self._read_all = False
        self._task: asyncio.Task[None] | None = None
        self._turn = 0
        self._count = 0

    async def wait(self, workflow_id: str, timeout: float | None) -> Outcome | None:
        """The workflow's record (or how it ended) once it has ended, or None if ``timeout``
        passes first.

        Raises :class:`WorkflowNotFoundError` if no workflow has this id, and what the store
        raised if a read fails.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Outcome | None] = loop.create_future()
        self._waiting.setdefault(workflow_id, []).append(fut)
        if timeout is not None:  # the poll loop ends it with None at its deadline
            self._count += 1
            deadline = time.monotonic() + max(0.0, timeout)
            heapq.heappush(self._deadlines, (deadline, self._count, workflow_id, fut))
        self._kick()
        if self._task is None:
            self._task = loop.create_task(self._run(), name="durably-results")
        try:
            return await fut
        finally:
            if not fut.done():  # the caller was cancelled
                fut.cancel()
                self._forget(workflow_id, fut)

    def wake_if_waiting(self, workflow_id: str, ended: Ended | None = None) -> None:
        """From any thread: a workflow ended here. If it is awaited, hand its waiters how it
        ended (``ended``, as committed), or without it poll now."""
        loop = self._loop()
        if loop is None or workflow_id not in self._waiting:
            return  # a waiter that comes later reads it
        if ended is None:
            self._read_all = True
        else:
            self._handed.append(ended)
        if self._wake_sent:  # many ends before the loop runs the wake-up: one wake-up
            return
        self._wake_sent = True
        try:
            loop.call_soon_threadsafe(self._woken)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _woken(self) -> None:
        """Resolve the waiters of the ends handed over, with no read; poll at once if told to
        read (or to end the poll loop, when nobody waits any more)."""
        self._wake_sent = False  # before taking: a later hand-over sends a new wake-up
        handed = self._handed
        while handed:
            ended = handed.popleft()
            self._resolve(ended.id, ended)
        if self._read_all or not self._waiting:
            self._kick()

    def _kick(self) -> None:
        """Poll again at once (a new waiter, a wake-up)."""
        self._kicked = True
        if self._sleeper is not None and not self._sleeper.done():
            self._sleeper.set_result(None)

    def _forget(self, workflow_id: str, fut: asyncio.Future[Outcome | None]) -> None:
        waiters = self._waiting.get(workflow_id)
        if waiters is not None and fut in waiters:
            waiters.remove(fut)
            if not waiters:
                del self._waiting[workflow_id]

    def _next_ids(self) -> list[str]:
        ids = list(self._waiting)
        if len(ids) <= CHUNK:
            return ids
        start = self._turn % len(ids)
        self._turn = start + CHUNK
        return (ids[start:] + ids[:start])[:CHUNK]

    def _expire(self, now: float) -> float | None:
        """End the waits whose deadline passed; the seconds until the next one (None: none)."""
        deadlines = self._deadlines
        while deadlines:
            deadline, _, workflow_id, fut = deadlines[0]
            if fut.done():
                heapq.heappop(deadlines)
            elif deadline <= now:
                heapq.heappop(deadlines)
                fut.set_result(None)
                self._forget(workflow_id, fut)
            else:
                return deadline - now
        return None

    def _cap(self) -> float:
        # a sample is enough: waiters on a worker here are woken by it, the cap is a fallback
        sample = itertools.islice(self._waiting, 64)
        return LOCAL_CAP if all(self._local(i) for i in sample) else REMOTE_CAP

    async def _run(self) -> None:
        try:
            await self._poll()
        finally:
            self._task = None
            # every wait has ended: drop the deadlines of those that ended otherwise (their
            # futures hold the loop, which must not outlive its users)
            self._deadlines = [d for d in self._deadlines if not d[3].done()]
            heapq.heapify(self._deadlines)

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        delay = FIRST_DELAY
        while self._waiting:
            self._kicked = False
            # a workflow running on the worker here is handed over when it ends: no read
            local = self._local
            ids = self._next_ids()
            if self._read_all:  # told to (a wake without the end): read them all
                self._read_all = False
            else:
                ids = [i for i in ids if not local(i)]
            began = time.monotonic()
            try:
                if not ids:
                    found = {}
                elif len(ids) == 1 and self._quick_reads:  # a lone waiter: no thread hop
                    found = self._finished(ids)
                else:
                    found = await loop.run_in_executor(None, self._finished, ids)
            except Exception as exc:  # the store failed: every waiter of these ids hears it
                for workflow_id in ids:
                    self._resolve(workflow_id, exc)
                continue
            now = time.monotonic()
            for workflow_id, rec in found.items():
                if rec is None:
                    self._resolve(workflow_id, self._missing(workflow_id))
                else:
                    self._resolve(workflow_id, rec)
            if len(self._deadlines) > 2 * len(self._waiting) + 64:  # mostly resolved ones
                self._deadlines = [d for d in self._deadlines if not d[3].done()]
                heapq.heapify(self._deadlines)
            until_deadline = self._expire(now)
            if not self._waiting:
                break
            # reads take at most about a fifth of the time, however many wait: a read of many
            # ids costs the database too
            floor = min(READ_SHARE * (now - began), MAX_FLOOR)
            if found:
                delay = max(FIRST_DELAY, floor)
            else:
                delay = min(max(delay * 2, floor), max(self._cap(), floor))
            if self._kicked:
                continue
            pause = delay if until_deadline is None else min(delay, until_deadline)
            self._sleeper = loop.create_future()
            try:
                await asyncio.wait_for(self._sleeper, pause)
            except TimeoutError:
                self._expire(time.monotonic())
            finally:
                self._sleeper = None

    def _missing(self, workflow_id: str) -> WorkflowNotFoundError:
        return missing(workflow_id, self._where)

    def _resolve(self, workflow_id: str, outcome: Outcome | BaseException) -> None:
        for fut in self._waiting.pop(workflow_id, ()):
            settle(fut, outcome)


_START = "`durably worker MODULE:APP`, app.run_worker() or `with app:`"
"""How to start a worker, as the warnings and timeouts of an App's waits say."""

Served = Callable[[], Callable[[WorkflowRecord], bool]]


class Results:
    """Waiting for the workflows of one App to end.

    ``database``: where they are read; ``unserved``: makes a predicate telling whether no live
    worker serves a workflow (:meth:`durably.App.unserved_filter`); ``runs_here``: whether the
    App's worker runs a workflow and will hand its end to :meth:`on_finished` (so the pollers
    need not read it). Thread-safe.
    """

    def __init__(
        self, database: Database, unserved: Served, runs_here: Callable[[str], bool]
    ) -> None:
        self._database = database
        self._unserved = unserved
        self._runs_here = runs_here
        self._finished = threading.Condition()
        self._generation = 0  # how many workflows the worker here has finished
        self._pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ResultPoller] = (
            weakref.WeakKeyDictionary()
        )

    def record(self, workflow_id: str) -> WorkflowRecord:
        """The workflow's record, read now; :class:`WorkflowNotFoundError` if there is none."""
        database = self._database
        return found(database.store.get_workflow(workflow_id), workflow_id, database)

    def on_finished(self, ended: Ended) -> None:
        """From the worker here, once a workflow's end is committed: wake the waiters."""
        with self._finished:
            self._generation += 1
            self._finished.notify_all()
            pollers = list(self._pollers.values())
        for poller in pollers:
            poller.wake_if_waiting(ended.id, ended)

    def reset(self) -> None:
        """Forget the pollers (they read the store they were made with): the App moved to
        another database."""
        with self._finished:
            self._pollers.clear()

    def poller(self) -> ResultPoller:
        """The poller of the running loop's waiters (made on first use)."""
        loop = asyncio.get_running_loop()
        with self._finished:
            poller = self._pollers.get(loop)
            if poller is None:
                database = self._database
                poller = ResultPoller(
                    loop,
                    database.store.finished_workflows,
                    self._runs_here,
                    database.safe_database_url,
                    database.store.quick_reads,
                )
                self._pollers[loop] = poller
            return poller

    def wait(self, workflow_id: str, timeout: float | None) -> WorkflowRecord:
        """The workflow's record once it has ended (woken by the worker here, else polling the
        store with back-off); :class:`WorkflowTimeoutError` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        watch = UnservedWatch()
        while True:
            generation = self._generation
            rec = self.record(workflow_id)
            if rec.status in TERMINAL_STATUSES:
                return rec
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise self._timed_out(rec, timeout)
            if watch.due():
                self._check_served(watch, rec)
            with self._finished:  # a workflow finished since the read: read again at once
                if self._generation == generation:
                    self._finished.wait(delay if remaining is None else min(delay, remaining))
            delay = min(delay * 2, 0.1)

    async def wait_async(self, workflow_id: str, timeout: float | None) -> WorkflowRecord | Ended:
        """:meth:`wait` on an event loop: joins the loop's poller, which reads every workflow
        awaited on this loop in one query per poll (and is woken by the worker here); the
        record, or how the workflow ended as the worker here handed it over."""
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = UnservedWatch()
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            check = watch.until_check()
            wait = (
                remaining
                if check is None or (remaining is not None and remaining <= check)
                else check
            )
            rec = await self.poller().wait(workflow_id, wait)
            if rec is not None:
                return rec
            current = await asyncio.to_thread(self.record, workflow_id)
            if deadline is not None and time.monotonic() >= deadline:
                raise await asyncio.to_thread(self._timed_out, current, timeout)
            await asyncio.to_thread(self._check_served, watch, current)

    def _check_served(self, watch: UnservedWatch, rec: WorkflowRecord) -> None:
        """A long wait's check: warn once if no live worker serves the workflow."""
        unserved = self._unserved()(rec)
        watch.check(rec.id, rec.status.value, rec.name, rec.queue, unserved, _START)

    def _timed_out(self, rec: WorkflowRecord, timeout: float | None) -> WorkflowTimeoutError:
        hint = "wait longer, or check that a worker serving it runs"
        if self._unserved()(rec):
            hint = unserved_hint(rec.name, rec.queue, _START)
        return WorkflowTimeoutError(
            f"workflow {rec.id!r} is still {rec.status.value} after {timeout}s; {hint}",
            workflow_id=rec.id,
        )
