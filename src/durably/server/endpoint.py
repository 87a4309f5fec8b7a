"""How a route runs: read the body on the event loop, run the handler (one calling the
synchronous ``App`` in a worker thread, an ``async`` one on the loop), and turn every error into a
JSON answer."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from durably.codec import Codec
from durably.operations import WorkflowOperations

from .errors import ApiError, from_exception
from .inputs import json_body

__all__ = ["Call", "ServedApp", "by_method", "endpoint", "json_response", "not_found"]


class ServedApp(WorkflowOperations, Protocol):
    """What the server uses of the :class:`durably.App` it serves: the workflow operations
    (:class:`durably.WorkflowOperations`), the codec that turns JSON into values and back, and
    the database URL (only to scrub it from driver errors). Never the App's store."""

    @property
    def codec(self) -> Codec:
        """How the App stores values."""
        ...

    @property
    def database_url(self) -> str:
        """The database URL (secret: scrubbed from every answer)."""
        ...


@dataclass(frozen=True, slots=True)
class Call:
    """One request as a handler sees it: the App, the request, its path parameters and body."""

    app: ServedApp
    request: Request
    body: bytes

    def param(self, name: str) -> str:
        """A path parameter."""
        value: str = self.request.path_params[name]
        return value

    def json(self, *, allow_empty: bool = True) -> dict[str, Any]:
        """The body as a JSON object (see :func:`durably.server.inputs.json_body`)."""
        return json_body(
            self.body, self.request.headers.get("content-type"), allow_empty=allow_empty
        )


Handler = Callable[[Call], Response] | Callable[[Call], Awaitable[Response]]
"""A route's handler: a function run in a worker thread, or a coroutine function run on the
event loop."""


class _JsonResponse(JSONResponse):
    """A JSON answer that renders any string: one holding a lone surrogate (stored before
    durably refused them) is sent \\u-escaped instead of failing the request."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON answer."""
    return _JsonResponse(body, status_code=status, headers=headers)


def endpoint(handler: Handler, *, dapr: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint running ``handler`` (a function in a thread, a coroutine function
    on the loop); errors become JSON answers (in Dapr's shape too when ``dapr``)."""

    async def run(request: Request) -> Response:
        app: ServedApp = request.app.state.durably
        try:
            body = (
                await request.body()
                if request.method in ("POST", "PUT", "PATCH", "DELETE")
                else b""
            )
            call = Call(app, request, body)
            if inspect.iscoroutinefunction(handler):
                response: Response = await handler(call)
                return response
            return await run_in_threadpool(cast(Callable[[Call], Response], handler), call)
        except Exception as exc:
            return from_exception(exc, app.database_url).response(dapr=dapr)

    run.__name__ = run.__qualname__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


Endpoint = Callable[[Request], Awaitable[Response]]


def by_method(table: dict[str, Endpoint]) -> Endpoint:
    """One endpoint serving several methods of a path (so a 405 lists all of them)."""

    async def run(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await table[method](request)

    return run


async def not_found(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no such route, wrong method) in the API's error shape."""
    status = getattr(exc, "status_code", 500)
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:
        allowed = headers.get("Allow", "")
        error = ApiError(
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}; use {allowed or 'another'}",
            headers=headers,
        )
    elif status == 404:
        error = ApiError(
            "not_found",
            f"no route {request.url.path}; see /openapi.json for the API's routes",
        )
    else:
        error = ApiError("bad_request", str(getattr(exc, "detail", exc)), status=status)
    return error.response(dapr=request.url.path.startswith("/v1.0"))
