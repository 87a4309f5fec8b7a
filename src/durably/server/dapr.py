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

from durably import limits
from durably.errors import SerializationError, UnknownWorkflowError
from durably.storage.base import TERMINAL_STATUSES, WorkflowStatus

from . import models as m
from .endpoint import Call, Handler, ServedApp, json_response
from .errors import ApiError, known
from .inputs import is_json_type, parse_json
from .operation import Body, Operation, Reply
from .routes import EXAMPLE_ID, unknown_name
from .views import iso, to_json

__all__ = ["DAPR_ID_PATTERN", "DAPR_STATUS", "OPERATIONS", "PREFIXES"]

PREFIXES = ("/v1.0/workflows", "/v1.0-beta1/workflows")
DAPR_ID_PATTERN = "^[A-Za-z0-9_-]+$"
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
    wid = _dapr_id(call.param("id"))
    with known(wid, dapr=True):
        info = call.app.handle(wid).info()
    properties: dict[str, str] = {}
    call_input = _single_input(to_json(info.input))
    if call_input is not None:
        properties["dapr.workflow.input"] = json.dumps(call_input)
    if info.output_preview is not None:  # an output was stored (null too)
        properties["dapr.workflow.output"] = json.dumps(
            to_json(info.output), ensure_ascii=False, separators=_COMPACT
        )
    error = info.error
    if isinstance(error, dict):
        properties["dapr.workflow.failure.error_type"] = str(error.get("type", ""))
        properties["dapr.workflow.failure.error_message"] = str(error.get("message", ""))
        if error.get("traceback"):
            properties["dapr.workflow.failure.stack_trace"] = str(error["traceback"])
    return json_response(
        {
            "instanceID": info.id,
            "workflowName": info.name,
            "createdAt": iso(info.created_at),
            "lastUpdatedAt": iso(info.updated_at),
            "runtimeStatus": DAPR_STATUS.get(info.status, "RUNNING"),
            "properties": properties,
        }
    )


def _target(call: Call) -> tuple[ServedApp, str, WorkflowStatus]:
    """The App, the instance's id and its status (404 if there is none)."""
    _component(call)
    wid = _dapr_id(call.param("id"))
    with known(wid, dapr=True):
        return call.app, wid, call.app.handle(wid).status()


def terminate(call: Call) -> Response:
    """POST .../{instanceID}/terminate: stop it now (a finished one is left as it is)."""
    app, wid, status = _target(call)
    if status not in TERMINAL_STATUSES:
        app.terminate(wid, "terminated through the Dapr workflow API")
    return _accepted()


def raise_event(call: Call) -> Response:
    """POST .../{instanceID}/raiseEvent/{eventName}: the body is the event's payload."""
    app, wid, _ = _target(call)
    event = limits.check_event_name(call.param("event"))
    _, value = _payload(call)
    app.send_event(wid, event, app.codec.from_json(value))
    return _accepted()


def pause(call: Call) -> Response:
    """POST .../{instanceID}/pause."""
    app, wid, _ = _target(call)
    app.suspend(wid)
    return _accepted()


def resume(call: Call) -> Response:
    """POST .../{instanceID}/resume (a running one is left as it is)."""
    app, wid, status = _target(call)
    if status in TERMINAL_STATUSES:
        raise ApiError("conflict", f"cannot resume workflow {wid!r}: it is {status.value}")
    if status is WorkflowStatus.SUSPENDED:
        app.resume(wid)
    return _accepted()


def purge(call: Call) -> Response:
    """POST .../{instanceID}/purge: delete a finished instance and its history."""
    app, wid, _ = _target(call)
    app.purge(wid)
    return _accepted()


# -- the table: routes and OpenAPI paths, under both API versions -----------------------------

_ID_SCHEMA = {"type": "string", "pattern": DAPR_ID_PATTERN, "maxLength": 200}
_PATH_PARAMS = {
    "component": {"name": "component", "in": "path", "required": True, "schema": _ID_SCHEMA},
    "name": {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "example": "greet",
    },
    "id": {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": _ID_SCHEMA,
        "example": EXAMPLE_ID,
    },
    "event": {
        "name": "event",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "maxLength": 200},
    },
}
_ERRORS = (400, 401, 404, 409, 503)
_ANY_BODY = Body({"nullable": True, "description": "any JSON value"}, required=False)
_ACCEPTED = {202: Reply(None, "Accepted")}


def _operations(prefix: str) -> list[Operation]:
    version = prefix.rsplit("/", 2)[-2]

    def op(
        method: str, path: str, handler: Handler, summary: str, replies: dict[int, Reply],
        errors: tuple[int, ...] = _ERRORS, **kw: Any,
    ) -> Operation:  # fmt: skip
        return Operation(
            method, f"{prefix}/{{component}}{path}", handler, f"Dapr {version} {summary}",
            replies, errors, _PATH_PARAMS, dapr=True, **kw,
        )  # fmt: skip

    instance_id = {"name": "instanceID", "in": "query", "required": False, "schema": _ID_SCHEMA}
    commands = {"terminate": terminate, "pause": pause, "resume": resume, "purge": purge}
    return [
        op(
            "POST",
            "/{name}/start",
            start,
            "start workflow",
            {202: Reply(m.DaprStarted, "Started")},
            (*_ERRORS, 413),
            params=(instance_id,),
            body=_ANY_BODY,
        ),
        op("GET", "/{id}", get, "get workflow", {200: Reply(m.DaprWorkflow, "The instance")}),
        op(
            "POST",
            "/{id}/raiseEvent/{event}",
            raise_event,
            "raise event",
            _ACCEPTED,
            (*_ERRORS, 413),
            body=_ANY_BODY,
        ),
        *(
            op("POST", f"/{{id}}/{verb}", handler, f"{verb} workflow", _ACCEPTED)
            for verb, handler in commands.items()
        ),
    ]


OPERATIONS: tuple[Operation, ...] = tuple(op for prefix in PREFIXES for op in _operations(prefix))
"""The Dapr routes' operations, under both API versions."""
