"""The OpenAPI 3.0 document of the HTTP API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi"]

Schema = dict[str, Any]

ID_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_.:@=+-]*$"
DAPR_ID_PATTERN = "^[A-Za-z0-9_-]+$"
STATUSES = [
    "pending",
    "running",
    "completed",
    "failed",
    "cancelled",
    "terminated",
    "needs_attention",
    "suspended",
    "continued_as_new",
]
DAPR_STATUSES = [
    "RUNNING",
    "COMPLETED",
    "CONTINUED_AS_NEW",
    "FAILED",
    "CANCELED",
    "TERMINATED",
    "PENDING",
    "SUSPENDED",
]

ANY: Schema = {"nullable": True, "description": "any JSON value"}
TIME: Schema = {"type": "string", "format": "date-time"}
NULL_TIME: Schema = {**TIME, "nullable": True}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(props: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        **extra,
    }


_PREVIEW: Schema = {
    "type": "string",
    "nullable": True,
    "maxLength": 200,
    "description": "the start of the stored JSON text, ending in '…' when cut",
}
_SUMMARY: dict[str, Schema] = {
    "summary": {
        "type": "boolean",
        "description": "true on a listed workflow: input, output and error left out",
    },
    "input_preview": _PREVIEW,
    "output_preview": _PREVIEW,
    "error_preview": _PREVIEW,
    "created_at": TIME,
    "created_at_epoch": {
        "type": "number",
        "description": "the exact stored creation time in epoch seconds "
        "(created_at is it rounded to the microsecond)",
    },
    "updated_at": TIME,
    "started_at": NULL_TIME,
    "finished_at": NULL_TIME,
    "owner": {"type": "string", "nullable": True},
    "epoch": {"type": "integer"},
    "queue": {"type": "string"},
    "priority": {"type": "integer"},
    "parent_id": {"type": "string", "nullable": True},
    "run": {"type": "integer"},
    "wake_at": NULL_TIME,
    "unserved": {"type": "boolean"},
}
"""The fields of a workflow object but its payloads (a summary has these only)."""


SCHEMAS: dict[str, Schema] = {
    "ErrorDetail": _object({"code": {"type": "string"}, "message": {"type": "string"}}),
    "Error": _object({"error": _ref("ErrorDetail")}),
    "DaprError": _object(
        {
            "errorCode": {"type": "string"},
            "message": {"type": "string"},
            "error": _ref("ErrorDetail"),
        },
        ["errorCode", "message"],
    ),
    "Workflow": _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES},
            "input": ANY,
            "output": ANY,
            "error": {"type": "object", "nullable": True},
            **_SUMMARY,
        }
    ),
    "WorkflowSummary": _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES},
            **_SUMMARY,
        },
        description="A listed workflow: previews of its payloads, not the payloads (GET "
        "/v1/workflows/{id} has them)",
    ),
    "WorkflowList": _object(
        {
            "workflows": {"type": "array", "items": _ref("WorkflowSummary")},
            "next_cursor": {"type": "string", "nullable": True},
        }
    ),
    "Children": _object({"workflows": {"type": "array", "items": _ref("Workflow")}}),
    "Result": _object(
        {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES},
            "done": {"type": "boolean"},
            "output": ANY,
            "error": {"type": "object", "nullable": True},
        },
        ["id", "status", "done"],
    ),
    "HistoryEntry": _object(
        {
            "seq": {"type": "integer"},
            "kind": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string"},
            "result": ANY,
            "error": {"type": "object", "nullable": True},
            "attempts": {"type": "integer"},
            "started_at": TIME,
            "finished_at": TIME,
            "owner": {"type": "string"},
            "epoch": {"type": "integer"},
            "failed_attempts": {"type": "array", "items": {"type": "object"}},
        }
    ),
    "History": _object({"entries": {"type": "array", "items": _ref("HistoryEntry")}}),
    "Run": _object(
        {
            "run": {"type": "integer"},
            "status": {"type": "string", "enum": STATUSES},
            "input": ANY,
            "output": ANY,
            "started_at": {**TIME, "nullable": True},
            "finished_at": TIME,
        },
        ["run", "status", "finished_at"],
    ),
    "Runs": _object({"runs": {"type": "array", "items": _ref("Run")}}),
    "State": _object({"state": {"type": "object", "additionalProperties": ANY}}),
    "CommandResult": _object(
        {"id": {"type": "string"}, "status": {"type": "string", "enum": STATUSES}}
    ),
    "Delivered": _object({"delivered": {"type": "boolean"}}),
    "Worker": _object(
        {
            "id": {"type": "string"},
            "hostname": {"type": "string"},
            "pid": {"type": "integer"},
            "started_at": TIME,
            "heartbeat_at": TIME,
            "workflows": {"type": "array", "items": {"type": "string"}},
            "queues": {"type": "array", "items": {"type": "string"}},
        }
    ),
    "Workers": _object({"workers": {"type": "array", "items": _ref("Worker")}}),
    "Status": _object({"status": {"type": "string"}}),
    "StartRequest": _object(
        {
            "name": {
                "type": "string",
                "minLength": 1,
                "description": "registered workflow name",
                "example": "greet",
            },
            "args": {"type": "array", "items": ANY, "default": []},
            "kwargs": {"type": "object", "additionalProperties": ANY, "default": {}},
            "id": {"type": "string", "nullable": True, "pattern": ID_PATTERN, "maxLength": 200},
            "queue": {"type": "string", "nullable": True, "description": "queue name"},
            "priority": {
                "type": "integer",
                "minimum": -(2**31),
                "maximum": 2**31 - 1,
                "default": 0,
            },
        },
        ["name"],
        additionalProperties=False,
    ),
    "EventRequest": _object(
        {"data": ANY, "dedup_key": {"type": "string", "nullable": True, "minLength": 1}},
        [],
        additionalProperties=False,
    ),
    "TerminateRequest": _object({"reason": {"type": "string"}}, [], additionalProperties=False),
    "ForkRequest": _object(
        {
            "from_step": {"type": "integer", "minimum": 0},
            "new_id": {
                "type": "string",
                "nullable": True,
                "pattern": ID_PATTERN,
                "maxLength": 200,
            },
        },
        ["from_step"],
        additionalProperties=False,
    ),
    "DaprStarted": _object({"instanceID": {"type": "string"}}),
    "DaprWorkflow": _object(
        {
            "instanceID": {"type": "string"},
            "workflowName": {"type": "string"},
            "createdAt": TIME,
            "lastUpdatedAt": TIME,
            "runtimeStatus": {"type": "string", "enum": DAPR_STATUSES},
            "properties": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    ),
}

_ERRORS = {
    400: "Bad request: malformed JSON, a wrong type, a bad id or filter",
    401: "Missing or wrong bearer token",
    404: "No such workflow (or workflow name no worker registered)",
    409: "The command does not apply in the workflow's status, or the id is taken (by a "
    "workflow of another name, for a start)",
    413: "Request body or payload too large",
    415: "The body is not JSON",
    503: "The database is unavailable",
}


def _json(schema: Schema, description: str, headers: dict[str, Any] | None = None) -> Schema:
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _errors(codes: list[int], dapr: bool = False) -> dict[str, Schema]:
    schema = _ref("DaprError") if dapr else _ref("Error")
    return {str(c): _json(schema, _ERRORS[c]) for c in codes}


def _body(schema: Schema, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_LOCATION = {"Location": {"schema": {"type": "string"}, "description": "the workflow's URL"}}
EXAMPLE_ID = "order_1"
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": ID_PATTERN, "maxLength": 200},
    "example": EXAMPLE_ID,
}
_COMMON = [400, 401, 503]


def _op(
    summary: str,
    ok: dict[str, Schema],
    errors: list[int],
    *,
    params: list[Schema] | None = None,
    body: Schema | None = None,
    auth: bool = True,
    dapr: bool = False,
) -> Schema:
    op: Schema = {
        "summary": summary,
        "operationId": _operation_id(summary),
        "responses": {**ok, **_errors(errors, dapr)},
    }
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    if not auth:
        op["security"] = []
    return op


_seen: dict[str, int] = {}


def _operation_id(summary: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in summary).split()
    base = words[0].lower() + "".join(w.capitalize() for w in words[1:])
    _seen[base] = _seen.get(base, 0) + 1
    return base if _seen[base] == 1 else f"{base}{_seen[base]}"


def _query(name: str, schema: Schema, description: str, **extra: Any) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
        **extra,
    }


def _native() -> dict[str, Schema]:
    wf = "/v1/workflows/{id}"
    command = _json(_ref("CommandResult"), "The command was applied; the status after it")
    cmd_errors = [*_COMMON, 404, 409]
    list_params = [
        _query(
            "status",
            {"type": "array", "items": {"type": "string", "enum": STATUSES}},
            "keep these statuses (repeat the parameter)",
            style="form",
            explode=True,
        ),
        _query("name", {"type": "string"}, "workflow name"),
        _query("created_after", {"type": "string"}, "ISO-8601 time or epoch seconds (inclusive)"),
        _query("created_before", {"type": "string"}, "ISO-8601 time or epoch seconds (exclusive)"),
        _query("id_prefix", {"type": "string"}, "ids starting with this"),
        _query(
            "limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "page size"
        ),
        _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
    ]
    return {
        "/healthz": {
            "get": _op("Liveness", {"200": _json(_ref("Status"), "Alive")}, [], auth=False)
        },
        "/readyz": {
            "get": _op(
                "Readiness", {"200": _json(_ref("Status"), "The database answers")}, [401, 503]
            )
        },
        "/v1/workflows": {
            "post": _op(
                "Start a workflow",
                {
                    "202": _json(_ref("Workflow"), "Started", _LOCATION),
                    "200": _json(_ref("Workflow"), "A workflow with this id exists", _LOCATION),
                },
                [*_COMMON, 404, 409, 413, 415],
                body=_body(_ref("StartRequest")),
            ),
            "get": _op(
                "List workflows",
                {"200": _json(_ref("WorkflowList"), "One page")},
                _COMMON,
                params=list_params,
            ),
        },
        wf: {
            "get": _op(
                "Get a workflow",
                {"200": _json(_ref("Workflow"), "The workflow")},
                [*_COMMON, 404],
                params=[_ID],
            ),
            "delete": _op(
                "Purge a workflow",
                {"204": {"description": "Deleted"}},
                [*_COMMON, 404, 409],
                params=[_ID],
            ),
        },
        f"{wf}/result": {
            "get": _op(
                "Get a workflow's result",
                {
                    "200": _json(_ref("Result"), "Finished: output and error"),
                    "202": _json(
                        _ref("Result"),
                        "Not finished yet: poll again",
                        {**_LOCATION, "Retry-After": {"schema": {"type": "string"}}},
                    ),
                },
                [*_COMMON, 404],
                params=[
                    _ID,
                    _query(
                        "wait",
                        {"type": "number", "minimum": 0, "maximum": 60},
                        "seconds to wait for the end",
                    ),
                ],
            )
        },
        f"{wf}/history": {
            "get": _op(
                "Get a workflow's history",
                {"200": _json(_ref("History"), "The journal")},
                [*_COMMON, 404],
                params=[_ID],
            )
        },
        f"{wf}/state": {
            "get": _op(
                "Get a workflow's published state",
                {"200": _json(_ref("State"), "Published state")},
                [*_COMMON, 404],
                params=[_ID],
            )
        },
        f"{wf}/runs": {
            "get": _op(
                "List a workflow's earlier runs (each ended with continue_as_new)",
                {"200": _json(_ref("Runs"), "Earlier runs, oldest first")},
                [*_COMMON, 404],
                params=[_ID],
            )
        },
        f"{wf}/children": {
            "get": _op(
                "List a workflow's children",
                {"200": _json(_ref("Children"), "Child workflows")},
                [*_COMMON, 404],
                params=[_ID],
            )
        },
        f"{wf}/events/{{event}}": {
            "post": _op(
                "Send an event",
                {"202": _json(_ref("Delivered"), "Sent (delivered false: a duplicate)")},
                [*cmd_errors, 413, 415],
                params=[
                    _ID,
                    {
                        "name": "event",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                ],
                body=_body(_ref("EventRequest"), required=False),
            )
        },
        f"{wf}/cancel": {"post": _op("Cancel", {"202": command}, cmd_errors, params=[_ID])},
        f"{wf}/terminate": {
            "post": _op(
                "Terminate",
                {"202": command},
                [*cmd_errors, 413, 415],
                params=[_ID],
                body=_body(_ref("TerminateRequest"), required=False),
            )
        },
        f"{wf}/suspend": {"post": _op("Suspend", {"202": command}, cmd_errors, params=[_ID])},
        f"{wf}/resume": {"post": _op("Resume", {"202": command}, cmd_errors, params=[_ID])},
        f"{wf}/retry": {"post": _op("Retry", {"202": command}, cmd_errors, params=[_ID])},
        f"{wf}/fork": {
            "post": _op(
                "Fork",
                {"201": _json(_ref("Workflow"), "The new workflow", _LOCATION)},
                [*cmd_errors, 413, 415],
                params=[_ID],
                body=_body(_ref("ForkRequest")),
            )
        },
        "/v1/workers": {
            "get": _op(
                "List workers",
                {"200": _json(_ref("Workers"), "Worker processes")},
                _COMMON,
                params=[
                    _query(
                        "include_stale", {"type": "boolean"}, "also workers that stopped beating"
                    )
                ],
            )
        },
    }


def _dapr(prefix: str) -> dict[str, Schema]:
    base = f"{prefix}/{{component}}"
    tag = prefix.rsplit("/", 2)[-2]
    dapr_id = {"type": "string", "pattern": DAPR_ID_PATTERN, "maxLength": 200}
    component = {"name": "component", "in": "path", "required": True, "schema": dapr_id}
    instance = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": dapr_id,
        "example": EXAMPLE_ID,
    }
    accepted = {"202": {"description": "Accepted"}}
    errors = [400, 401, 404, 409, 503]

    def op(summary: str, ok: dict[str, Schema], errs: list[int], **kw: Any) -> Schema:
        return _op(f"Dapr {tag} {summary}", ok, errs, dapr=True, **kw)

    return {
        f"{base}/{{name}}/start": {
            "post": op(
                "start workflow",
                {"202": _json(_ref("DaprStarted"), "Started")},
                [*errors, 413],
                params=[
                    component,
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "example": "greet",
                    },
                    {"name": "instanceID", "in": "query", "required": False, "schema": dapr_id},
                ],
                body={"required": False, "content": {"application/json": {"schema": ANY}}},
            )
        },
        f"{base}/{{id}}": {
            "get": op(
                "get workflow",
                {"200": _json(_ref("DaprWorkflow"), "The instance")},
                errors,
                params=[component, instance],
            )
        },
        f"{base}/{{id}}/raiseEvent/{{event}}": {
            "post": op(
                "raise event",
                accepted,
                [*errors, 413],
                params=[
                    component,
                    instance,
                    {
                        "name": "event",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 200},
                    },
                ],
                body={"required": False, "content": {"application/json": {"schema": ANY}}},
            )
        },
        **{
            f"{base}/{{id}}/{verb}": {
                "post": op(f"{verb} workflow", accepted, errors, params=[component, instance])
            }
            for verb in ("terminate", "pause", "resume", "purge")
        },
    }


def openapi() -> dict[str, Any]:
    """The OpenAPI document (a fresh dict each call)."""
    _seen.clear()
    paths = {**_native(), **_dapr("/v1.0/workflows"), **_dapr("/v1.0-beta1/workflows")}
    paths["/openapi.json"] = {
        "get": _op("OpenAPI document", {"200": _json({"type": "object"}, "This document")}, [401])
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "durably",
            "version": "1",
            "description": "Start, inspect and steer durable workflows; plus Dapr's workflow API.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
