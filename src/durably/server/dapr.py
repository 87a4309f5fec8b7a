"""Dapr's workflow HTTP API, so clients written for Dapr work unchanged.

Served under ``/v1.0/workflows/{component}/...`` and ``/v1.0-beta1/workflows/{component}/...``
(any component name; Dapr clients use ``dapr``): start, get, terminate, raiseEvent, pause, resume
and purge. Instance ids there are letters, digits, ``_`` and ``-``, as in Dapr.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from durably import limits
from durably.app import App
from durably.errors import SerializationError, UnknownWorkflowError
from durably.storage.base import TERMINAL_STATUSES, WorkflowRecord, WorkflowStatus

from .endpoint import Call, endpoint, json_response
from .errors import ApiError
from .inputs import is_json_type, parse_json
from .routes import unknown_name
from .views import iso, stored, to_json

__all__ = ["DAPR_STATUS", "routes"]

PREFIXES = ("/v1.0/workflows", "/v1.0-beta1/workflows")
_DAPR_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")

DAPR_STATUS = {
    WorkflowStatus.PENDING: "PENDING",
    WorkflowStatus.RUNNING: "RUNNING",
    WorkflowStatus.COMPLETED: "COMPLETED",
    WorkflowStatus.FAILED: "FAILED",
    WorkflowStatus.NEEDS_ATTENTION: "FAILED",
    WorkflowStatus.CANCELLED: "CANCELED",
    WorkflowStatus.TERMINATED: "TERMINATED",
    WorkflowStatus.SUSPENDED: "SUSPENDED",
    WorkflowStatus.CONTINUED_AS_NEW: "CONTINUED_AS_NEW",
}
"""durably's statuses as Dapr's ``runtimeStatus`` (needs_attention is FAILED there)."""


def _dapr_id(value: str, what: str = "instance ID") -> str:
    if not _DAPR_ID.fullmatch(value):
        raise ApiError(
            "bad_request",
            f"invalid {what} {value[:80]!r}: use 1 to 200 letters, digits, '_' and '-'",
        )
    return value


def _component(call: Call) -> None:
    _dapr_id(call.param("component"), "workflow component name")


def _payload(call: Call) -> tuple[bool, Any]:
    """The body as a value: (False, None) when empty; JSON when it parses (or must: JSON or no
    Content-Type), else the text itself, as Dapr passes content as-is."""
    if not call.body.strip():
        return False, None
    content_type = call.request.headers.get("content-type")
    if content_type is None or is_json_type(content_type):
        return True, parse_json(call.body)
    try:
        text = call.body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("bad_request", "the body is neither JSON nor UTF-8 text") from None
    try:
        return True, limits.loads(text, "the body", extra=0)
    except ValueError:  # not JSON: the text itself
        return True, text
    except SerializationError as exc:
        raise ApiError("bad_request", exc.message) from None


def _record(app: App, wid: str) -> WorkflowRecord:
    rec = app.store.get_workflow(wid)
    if rec is None:
        raise ApiError("not_found", f"no workflow instance with ID {wid!r}")
    return rec


def _accepted() -> Response:
    return Response(status_code=202)


def start(call: Call) -> Response:
    """POST .../{component}/{name}/start[?instanceID=ID]: the body is the single input."""
    _component(call)
    name = call.param("name")
    instance = call.request.query_params.get("instanceID")
    app = call.app
    if instance is not None:
        _dapr_id(instance)
    given, value = _payload(call)
    args = (app.codec.from_json(value),) if given else ()
    try:
        handle, created = app.start_named(name, args, id=instance)
    except UnknownWorkflowError:
        raise unknown_name(name) from None
    if not created:  # the id exists (a concurrent start may have just created it)
        raise ApiError("conflict", f"a workflow instance with ID {instance!r} already exists")
    return json_response({"instanceID": handle.id}, 202)


_COMPACT = (",", ":")


def _single_input(call_input: Any) -> Any:
    """The input as Dapr shows it: the one positional argument a Dapr start passes, else the
    whole ``{"args", "kwargs"}`` call."""
    if isinstance(call_input, dict) and not call_input.get("kwargs"):
        args = call_input.get("args")
        if isinstance(args, list) and len(args) <= 1:
            return args[0] if args else None
    return call_input


def get(call: Call) -> Response:
    """GET .../{component}/{instanceID}: status, times and properties (input, output,
    failure details), each property a JSON string as in Dapr."""
    _component(call)
    rec = _record(call.app, _dapr_id(call.param("id")))
    properties: dict[str, str] = {}
    codec = call.app.codec
    call_input = _single_input(to_json(codec.view_input(rec.input)))
    if call_input is not None:
        properties["dapr.workflow.input"] = json.dumps(call_input)
    if rec.output is not None:
        output = stored(codec, rec.output)
        properties["dapr.workflow.output"] = json.dumps(
            output, ensure_ascii=False, separators=_COMPACT
        )
    error = None if rec.error is None else codec.view_error(rec.error)
    if isinstance(error, dict):
        properties["dapr.workflow.failure.error_type"] = str(error.get("type", ""))
        properties["dapr.workflow.failure.error_message"] = str(error.get("message", ""))
        if error.get("traceback"):
            properties["dapr.workflow.failure.stack_trace"] = str(error["traceback"])
    return json_response(
        {
            "instanceID": rec.id,
            "workflowName": rec.name,
            "createdAt": iso(rec.created_at),
            "lastUpdatedAt": iso(rec.updated_at),
            "runtimeStatus": DAPR_STATUS.get(rec.status, "RUNNING"),
            "properties": properties,
        }
    )


def _target(call: Call) -> tuple[App, WorkflowRecord]:
    _component(call)
    return call.app, _record(call.app, _dapr_id(call.param("id")))


def terminate(call: Call) -> Response:
    """POST .../{instanceID}/terminate: stop it now (a finished one is left as it is)."""
    app, rec = _target(call)
    if rec.status not in TERMINAL_STATUSES:
        app.terminate(rec.id, "terminated through the Dapr workflow API")
    return _accepted()


def raise_event(call: Call) -> Response:
    """POST .../{instanceID}/raiseEvent/{eventName}: the body is the event's payload."""
    app, rec = _target(call)
    event = limits.check_event_name(call.param("event"))
    _, value = _payload(call)
    app.send_event(rec.id, event, app.codec.from_json(value))
    return _accepted()


def pause(call: Call) -> Response:
    """POST .../{instanceID}/pause."""
    app, rec = _target(call)
    app.suspend(rec.id)
    return _accepted()


def resume(call: Call) -> Response:
    """POST .../{instanceID}/resume (a running one is left as it is)."""
    app, rec = _target(call)
    if rec.status in TERMINAL_STATUSES:
        raise ApiError("conflict", f"cannot resume workflow {rec.id!r}: it is {rec.status.value}")
    if rec.status is WorkflowStatus.SUSPENDED:
        app.resume(rec.id)
    return _accepted()


def purge(call: Call) -> Response:
    """POST .../{instanceID}/purge: delete a finished instance and its history."""
    app, rec = _target(call)
    app.purge(rec.id)
    return _accepted()


def routes() -> list[BaseRoute]:
    """The Dapr routes, under both API versions."""
    table: list[BaseRoute] = []
    for prefix in PREFIXES:
        base = f"{prefix}/{{component}}"
        table += [
            Route(f"{base}/{{name}}/start", endpoint(start, dapr=True), methods=["POST"]),
            Route(f"{base}/{{id}}", endpoint(get, dapr=True), methods=["GET"]),
            Route(f"{base}/{{id}}/terminate", endpoint(terminate, dapr=True), methods=["POST"]),
            Route(
                f"{base}/{{id}}/raiseEvent/{{event}}",
                endpoint(raise_event, dapr=True),
                methods=["POST"],
            ),
            Route(f"{base}/{{id}}/pause", endpoint(pause, dapr=True), methods=["POST"]),
            Route(f"{base}/{{id}}/resume", endpoint(resume, dapr=True), methods=["POST"]),
            Route(f"{base}/{{id}}/purge", endpoint(purge, dapr=True), methods=["POST"]),
        ]
    return table
