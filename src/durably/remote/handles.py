"""What a :class:`WorkflowHandle` of a :class:`durably.Client` reads: the server's
``/v1/workflows/{id}/...`` routes; ``result`` long-polls ``/result?wait=``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from durably.errors import WorkflowFailedError, WorkflowNotFoundError, WorkflowTimeoutError
from durably.handle import HistoryEntry, RunInfo, WorkflowInfo
from durably.remote import wire
from durably.remote.errors import ServerError
from durably.remote.transport import Transport, segment
from durably.storage.base import WorkflowStatus
from durably.waiting import UnservedWatch, unserved_hint

__all__ = ["MAX_WAIT", "RemoteHandleSource"]

MAX_WAIT = 60.0
"""The longest one ``/result?wait=`` poll may hold (the server's cap)."""
ASYNC_MAX_WAIT = 10.0
"""Async waits poll in shorter slices: each holds a thread, which a cancelled wait frees
only when its slice ends."""


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def _outcome(workflow_id: str, body: dict[str, Any]) -> Any:
    status = body.get("status")
    if status == WorkflowStatus.COMPLETED.value:
        return body.get("output")
    error = body.get("error") or {}
    detail = f": {error.get('type')}: {error.get('message')}" if error else ""
    raise WorkflowFailedError(
        f"workflow {workflow_id!r} ended {status}{detail}",
        workflow_id=workflow_id,
        status=str(status),
        error=error if isinstance(error, dict) else {"message": str(error)},
    )


class RemoteHandleSource:
    """The :class:`durably.handle.HandleSource` of a Client: one request per read."""

    __slots__ = ("_http",)

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def _get(self, workflow_id: str, tail: str = "") -> Any:
        path = f"/v1/workflows/{segment(workflow_id)}{tail}"
        return self._http.request("GET", path, workflow_id=workflow_id).body

    def info(self, workflow_id: str) -> WorkflowInfo:
        """``GET /v1/workflows/{id}``."""
        return wire.workflow_info(self._get(workflow_id))

    def status(self, workflow_id: str) -> WorkflowStatus:
        """The status from :meth:`info`."""
        return self.info(workflow_id).status

    def history(self, workflow_id: str) -> list[HistoryEntry]:
        """``GET /v1/workflows/{id}/history``."""
        return [wire.history_entry(e) for e in self._get(workflow_id, "/history")["entries"]]

    def states(self, workflow_id: str) -> dict[str, Any]:
        """``GET /v1/workflows/{id}/state``."""
        state = self._get(workflow_id, "/state")["state"]
        if not isinstance(state, dict):
            raise ServerError(f"the server sent {state!r} as the state of {workflow_id!r}")
        return state

    def state(self, workflow_id: str, key: str, default: Any) -> Any:
        """One key of :meth:`states`."""
        return self.states(workflow_id).get(key, default)

    def runs(self, workflow_id: str) -> list[RunInfo]:
        """``GET /v1/workflows/{id}/runs`` (a clear error from a server without that route)."""
        try:
            runs = self._get(workflow_id, "/runs")["runs"]
        except WorkflowNotFoundError:
            self.info(workflow_id)  # raises if the workflow is what is missing
            raise ServerError(
                f"the durably server at {self._http.url} does not serve the runs of a workflow "
                "(GET /v1/workflows/{id}/runs); read them with durably.App(DATABASE_URL)"
                f".handle({workflow_id!r}).runs()",
                status=404,
                workflow_id=workflow_id,
            ) from None
        return [wire.run_info(r) for r in runs]

    def children(self, workflow_id: str) -> list[WorkflowInfo]:
        """``GET /v1/workflows/{id}/children``."""
        return [wire.workflow_info(w) for w in self._get(workflow_id, "/children")["workflows"]]

    # -- waiting -------------------------------------------------------------------------------

    def _poll(self, workflow_id: str, wait: float) -> dict[str, Any] | None:
        """One long poll of up to ``wait`` s: the result body when done, else None."""
        started = time.monotonic()
        resp = self._http.request(
            "GET",
            f"/v1/workflows/{segment(workflow_id)}/result",
            query=[("wait", _seconds(wait))],
            timeout=self._http.timeout + wait,
            workflow_id=workflow_id,
        )
        body = resp.body
        if not isinstance(body, dict):
            raise ServerError(f"the server sent {body!r} as the result of {workflow_id!r}")
        if body.get("done"):
            return body
        # a server that answers before the wait is over (or ignores it): do not spin
        early = wait - (time.monotonic() - started)
        if early > 0.05:
            time.sleep(min(early, 1.0))
        return None

    def _timed_out(self, workflow_id: str, timeout: float | None) -> WorkflowTimeoutError:
        info = self.info(workflow_id)
        hint = "wait longer, or check that a worker serving it runs"
        if info.unserved:
            hint = unserved_hint(info.name, info.queue)
        return WorkflowTimeoutError(
            f"workflow {workflow_id!r} is still {info.status.value} after {timeout}s; {hint}",
            workflow_id=workflow_id,
        )

    def result(self, workflow_id: str, timeout: float | None) -> Any:
        """Long-poll until the workflow ends (or ``timeout`` s pass)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = UnservedWatch()
        while True:
            wait = _slice(deadline, MAX_WAIT, watch)
            done = self._poll(workflow_id, wait)
            if done is not None:
                return _outcome(workflow_id, done)
            if deadline is not None and time.monotonic() >= deadline:
                raise self._timed_out(workflow_id, timeout)
            if watch.due():
                self._check_served(workflow_id, watch)

    async def result_async(self, workflow_id: str, timeout: float | None) -> Any:
        """Async twin of :meth:`result`: polls in slices of at most ``ASYNC_MAX_WAIT`` s, each
        in a thread."""
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = UnservedWatch()
        while True:
            wait = _slice(deadline, ASYNC_MAX_WAIT, watch)
            done = await asyncio.to_thread(self._poll, workflow_id, wait)
            if done is not None:
                return _outcome(workflow_id, done)
            if deadline is not None and time.monotonic() >= deadline:
                raise await asyncio.to_thread(self._timed_out, workflow_id, timeout)
            if watch.due():
                await asyncio.to_thread(self._check_served, workflow_id, watch)

    def _check_served(self, workflow_id: str, watch: UnservedWatch) -> None:
        """A long wait's check: warn once if no live worker serves the workflow."""
        info = self.info(workflow_id)
        start = "`durably worker MODULE:APP`"
        watch.check(workflow_id, info.status.value, info.name, info.queue, info.unserved, start)


def _slice(deadline: float | None, most: float, watch: UnservedWatch) -> float:
    """How long the next poll may wait: at most ``most``, until the deadline and until the
    watch's next check."""
    waits = [most]
    if deadline is not None:
        waits.append(max(0.0, deadline - time.monotonic()))
    check = watch.until_check()
    if check is not None:
        waits.append(check)
    return min(waits)
