"""The OpenAPI 3.0 document of the HTTP API, served at ``/openapi.json``: its schemas are
generated from the pydantic models of :mod:`durably.server.models`, its paths from the same
operation table the routes are made from (:data:`OPERATIONS`: the native API's, the Dapr
routes', and this document's own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.responses import Response

from . import bulk, dapr, routes, schedule_routes
from . import models as m
from .endpoint import Call, json_response
from .operation import Operation, Reply
from .routes import EXAMPLE_ID

__all__ = ["ERRORS", "EXAMPLE_ID", "OPERATIONS", "openapi"]

Schema = dict[str, Any]

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


def _table_models(operations: Sequence[Operation]) -> list[type[BaseModel]]:
    """The models the operations name (bodies and answers), so none is left undefined."""
    named: list[type[BaseModel] | Schema | None] = [
        op.body.schema for op in operations if op.body is not None
    ]
    named += [reply.body for op in operations for reply in op.replies.values()]
    return [model for model in named if isinstance(model, type)]


def _schemas(operations: Sequence[Operation]) -> dict[str, Schema]:
    """The components' schemas: every request and response model and their parts."""
    mode: JsonSchemaMode = "validation"
    models = dict.fromkeys((*m.REQUEST_MODELS, *m.RESPONSE_MODELS, *_table_models(operations)))
    _, top = models_json_schema([(model, mode) for model in models], ref_template=_REF)
    return dict(sorted(_named(top["$defs"]).items()))


def _ref(model: type[BaseModel] | str) -> Schema:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": _REF.format(model=name)}


ERRORS = {
    400: "Bad request: malformed JSON, a wrong type, a bad id or filter",
    401: "Missing or wrong bearer token",
    404: "No such workflow (or workflow name no worker registered)",
    409: "The command does not apply in the workflow's status, or the id is taken (by a "
    "workflow of another name, for a start)",
    413: "Request body or payload too large",
    415: "The body is not JSON",
    503: "The database is unavailable",
}
"""What each error status of an operation means."""


def _json(schema: Schema, description: str, headers: dict[str, Any] | None = None) -> Schema:
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _schema(body: type[BaseModel] | Schema) -> Schema:
    return body if isinstance(body, dict) else _ref(body)


def _reply(reply: Reply) -> Schema:
    if reply.body is None:
        return {"description": reply.description}
    return _json(_schema(reply.body), reply.description, reply.headers)


def _operation_id(summary: str, seen: dict[str, int]) -> str:
    words = "".join(c if c.isalnum() else " " for c in summary).split()
    base = words[0].lower() + "".join(w.capitalize() for w in words[1:])
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}{seen[base]}"


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _operation(op: Operation, seen: dict[str, int]) -> Schema:
    error = _ref(m.DaprError) if op.dapr else _ref(m.Error)
    out: Schema = {
        "summary": op.summary,
        "operationId": _operation_id(op.summary, seen),
        "responses": {
            **{str(status): _reply(reply) for status, reply in op.replies.items()},
            **{str(status): _json(error, ERRORS[status]) for status in op.errors},
        },
    }
    params = [op.path_params[name] for name in _path_names(op.path)] + list(op.params)
    if params:
        out["parameters"] = params
    if op.body is not None:
        content = {"application/json": {"schema": _schema(op.body.schema)}}
        out["requestBody"] = {"required": op.body.required, "content": content}
    if not op.auth:
        out["security"] = []
    return out


async def openapi_json(call: Call) -> Response:
    """GET /openapi.json: this document (made once, when the app is)."""
    return json_response(call.request.app.state.openapi)


OPERATIONS: tuple[Operation, ...] = (
    *routes.OPERATIONS,
    *schedule_routes.OPERATIONS,
    *bulk.OPERATIONS,
    *dapr.OPERATIONS,
    Operation(
        "GET",
        "/openapi.json",
        openapi_json,
        "OpenAPI document",
        {200: Reply({"type": "object"}, "This document")},
        (401,),
    ),
)
"""Every operation the server serves: its routes and the document's paths are made from it."""


def openapi() -> dict[str, Any]:
    """The OpenAPI document (a fresh dict each call)."""
    seen: dict[str, int] = {}
    paths: dict[str, Schema] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, seen)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "durably",
            "version": "1",
            "description": "Start, inspect and steer durable workflows; plus Dapr's workflow API.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(OPERATIONS),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
