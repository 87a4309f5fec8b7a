"""Waiting on an event loop for workflows to end: one store read per poll for all the waiters.

``await handle.result_async()`` on many handles at once (``asyncio.gather``) would otherwise
read each workflow on its own, again and again. Here every handle awaited on one loop joins one
poller, which reads the ended ones among them in one query (in a thread, so the loop keeps
running), resolves their waiters and backs off while nothing ends. A lone waiter looks once
on the loop itself first (most awaited workflows have ended by then). A worker in the same process
wakes the poller as soon as it finishes an awaited workflow.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Sequence

from durably.errors import WorkflowNotFoundError
from durably.storage.base import WorkflowRecord

__all__ = ["ResultPoller"]

FIRST_DELAY = 0.001
"""The wait after a poll that found an ended workflow (or a new waiter)."""
REMOTE_CAP = 0.02
"""The longest wait between polls while some awaited workflow runs elsewhere."""
LOCAL_CAP = 0.5
"""The longest wait while every awaited workflow runs on this process's worker, which wakes the
poller when it finishes one (this is only a fallback)."""
CHUNK = 2000
"""At most this many ids per read; with more waiters, successive reads take turns."""

Finished = Callable[[Sequence[str]], dict[str, WorkflowRecord | None]]


class ResultPoller:
    """The waiters of one event loop, polled together.

    ``finished`` reads which of some ids have ended (``Store.finished_workflows``), ``local``
    tells whether a workflow runs on this process's worker, and ``where`` names the database in
    errors. Use it from its loop only, except :meth:`wake_if_waiting`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        finished: Finished,
        local: Callable[[str], bool],
        where: str,
    ) -> None:
        # weakly: the App keys its pollers by loop, weakly, so a poller must not keep it alive
        self._loop = weakref.ref(loop)
        self._finished = finished
        self._local = local
        self._where = where
        self._waiting: dict[str, list[asyncio.Future[WorkflowRecord]]] = {}
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._turn = 0

    async def wait(self, workflow_id: str, timeout: float | None) -> WorkflowRecord | None:
        """The workflow's record once it has ended, or None if ``timeout`` passes first.

        Raises :class:`WorkflowNotFoundError` if no workflow has this id, and what the store
        raised if a read fails.
        """
        if self._task is None:  # nobody else waits here: one quick look before polling
            found = self._finished([workflow_id])
            if workflow_id in found:
                rec = found[workflow_id]
                if rec is None:
                    raise self._missing(workflow_id)
                return rec
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[WorkflowRecord] = loop.create_future()
        self._waiting.setdefault(workflow_id, []).append(fut)
        self._kick.set()
        if self._task is None:
            self._task = loop.create_task(self._run(), name="durably-results")
        try:
            if timeout is None:
                return await fut
            try:
                return await asyncio.wait_for(fut, max(0.0, timeout))
            except TimeoutError:
                return None
        finally:
            if not fut.done():
                fut.cancel()
            waiters = self._waiting.get(workflow_id)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiting[workflow_id]

    def wake_if_waiting(self, workflow_id: str) -> None:
        """From any thread: a workflow ended here; poll now if it is awaited."""
        loop = self._loop()
        if loop is not None and workflow_id in self._waiting:
            try:
                loop.call_soon_threadsafe(self._kick.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _next_ids(self) -> list[str]:
        ids = list(self._waiting)
        if len(ids) <= CHUNK:
            return ids
        start = self._turn % len(ids)
        self._turn = start + CHUNK
        return (ids[start:] + ids[:start])[:CHUNK]

    async def _run(self) -> None:
        try:
            await self._poll()
        finally:
            self._task = None

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        delay = FIRST_DELAY
        while self._waiting:
            self._kick.clear()
            ids = self._next_ids()
            began = time.monotonic()
            try:
                found = await loop.run_in_executor(None, self._finished, ids)
            except Exception as exc:  # the store failed: every waiter of these ids hears it
                for workflow_id in ids:
                    self._resolve(workflow_id, exc)
                continue
            spent = time.monotonic() - began
            for workflow_id, rec in found.items():
                if rec is None:
                    self._resolve(workflow_id, self._missing(workflow_id))
                else:
                    self._resolve(workflow_id, rec)
            if not self._waiting:
                break
            # reads never take more than about a third of the time, however many wait
            floor = 2 * spent
            if found:
                delay = max(FIRST_DELAY, floor)
            else:
                cap = LOCAL_CAP if all(self._local(i) for i in self._waiting) else REMOTE_CAP
                delay = min(max(delay * 2, floor), max(cap, floor))
            if self._kick.is_set():
                continue
            try:
                await asyncio.wait_for(self._kick.wait(), delay)
            except TimeoutError:
                pass

    def _missing(self, workflow_id: str) -> WorkflowNotFoundError:
        return WorkflowNotFoundError(
            f"no workflow with id {workflow_id!r} in {self._where}; check the id "
            "(app.list_workflows() lists them)",
            workflow_id=workflow_id,
        )

    def _resolve(self, workflow_id: str, outcome: WorkflowRecord | BaseException) -> None:
        for fut in self._waiting.pop(workflow_id, ()):
            if fut.done():
                continue
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)
