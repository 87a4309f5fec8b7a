"""The OpenAPI 3.0 document of the HTTP API, served at ``/openapi.json``: its schemas are
generated from the pydantic models of :mod:`durably.server.models`, its paths from the route
table below (path, method, summary, request model, response models)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from durably.storage.base import WorkflowStatus

from . import models as m
from .models import ID_PATTERN

__all__ = ["EXAMPLE_ID", "openapi"]

Schema = dict[str, Any]

DAPR_ID_PATTERN = "^[A-Za-z0-9_-]+$"
ANY: Schema = {"nullable": True, "description": "any JSON value"}
_REF = "#/components/schemas/{model}"
_SHAPED = ("type", "$ref", "anyOf", "allOf", "oneOf", "enum", "properties", "items")


def _openapi30(schema: Any) -> Any:
    """A JSON Schema from pydantic in OpenAPI 3.0's dialect: ``nullable`` for ``X | None``,
    ``example`` for ``examples``, ``enum`` for ``const``, no titles, an unshaped (any) value
    nullable."""
    if isinstance(schema, list):
        return [_openapi30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: Schema = {
        k: _named(v) if k == "properties" else _openapi30(v)
        for k, v in schema.items()
        if not (k == "title" and isinstance(v, str))
    }
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del out["anyOf"]
        inner: Schema = rest[0] if len(rest) == 1 else {"anyOf": rest}
        if "$ref" in inner:  # OpenAPI 3.0 ignores a $ref's siblings
            inner = {"allOf": [inner]}
        out = {**inner, **out, "nullable": True}
    if "examples" in out:
        out["example"] = out.pop("examples")[0]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if not any(key in out for key in _SHAPED):
        out["nullable"] = True
    return out


def _named(schemas: dict[str, Any]) -> dict[str, Any]:
    return {name: _openapi30(schema) for name, schema in schemas.items()}


def _schemas() -> dict[str, Schema]:
    """The components' schemas: every request and response model and their parts."""
    mode: JsonSchemaMode = "validation"
    pairs = [(model, mode) for model in (*m.REQUEST_MODELS, *m.RESPONSE_MODELS)]
    _, top = models_json_schema(pairs, ref_template=_REF)
    return dict(sorted(_named(top["$defs"]).items()))


def _ref(model: type[BaseModel] | str) -> Schema:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": _REF.format(model=name)}


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


def _json(
    schema: Schema | type[BaseModel], description: str, headers: dict[str, Any] | None = None
) -> Schema:
    if not isinstance(schema, dict):
        schema = _ref(schema)
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _errors(codes: list[int], dapr: bool = False) -> dict[str, Schema]:
    schema = _ref(m.DaprError) if dapr else _ref(m.Error)
    return {str(c): _json(schema, _ERRORS[c]) for c in codes}


def _body(model: type[BaseModel], required: bool = True) -> Schema:
    schema = _ref(model)
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
    command = _json(m.CommandResult, "The command was applied; the status after it")
    cmd_errors = [*_COMMON, 404, 409]
    list_params = [
        _query(
            "status",
            {
                "type": "array",
                "items": {"type": "string", "enum": [s.value for s in WorkflowStatus]},
            },
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
        "/healthz": {"get": _op("Liveness", {"200": _json(m.Status, "Alive")}, [], auth=False)},
        "/readyz": {
            "get": _op("Readiness", {"200": _json(m.Status, "The database answers")}, [401, 503])
        },
        "/v1/workflows": {
            "post": _op(
                "Start a workflow",
                {
                    "202": _json(m.Workflow, "Started", _LOCATION),
                    "200": _json(m.Workflow, "A workflow with this id exists", _LOCATION),
                },
                [*_COMMON, 404, 409, 413, 415],
                body=_body(m.StartRequest),
            ),
            "get": _op(
                "List workflows",
                {"200": _json(m.WorkflowList, "One page")},
                _COMMON,
                params=list_params,
            ),
        },
        wf: {
            "get": _op(
                "Get a workflow",
                {"200": _json(m.Workflow, "The workflow")},
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
                    "200": _json(m.Result, "Finished: output and error"),
                    "202": _json(
                        _ref(m.Result),
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
                {"200": _json(m.History, "The journal")},
                [*_COMMON, 404],
                params=[_ID],
            )
        },
        f"{wf}/state": {
            "get": _op(
                "Get a workflow's published state",
                {"200": _json(m.State, "Published state")},
                [*_COMMON, 404],
                params=[_ID],
            )
        },
        f"{wf}/runs": {
            "get": _op(
                "List a workflow's earlier runs (each ended with continue_as_new)",
                {"200": _json(m.Runs, "Earlier runs, oldest first")},
                [*_COMMON, 404],
                params=[_ID],
            )
        },
        f"{wf}/children": {
            "get": _op(
                "List a workflow's children",
                {"200": _json(m.Children, "Child workflows")},
                [*_COMMON, 404],
                params=[_ID],
            )
        },
        f"{wf}/events/{{event}}": {
            "post": _op(
                "Send an event",
                {"202": _json(m.Delivered, "Sent (delivered false: a duplicate)")},
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
                body=_body(m.EventRequest, required=False),
            )
        },
        f"{wf}/cancel": {"post": _op("Cancel", {"202": command}, cmd_errors, params=[_ID])},
        f"{wf}/terminate": {
            "post": _op(
                "Terminate",
                {"202": command},
                [*cmd_errors, 413, 415],
                params=[_ID],
                body=_body(m.TerminateRequest, required=False),
            )
        },
        f"{wf}/suspend": {"post": _op("Suspend", {"202": command}, cmd_errors, params=[_ID])},
        f"{wf}/resume": {"post": _op("Resume", {"202": command}, cmd_errors, params=[_ID])},
        f"{wf}/retry": {"post": _op("Retry", {"202": command}, cmd_errors, params=[_ID])},
        f"{wf}/fork": {
            "post": _op(
                "Fork",
                {"201": _json(m.Workflow, "The new workflow", _LOCATION)},
                [*cmd_errors, 413, 415],
                params=[_ID],
                body=_body(m.ForkRequest),
            )
        },
        "/v1/workers": {
            "get": _op(
                "List workers",
                {"200": _json(m.Workers, "Worker processes")},
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
                {"202": _json(m.DaprStarted, "Started")},
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
                {"200": _json(m.DaprWorkflow, "The instance")},
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
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
