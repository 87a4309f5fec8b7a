"""The native JSON API under ``/v1`` (see the README's "HTTP API" section and /openapi.json)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from durably import limits
from durably.app import App
from durably.errors import ConfigurationError, UnknownWorkflowError
from durably.handle import WorkflowInfo, status_filter
from durably.limits import check_event
from durably.queues import DEFAULT_QUEUE
from durably.storage.base import TERMINAL_STATUSES, WorkflowRecord

from .endpoint import Call, by_method, endpoint, json_response
from .errors import ApiError, from_exception
from .inputs import decode_cursor, encode_cursor, model_body, only_fields, parse_time, workflow_id
from .models import EventRequest, ForkRequest, StartRequest, TerminateRequest
from .views import history_json, result_json, run_json, stored, worker_json, workflow_json

__all__ = ["MAX_LIST_LIMIT", "MAX_WAIT_SECONDS", "routes"]

MAX_LIST_LIMIT = 1000
MAX_WAIT_SECONDS = 60.0
_LIST_PARAMS = ("status", "name", "created_after", "created_before", "id_prefix", "limit", "cursor")


def _record(app: App, wid: str) -> WorkflowRecord:
    rec = app.store.get_workflow(wid)
    if rec is None:
        raise ApiError(
            "not_found", f"no workflow with id {wid!r}; check the id (GET /v1/workflows lists them)"
        )
    return rec


def _info(app: App, wid: str) -> dict[str, Any]:
    rec = _record(app, wid)
    info = WorkflowInfo.from_codec(rec, app.codec, unserved=app.unserved_filter()(rec))
    return workflow_json(info)


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
    req = model_body(call.json(allow_empty=False), StartRequest)
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
    return json_response(_info(app, handle.id), 202 if created else 200, _location(handle.id))


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
    app = call.app
    records = app.store.list_workflows(
        statuses=statuses,
        name=query.get("name"),
        limit=limit + 1,
        created_after=None if after is None else parse_time(after, "created_after"),
        created_before=None if before_time is None else parse_time(before_time, "created_before"),
        id_prefix=query.get("id_prefix") or None,
        before=None if cursor is None else decode_cursor(cursor),
    )
    page, more = records[:limit], len(records) > limit
    unserved = app.unserved_filter()
    infos = [WorkflowInfo.summary_of(r, unserved=unserved(r)) for r in page]  # no payloads
    last = page[-1] if more else None
    return json_response(
        {
            "workflows": [workflow_json(i) for i in infos],
            "next_cursor": None if last is None else encode_cursor(last.created_at, last.id),
        }
    )


def get_workflow(call: Call) -> Response:
    """GET /v1/workflows/{id}: one workflow."""
    return json_response(_info(call.app, workflow_id(call.param("id"))))


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


async def get_result(request: Request) -> Response:
    """GET /v1/workflows/{id}/result[?wait=S]: the outcome (200) or 'not yet' (202), waiting
    up to ``wait`` seconds for the workflow to end."""
    try:
        wid = workflow_id(request.path_params["id"])
        wait = _wait_param(request)
        app: App = request.app.state.durably
        deadline = time.monotonic() + wait
        delay = 0.02
        while True:
            rec = await run_in_threadpool(_record, app, wid)
            remaining = deadline - time.monotonic()
            if rec.status in TERMINAL_STATUSES or remaining <= 0:
                break
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
        body = result_json(rec, app.codec)
        if body["done"]:
            return json_response(body)
        location = f"/v1/workflows/{wid}/result"
        return json_response(body, 202, {"Retry-After": "1", "Location": location})
    except Exception as exc:
        return from_exception(exc, request.app.state.durably.database_url).response()


def get_history(call: Call) -> Response:
    """GET /v1/workflows/{id}/history: the journal with failed attempts."""
    app = call.app
    entries = app.handle(workflow_id(call.param("id"))).history()
    return json_response({"entries": [history_json(e) for e in entries]})


def get_state(call: Call) -> Response:
    """GET /v1/workflows/{id}/state: what the workflow published with ``set_state``."""
    wid = workflow_id(call.param("id"))
    _record(call.app, wid)
    state = call.app.store.get_state(wid)
    return json_response({"state": {k: stored(call.app.codec, v) for k, v in state.items()}})


def get_runs(call: Call) -> Response:
    """GET /v1/workflows/{id}/runs: the earlier runs of a workflow that continued as new."""
    app = call.app
    runs = app.handle(workflow_id(call.param("id"))).runs()
    return json_response({"runs": [run_json(r) for r in runs]})


def get_children(call: Call) -> Response:
    """GET /v1/workflows/{id}/children: the child workflows, oldest first."""
    app = call.app
    handle = app.handle(workflow_id(call.param("id")))
    _record(app, handle.id)
    children = [workflow_json(i) for i in handle.children()]
    return json_response({"workflows": children})


def send_event(call: Call) -> Response:
    """POST /v1/workflows/{id}/events/{event}: deliver an event (``data``, ``dedup_key``)."""
    wid = workflow_id(call.param("id"))
    event = call.param("event")
    req = model_body(call.json(), EventRequest)
    data, dedup_key = req.data, req.dedup_key
    check_event(event, dedup_key)
    _record(call.app, wid)
    data = call.app.codec.from_json(data)
    delivered = call.app.send_event(wid, event, data, dedup_key=dedup_key)
    return json_response({"delivered": delivered}, 202)


def _command(call: Call, command: str) -> Response:
    wid = workflow_id(call.param("id"))
    app = call.app
    if command == "terminate":
        reason = model_body(call.json(), TerminateRequest).reason
        app.terminate(wid, reason or "terminated")
    else:
        if call.body.strip():
            only_fields(call.json(), ())
        getattr(app, command)(wid)
    return json_response({"id": wid, "status": _record(app, wid).status.value}, 202)


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
    req = model_body(call.json(allow_empty=False), ForkRequest)
    from_step, new_id = req.from_step, req.new_id
    handle = call.app.fork(wid, from_step=from_step, new_id=new_id)
    return json_response(_info(call.app, handle.id), 201, _location(handle.id))


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


async def healthz(request: Request) -> Response:
    """GET /healthz: the process answers (no database access, no auth)."""
    return json_response({"status": "ok"})


def readyz(call: Call) -> Response:
    """GET /readyz: ready when the database answers (503 otherwise)."""
    call.app.store.get_workflow("readyz-probe")
    return json_response({"status": "ready"})


def routes() -> list[BaseRoute]:
    """The native API's routes."""
    wf = "/v1/workflows/{id}"
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", endpoint(readyz), methods=["GET"]),
        Route(
            "/v1/workflows",
            by_method({"POST": endpoint(start_workflow), "GET": endpoint(list_workflows)}),
            methods=["GET", "POST"],
        ),
        Route(
            wf,
            by_method({"GET": endpoint(get_workflow), "DELETE": endpoint(purge)}),
            methods=["GET", "DELETE"],
        ),
        Route(f"{wf}/result", get_result, methods=["GET"]),
        Route(f"{wf}/history", endpoint(get_history), methods=["GET"]),
        Route(f"{wf}/state", endpoint(get_state), methods=["GET"]),
        Route(f"{wf}/runs", endpoint(get_runs), methods=["GET"]),
        Route(f"{wf}/children", endpoint(get_children), methods=["GET"]),
        Route(f"{wf}/events/{{event}}", endpoint(send_event), methods=["POST"]),
        Route(f"{wf}/cancel", endpoint(cancel), methods=["POST"]),
        Route(f"{wf}/terminate", endpoint(terminate), methods=["POST"]),
        Route(f"{wf}/suspend", endpoint(suspend), methods=["POST"]),
        Route(f"{wf}/resume", endpoint(resume), methods=["POST"]),
        Route(f"{wf}/retry", endpoint(retry), methods=["POST"]),
        Route(f"{wf}/fork", endpoint(fork), methods=["POST"]),
        Route("/v1/workers", endpoint(list_workers), methods=["GET"]),
    ]
