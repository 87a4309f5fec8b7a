"""One table of the HTTP API's operations, from which both the Starlette routes and the OpenAPI
document's paths are made (:mod:`durably.server.openapi`).

An :class:`Operation` says everything about one method on one path: its handler, summary, path
and query parameters, request body, answers by status and error statuses, and whether it needs
the token. Adding a route is one handler and one entry in a module's ``OPERATIONS`` (plus a
pydantic model in :mod:`durably.server.models` if it answers a new shape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

from .endpoint import Handler, by_method, endpoint

__all__ = ["Body", "Operation", "Reply", "query", "routes"]

Schema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer: its JSON body's model (or schema; None: no body), its description
    and the headers it carries (each name with its OpenAPI header object)."""

    body: type[BaseModel] | Schema | None
    description: str
    headers: dict[str, Schema] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Body:
    """A JSON request body: its model (or schema), and whether it must be sent."""

    schema: type[BaseModel] | Schema
    required: bool = True


def query(name: str, schema: Schema, description: str | None = None, **extra: Any) -> Schema:
    """An optional query parameter's OpenAPI object."""
    param: Schema = {"name": name, "in": "query", "required": False, "schema": schema}
    if description is not None:
        param["description"] = description
    return {**param, **extra}


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path: how it is served and how the OpenAPI document describes it.

    ``path_params`` maps each ``{name}`` of the path to its OpenAPI parameter object (their
    order in the document is the path's); ``params`` are the query parameters. ``replies`` are
    the successful answers by status, ``errors`` the error statuses (described by
    :data:`durably.server.openapi.ERRORS`). ``auth=False``: served without a token. ``dapr``:
    errors in Dapr's shape.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    replies: dict[int, Reply]
    errors: Sequence[int] = ()
    path_params: dict[str, Schema] = field(default_factory=dict)
    params: Sequence[Schema] = ()
    body: Body | None = None
    auth: bool = True
    dapr: bool = False


def routes(operations: Sequence[Operation]) -> list[BaseRoute]:
    """The Starlette routes serving ``operations``, one per path in the table's order (a path
    with several methods dispatches on the method, so a 405 lists all of them)."""
    by_path: dict[str, list[Operation]] = {}
    for op in operations:
        by_path.setdefault(op.path, []).append(op)
    table: list[BaseRoute] = []
    for path, ops in by_path.items():
        methods = [op.method for op in ops]
        if len(set(methods)) != len(methods):
            raise ValueError(f"{path} has one method twice in the operation table")
        if len(ops) == 1:
            run = endpoint(ops[0].handler, dapr=ops[0].dapr)
        else:
            run = by_method({op.method: endpoint(op.handler, dapr=op.dapr) for op in ops})
        table.append(Route(path, run, methods=methods))
    return table
