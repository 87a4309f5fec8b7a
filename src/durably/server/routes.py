"""The native JSON API under ``/v1`` (see the README's "HTTP API" section and /openapi.json)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from durably import limits
from durably.errors import (
    ConfigurationError,
    SerializationError,
    UnknownWorkflowError,
    WorkflowFailedError,
    WorkflowTimeoutError,
)
from durably.handle import page_position, status_filter
from durably.jsonforms import versions_json
from durably.limits import check_event
from durably.queues import DEFAULT_QUEUE
from durably.storage.base import WorkflowStatus

from . import models as m
from .endpoint import Call, Handler, json_response
from .errors import ApiError, known
from .inputs import decode_cursor, encode_cursor, model_body, only_fields, parse_time, workflow_id
from .operation import Body, Operation, Reply, query
from .views import history_json, result_json, run_json, state_json, worker_json, workflow_json

__all__ = ["EXAMPLE_ID", "ID_PARAM", "MAX_LIST_LIMIT", "MAX_WAIT_SECONDS", "OPERATIONS"]

MAX_LIST_LIMIT = 1000
MAX_WAIT_SECONDS = 60.0
_LIST_PARAMS = ("status", "name", "created_after", "created_before", "id_prefix", "limit", "cursor")


def _location(wid: str) -> dict[str, str]:
    return {"Location": f"/v1/workflows/{wid}"}


def unknown_name(name: str) -> ApiError:
    """The 404 for starting a workflow name that no worker ever registered."""
    return ApiError(
        "not_found",
        f"no worker has registered a workflow named {name[:200]!r}, so nothing would run it; "
        "start a worker whose app defines it (durably worker MODULE:APP) and retry, or check "
        "the name (GET /v1/workers lists what each worker serves)",
    )


def start_workflow(call: Call) -> Response:
    """POST /v1/workflows: start a workflow by name (202), or find the one with that id (200)."""
    req = model_body(call.json(allow_empty=False), m.StartRequest)
    name, args, kwargs, wid = req.name, req.args, req.kwargs, req.id
    queue, priority = req.queue, req.priority
    app = call.app
    try:
        handle, created = app.start_named(
            name, app.codec.from_json(args), app.codec.from_json(kwargs), id=wid,
            queue=queue or DEFAULT_QUEUE, priority=priority,
        )  # fmt: skip
    except UnknownWorkflowError:
        raise unknown_name(name) from None
    # an id that exists (even one a concurrent start just created): 200, nothing runs again;
    # one of another workflow name raised WorkflowIdConflictError (409 id_conflict)
    info = workflow_json(handle.info())
    return json_response(info, 202 if created else 200, _location(handle.id))


def list_workflows(call: Call) -> Response:
    """GET /v1/workflows: workflows newest first, filtered, one page at a time; each a
    summary (previews of its payloads, never the payloads: ``GET /v1/workflows/{id}``)."""
    query = call.request.query_params
    unknown = sorted(set(query.keys()) - set(_LIST_PARAMS))
    if unknown:
        raise ApiError(
            "bad_request",
            f"unknown query parameter(s) {', '.join(unknown)}; use {', '.join(_LIST_PARAMS)}",
        )
    for key in _LIST_PARAMS[1:]:
        if len(query.getlist(key)) > 1:
            raise ApiError("bad_request", f"query parameter {key!r} given more than once")
    try:
        statuses = status_filter(query.getlist("status"))
    except ConfigurationError as exc:
        raise ApiError("bad_request", str(exc)) from None
    limit = limits.parse_count(query.get("limit", "100"), "limit", 1, MAX_LIST_LIMIT)
    limits.check_filters(query.get("name"), query.get("id_prefix"), None, None)
    after = query.get("created_after")
    before_time = query.get("created_before")
    cursor = query.get("cursor")
    infos = call.app.list_workflows(  # summaries: no payloads
        status=statuses,
        name=query.get("name"),
        limit=limit + 1,  # one more than the page: whether a next page exists
        created_after=None if after is None else parse_time(after, "created_after"),
        created_before=None if before_time is None else parse_time(before_time, "created_before"),
        id_prefix=query.get("id_prefix") or None,
        before=None if cursor is None else decode_cursor(cursor),
    )
    page, more = infos[:limit], len(infos) > limit
    return json_response(
        {
            "workflows": [workflow_json(i) for i in page],
            "next_cursor": encode_cursor(*page_position(page[-1])) if more else None,
        }
    )


def get_workflow(call: Call) -> Response:
    """GET /v1/workflows/{id}: one workflow."""
    wid = workflow_id(call.param("id"))
    with known(wid):
        return json_response(workflow_json(call.app.handle(wid).info()))


def _wait_param(request: Request) -> float:
    text = request.query_params.get("wait", "0")
    try:
        wait = float(text) if text.isascii() else -1.0  # float() takes other scripts' digits
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= MAX_WAIT_SECONDS:  # also false for NaN
        raise ApiError(
            "bad_request", f"wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS:g}"
        )
    return wait


async def get_result(call: Call) -> Response:
    """GET /v1/workflows/{id}/result[?wait=S]: the outcome (200) or 'not yet' (202), waiting
    up to ``wait`` seconds for the workflow to end (with the App's one way of waiting,
    ``handle.result_async``)."""
    wid = workflow_id(call.param("id"))
    wait = _wait_param(call.request)
    handle = call.app.handle(wid)
    with known(wid):
        body = result_json(await handle.info_async())
        if not body["done"] and wait > 0:
            # how it ended is read below, as the answer shows it (an output this App cannot
            # decode as its workflow's return type is still shown)
            with suppress(WorkflowTimeoutError, WorkflowFailedError, SerializationError):
                await handle.result_async(timeout=wait)
            body = result_json(await handle.info_async())
    if body["done"]:
        return json_response(body)
    location = f"/v1/workflows/{wid}/result"
    return json_response(body, 202, {"Retry-After": "1", "Location": location})


def get_history(call: Call) -> Response:
    """GET /v1/workflows/{id}/history: the journal with failed attempts."""
    app = call.app
    entries = app.handle(workflow_id(call.param("id"))).history()
    return json_response({"entries": [history_json(e) for e in entries]})


def get_state(call: Call) -> Response:
    """GET /v1/workflows/{id}/state: what the workflow published with ``set_state``."""
    wid = workflow_id(call.param("id"))
    with known(wid):
        return json_response(state_json(call.app.handle(wid).states()))


def get_runs(call: Call) -> Response:
    """GET /v1/workflows/{id}/runs: the earlier runs of a workflow that continued as new."""
    app = call.app
    runs = app.handle(workflow_id(call.param("id"))).runs()
    return json_response({"runs": [run_json(r) for r in runs]})


def get_children(call: Call) -> Response:
    """GET /v1/workflows/{id}/children: the child workflows, oldest first."""
    handle = call.app.handle(workflow_id(call.param("id")))
    with known(handle.id):
        handle.status()  # a 404 for an unknown id (children() would be empty)
    children = [workflow_json(i) for i in handle.children()]
    return json_response({"workflows": children})


def send_event(call: Call) -> Response:
    """POST /v1/workflows/{id}/events/{event}: deliver an event (``data``, ``dedup_key``)."""
    wid = workflow_id(call.param("id"))
    event = call.param("event")
    req = model_body(call.json(), m.EventRequest)
    data, dedup_key = req.data, req.dedup_key
    check_event(event, dedup_key)
    with known(wid):
        call.app.handle(wid).status()  # a 404 before the data's errors
    data = call.app.codec.from_json(data)
    delivered = call.app.send_event(wid, event, data, dedup_key=dedup_key)
    return json_response({"delivered": delivered}, 202)


def _command(call: Call, command: str) -> Response:
    wid = workflow_id(call.param("id"))
    app = call.app
    if command == "terminate":
        reason = model_body(call.json(), m.TerminateRequest).reason
        app.terminate(wid, reason or "terminated")
    else:
        if call.body.strip():
            only_fields(call.json(), ())
        getattr(app, command)(wid)
    return json_response({"id": wid, "status": app.handle(wid).status().value}, 202)


def cancel(call: Call) -> Response:
    """POST /v1/workflows/{id}/cancel."""
    return _command(call, "cancel")


def terminate(call: Call) -> Response:
    """POST /v1/workflows/{id}/terminate (``reason`` optional)."""
    return _command(call, "terminate")


def suspend(call: Call) -> Response:
    """POST /v1/workflows/{id}/suspend."""
    return _command(call, "suspend")


def resume(call: Call) -> Response:
    """POST /v1/workflows/{id}/resume."""
    return _command(call, "resume")


def retry(call: Call) -> Response:
    """POST /v1/workflows/{id}/retry."""
    return _command(call, "retry")


def fork(call: Call) -> Response:
    """POST /v1/workflows/{id}/fork: a new workflow re-executing from ``from_step``."""
    wid = workflow_id(call.param("id"))
    req = model_body(call.json(allow_empty=False), m.ForkRequest)
    from_step, new_id = req.from_step, req.new_id
    handle = call.app.fork(wid, from_step=from_step, new_id=new_id)
    return json_response(workflow_json(handle.info()), 201, _location(handle.id))


def purge(call: Call) -> Response:
    """DELETE /v1/workflows/{id}: delete a finished workflow and everything it wrote."""
    call.app.purge(workflow_id(call.param("id")))
    return Response(status_code=204)


def list_workers(call: Call) -> Response:
    """GET /v1/workers[?include_stale=true]: the worker processes on this database."""
    flag = call.request.query_params.get("include_stale", "false").lower()
    if flag not in ("true", "false", "1", "0"):
        raise ApiError("bad_request", "include_stale must be true or false")
    workers = call.app.list_workers(include_stale=flag in ("true", "1"))
    return json_response({"workers": [worker_json(w) for w in workers]})


def list_versions(call: Call) -> Response:
    """GET /v1/versions: how many unfinished workflows each version has, by status."""
    return json_response(versions_json(call.app.count_versions()))


async def healthz(call: Call) -> Response:
    """GET /healthz: the process answers (no database access, no auth)."""
    return json_response({"status": "ok"})


def readyz(call: Call) -> Response:
    """GET /readyz: ready when the database answers (503 otherwise)."""
    call.app.list_workflows(limit=1)
    return json_response({"status": "ready"})


# -- the table: routes and OpenAPI paths ------------------------------------------------------

EXAMPLE_ID = "order_1"
"""The workflow id the document's examples use."""
ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": m.ID_PATTERN, "maxLength": 200},
    "example": EXAMPLE_ID,
}
_PATH_PARAMS = {
    "id": ID_PARAM,
    "event": {
        "name": "event",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
}
_LOCATION = {"Location": {"schema": {"type": "string"}, "description": "the workflow's URL"}}
_COMMON = (400, 401, 503)
_ON_ONE = (*_COMMON, 404)
_COMMAND = (*_ON_ONE, 409)
_WITH_BODY = (*_COMMAND, 413, 415)
_LIST_QUERY = (
    query(
        "status",
        {"type": "array", "items": {"type": "string", "enum": [s.value for s in WorkflowStatus]}},
        "keep these statuses (repeat the parameter)",
        style="form",
        explode=True,
    ),
    query("name", {"type": "string"}, "workflow name"),
    query("created_after", {"type": "string"}, "ISO-8601 time or epoch seconds (inclusive)"),
    query("created_before", {"type": "string"}, "ISO-8601 time or epoch seconds (exclusive)"),
    query("id_prefix", {"type": "string"}, "ids starting with this"),
    query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT, "default": 100},
        "page size",
    ),
    query("cursor", {"type": "string"}, "next_cursor of the previous page"),
)


def _on_one(
    method: str,
    suffix: str,
    handler: Handler,
    summary: str,
    replies: dict[int, Reply],
    errors: tuple[int, ...] = _ON_ONE,
    **kw: Any,
) -> Operation:
    """An operation on one workflow (``/v1/workflows/{id}`` and below)."""
    path = f"/v1/workflows/{{id}}{suffix}"
    return Operation(method, path, handler, summary, replies, errors, _PATH_PARAMS, **kw)


def _command_op(verb: str, handler: Handler, body: Body | None = None) -> Operation:
    reply = Reply(m.CommandResult, "The command was applied; the status after it")
    errors = _COMMAND if body is None else _WITH_BODY
    return _on_one("POST", f"/{verb}", handler, verb.capitalize(), {202: reply}, errors, body=body)


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/healthz", healthz, "Liveness", {200: Reply(m.Status, "Alive")}, auth=False),
    Operation(
        "GET",
        "/readyz",
        readyz,
        "Readiness",
        {200: Reply(m.Status, "The database answers")},
        (401, 503),
    ),
    Operation(
        "POST",
        "/v1/workflows",
        start_workflow,
        "Start a workflow",
        {
            202: Reply(m.Workflow, "Started", _LOCATION),
            200: Reply(m.Workflow, "A workflow with this id exists", _LOCATION),
        },
        _WITH_BODY,
        body=Body(m.StartRequest),
    ),
    Operation(
        "GET",
        "/v1/workflows",
        list_workflows,
        "List workflows",
        {200: Reply(m.WorkflowList, "One page")},
        _COMMON,
        params=_LIST_QUERY,
    ),
    _on_one("GET", "", get_workflow, "Get a workflow", {200: Reply(m.Workflow, "The workflow")}),
    _on_one("DELETE", "", purge, "Purge a workflow", {204: Reply(None, "Deleted")}, _COMMAND),
    _on_one(
        "GET",
        "/result",
        get_result,
        "Get a workflow's result",
        {
            200: Reply(m.Result, "Finished: output and error"),
            202: Reply(
                m.Result,
                "Not finished yet: poll again",
                {**_LOCATION, "Retry-After": {"schema": {"type": "string"}}},
            ),
        },
        params=(
            query(
                "wait",
                {"type": "number", "minimum": 0, "maximum": int(MAX_WAIT_SECONDS)},
                "seconds to wait for the end",
            ),
        ),
    ),
    _on_one(
        "GET",
        "/history",
        get_history,
        "Get a workflow's history",
        {200: Reply(m.History, "The journal")},
    ),
    _on_one(
        "GET",
        "/state",
        get_state,
        "Get a workflow's published state",
        {200: Reply(m.State, "Published state")},
    ),
    _on_one(
        "GET",
        "/runs",
        get_runs,
        "List a workflow's earlier runs (each ended with continue_as_new)",
        {200: Reply(m.Runs, "Earlier runs, oldest first")},
    ),
    _on_one(
        "GET",
        "/children",
        get_children,
        "List a workflow's children",
        {200: Reply(m.Children, "Child workflows")},
    ),
    _on_one(
        "POST",
        "/events/{event}",
        send_event,
        "Send an event",
        {202: Reply(m.Delivered, "Sent (delivered false: a duplicate)")},
        _WITH_BODY,
        body=Body(m.EventRequest, required=False),
    ),
    _command_op("cancel", cancel),
    _command_op("terminate", terminate, body=Body(m.TerminateRequest, required=False)),
    _command_op("suspend", suspend),
    _command_op("resume", resume),
    _command_op("retry", retry),
    _on_one(
        "POST",
        "/fork",
        fork,
        "Fork",
        {201: Reply(m.Workflow, "The new workflow", _LOCATION)},
        _WITH_BODY,
        body=Body(m.ForkRequest),
    ),
    Operation(
        "GET",
        "/v1/workers",
        list_workers,
        "List workers",
        {200: Reply(m.Workers, "Worker processes")},
        _COMMON,
        params=(query("include_stale", {"type": "boolean"}, "also workers that stopped beating"),),
    ),
    Operation(
        "GET",
        "/v1/versions",
        list_versions,
        "Count unfinished workflows per version",
        {200: Reply(m.Versions, "Unfinished workflows per version")},
        _COMMON,
    ),
)
"""The native API's operations (the Dapr routes' are :data:`durably.server.dapr.OPERATIONS`)."""
