"""``Client``: operate workflows through a ``durably server`` over HTTP, as an App does in
process.

``Client("http://host:8233", token=...)`` has the management methods of :class:`durably.App`
(start, enqueue, handle, list_workflows, list_workers, send_event, cancel, terminate, suspend,
resume, retry, fork, purge), each with an ``_async`` twin, and returns the same
:class:`durably.WorkflowHandle`. It needs no workflow code and no third-party package: the
server writes to the store and the workers that serve a workflow run it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from durably import limits
from durably.bulk import (
    DEFAULT_BATCH,
    MAX_BATCH,
    BulkAction,
    BulkFilter,
    BulkResult,
    check_action,
    page_through,
)
from durably.definitions import Workflow, not_a_workflow
from durably.errors import ConfigurationError, UnknownWorkflowError
from durably.handle import WorkflowHandle, WorkflowInfo, page_position, status_filter
from durably.ids import new_workflow_id, validate_workflow_id
from durably.limits import check_event, check_from_step
from durably.operations import OperationsBase, StartCall, WorkflowFilter, thread_twin
from durably.queues import enqueue_target
from durably.remote import wire
from durably.remote.handles import RemoteHandleSource
from durably.remote.schedules import RemoteSchedules
from durably.remote.transport import Transport, segment
from durably.serialization import JsonSerializer
from durably.storage.base import VersionCounts, WorkerInfo, WorkflowStatus
from durably.version import __version__

__all__ = ["DEFAULT_TIMEOUT", "Client"]

DEFAULT_TIMEOUT = 30.0
"""Seconds a Client waits for the server to answer one request (long polls add their wait)."""


def _epoch(value: float | datetime | None, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigurationError(f"{what} must be timezone-aware, got {value!r}")
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(limits.check_epoch(value, what))
    raise ConfigurationError(f"{what} must be epoch seconds or a datetime, got {value!r}")


class Client(OperationsBase):
    """A remote client of a ``durably server``: the management API of :class:`durably.App`
    over HTTP.

    ``url`` defaults to ``$DURABLY_SERVER``, ``token`` to ``$DURABLY_TOKEN``; ``timeout`` bounds
    each request in seconds. Errors are durably's own (:class:`WorkflowNotFoundError`,
    :class:`UnknownWorkflowError`, :class:`WorkflowStateError`, :class:`ConfigurationError`...),
    plus :class:`durably.remote.AuthenticationError` (401) and
    :class:`durably.remote.ServerUnreachableError` (network failures, 503). A Client is
    thread-safe (one keep-alive connection per thread); close it (or use ``with``) when done.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        serializer: JsonSerializer | None = None,
    ) -> None:
        url = url or os.environ.get("DURABLY_SERVER")
        if not url:
            raise ConfigurationError(
                "no server URL: pass Client('http://HOST:PORT') or set DURABLY_SERVER"
            )
        if token is None:
            token = os.environ.get("DURABLY_TOKEN") or None
        self.serializer = serializer or JsonSerializer()
        self._http = Transport(
            url,
            token=token,
            timeout=timeout,
            decode=self.serializer.decode,
            user_agent=f"durably-client/{__version__}",
        )
        self._handles = RemoteHandleSource(self._http)
        self.schedules = RemoteSchedules(self._http, self.serializer)
        """The server's schedules (list, get, create, update, pause, unpause, trigger,
        backfill, delete), as ``app.schedules``."""

    @property
    def url(self) -> str:
        """The server's base URL (a password in it shown as ``***``)."""
        return self._http.url

    def __repr__(self) -> str:
        return f"<durably.Client {self.url}>"

    def close(self) -> None:
        """Close the connections to the server (a later call opens new ones)."""
        self._http.close()

    def _exit(self, exc: BaseException | None) -> None:
        self.close()

    # -- starting ------------------------------------------------------------------------------

    def _create(self, call: StartCall) -> tuple[WorkflowHandle[Any], bool]:
        """Start (POST /v1/workflows): the handle, and whether this call created the workflow
        (the server answers 202; 200 when the id existed and nothing was written)."""
        workflow, id = call.workflow, call.id
        workflow_id = new_workflow_id() if id is None else validate_workflow_id(id)
        if isinstance(workflow, Workflow):
            name = workflow.name
        elif isinstance(workflow, str) and workflow:
            name = workflow
        else:
            raise UnknownWorkflowError(not_a_workflow("client", workflow))
        limits.check_name(name, "workflow name")
        queue, priority = None, call.priority  # None: the server's default queue
        if call.queue is not None:
            queue, priority = enqueue_target(call.queue, priority)
        encoded = self.serializer.encode_call(
            call.args, call.kwargs, workflow_id=workflow_id, name=name
        )
        body = {"name": name, **json.loads(encoded), "id": workflow_id, "queue": queue,
                "priority": priority}  # fmt: skip
        answer = self._http.request(
            "POST", "/v1/workflows", body=body, not_found=UnknownWorkflowError,
            workflow_id=workflow_id,
        )  # fmt: skip
        return WorkflowHandle(self._handles, workflow_id), answer.status == 202

    # -- listing -------------------------------------------------------------------------------

    def _page(
        self, query: list[tuple[str, str]], cursor: str | None
    ) -> tuple[list[WorkflowInfo], str | None]:
        if cursor is not None:
            query = [*query, ("cursor", cursor)]
        body = self._http.request("GET", "/v1/workflows", query=query).body
        workflows = [wire.workflow_info(w) for w in body["workflows"]]
        next_cursor = body.get("next_cursor")
        return workflows, next_cursor if isinstance(next_cursor, str) and next_cursor else None

    @staticmethod
    def _query(filters: WorkflowFilter, limit: int) -> list[tuple[str, str]]:
        limits.check_count(limit, "limit", 1)
        limits.check_filters(filters.name, filters.id_prefix, None, None)
        query = [("status", s.value) for s in status_filter(filters.status) or ()]
        query.append(("limit", str(limit)))
        for key, value in (
            ("name", filters.name),
            ("created_after", _epoch(filters.created_after, "created_after")),
            ("created_before", _epoch(filters.created_before, "created_before")),
            ("id_prefix", filters.id_prefix),
        ):
            if value is not None:
                query.append((key, value))
        return query

    def list_workflows(  # its filters take aware datetimes too
        self,
        *,
        status: WorkflowStatus | str | Sequence[WorkflowStatus | str] | None = None,
        name: str | None = None,
        limit: int = 100,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
        id_prefix: str | None = None,
        before: WorkflowInfo | tuple[float, str] | None = None,
    ) -> list[WorkflowInfo]:
        """Workflows, newest first, filtered as :meth:`durably.App.list_workflows` filters
        (``created_after <= created_at < created_before``: epoch seconds or aware datetimes).
        One page of at most ``limit``; :meth:`iter_workflows` walks every page. Each is a
        summary, as on :meth:`durably.App.list_workflows`: ``input``, ``output`` and ``error``
        are None, ``input_preview``... show their start; ``handle(id).info()`` has them whole.

        ``before`` pages on, as on :meth:`durably.App.list_workflows`: the last
        :class:`WorkflowInfo` of the previous page (its exact ``created_at_epoch`` makes the
        server's own cursor, so every workflow is listed exactly once), or a ``(created_at,
        id)`` pair of exact stored epoch seconds and an id."""
        filters = WorkflowFilter(status, name, created_after, created_before, id_prefix)
        return self._list_workflows(filters, limit, before)

    def _list_workflows(
        self, filters: WorkflowFilter, limit: int, before: WorkflowInfo | tuple[float, str] | None
    ) -> list[WorkflowInfo]:
        query = self._query(filters, limit)
        if before is None:
            return self._page(query, None)[0]
        return self._page(query, wire.encode_cursor(*page_position(before)))[0]

    def _iter_workflows(self, filters: WorkflowFilter, page_size: int) -> Iterator[WorkflowInfo]:
        # the server's cursor keeps pages stable while new workflows are started
        query = self._query(filters, page_size)
        cursor: str | None = None
        while True:
            workflows, cursor = self._page(query, cursor)
            yield from workflows
            if cursor is None or not workflows:
                return

    def list_workers(self, *, include_stale: bool = False) -> list[WorkerInfo]:
        """The worker processes on the server's database (live ones, or every registration
        with ``include_stale=True``)."""
        query = [("include_stale", "true")] if include_stale else None
        body = self._http.request("GET", "/v1/workers", query=query).body
        return [wire.worker_info(w) for w in body["workers"]]

    def count_versions(self) -> VersionCounts:
        """How many unfinished workflows each version has on the server's database, by
        status (see :meth:`durably.App.count_versions`)."""
        return wire.version_counts(self._http.request("GET", "/v1/versions").body)

    # -- commands ------------------------------------------------------------------------------

    def _command(
        self, workflow_id: str, command: str, body: Any = None, method: str = "POST"
    ) -> Any:
        path = f"/v1/workflows/{segment(validate_workflow_id(workflow_id))}{command}"
        return self._http.request(method, path, body=body, workflow_id=workflow_id).body

    def send_event(
        self, workflow_id: str, name: str, payload: Any = None, *, dedup_key: str | None = None
    ) -> bool:
        """Send event ``name`` with ``payload`` to an unfinished workflow (see
        :meth:`durably.App.send_event`). Returns False if ``dedup_key`` was already sent."""
        validate_workflow_id(workflow_id)
        check_event(name, dedup_key)
        data = self.serializer.encode(
            payload, what=f"payload of event {name!r}", workflow_id=workflow_id
        )
        encoded = f'{{"data":{data},"dedup_key":{json.dumps(dedup_key)}}}'
        body = self._http.request(
            "POST", f"/v1/workflows/{segment(workflow_id)}/events/{segment(name)}",
            encoded=encoded, idempotent=dedup_key is not None, workflow_id=workflow_id,
        ).body  # fmt: skip
        return bool(body.get("delivered", True)) if isinstance(body, dict) else True

    def cancel(self, workflow_id: str) -> None:
        """Cancel a workflow (see :meth:`durably.App.cancel`)."""
        self._command(workflow_id, "/cancel")

    def terminate(self, workflow_id: str, reason: str = "terminated") -> None:
        """Stop a workflow now, with ``reason`` (see :meth:`durably.App.terminate`)."""
        limits.check_text(reason, "reason", max_length=limits.MAX_REASON_LENGTH, allow_empty=True)
        self._command(workflow_id, "/terminate", {"reason": reason})

    def suspend(self, workflow_id: str) -> None:
        """Pause a workflow until resumed."""
        self._command(workflow_id, "/suspend")

    def resume(self, workflow_id: str) -> None:
        """Let a suspended workflow continue."""
        self._command(workflow_id, "/resume")

    def retry(self, workflow_id: str) -> None:
        """Run a failed (or needs_attention) workflow again from its failed step."""
        self._command(workflow_id, "/retry")

    def fork(
        self, workflow_id: str, *, from_step: int, new_id: str | None = None
    ) -> WorkflowHandle[Any]:
        """A new workflow with this one's input and journal before seq ``from_step`` (see
        :meth:`durably.App.fork`); returns its handle."""
        check_from_step(from_step)
        target = new_workflow_id() if new_id is None else validate_workflow_id(new_id)
        body = self._command(workflow_id, "/fork", {"from_step": from_step, "new_id": target})
        forked = body.get("id", target) if isinstance(body, dict) else target
        return WorkflowHandle(self._handles, forked)

    def purge(self, workflow_id: str) -> None:
        """Delete a finished workflow with its journal, events, state and runs."""
        self._command(workflow_id, "", method="DELETE")

    def bulk(
        self,
        action: BulkAction,
        filter: BulkFilter,
        *,
        dry_run: bool = False,
        reason: str = "terminated",
        batch_size: int = DEFAULT_BATCH,
        limit: int | None = None,
        after: str | None = None,
        progress: Callable[[BulkResult], None] | None = None,
    ) -> BulkResult:
        """Apply ``action`` to every workflow ``filter`` selects, on the server (see
        :meth:`durably.App.bulk`): one request per ``batch_size`` workflows (at most the
        server's 10,000), each going on from the cursor of the one before."""
        action = check_action(action)
        form = filter.to_json()
        filter.selection()  # a bad filter is refused here, before any request
        limits.check_count(batch_size, "batch_size", 1, MAX_BATCH)

        def batch(cursor: str | None, room: int) -> tuple[BulkResult, str | None]:
            body: dict[str, Any] = {"filter": form, "dry_run": dry_run, "reason": reason,
                                    "limit": room}  # fmt: skip
            if cursor is not None:
                body["after"] = cursor
            answer = self._http.request("POST", f"/v1/bulk/{action}", body=body).body
            part = BulkResult(
                action, dry_run, int(answer["matched"]), int(answer["processed"]),
                int(answer["skipped"]), list(answer["sample"]),
            )  # fmt: skip
            return part, answer["cursor"]

        if dry_run:
            return batch(after, 1)[0]
        return page_through(
            action, batch, batch_size=batch_size, limit=limit, after=after, progress=progress
        )

    bulk_async = thread_twin(bulk)

    # a Client's listing filters take datetimes too
    _list_workflows_async = thread_twin(list_workflows)
    list_workflows_async = _list_workflows_async
