"""The guard in front of every route: bearer-token auth and the request body size limit.

A pure ASGI middleware: it answers 401 itself (``Authorization: Bearer <token>``, or Dapr's
``dapr-api-token: <token>`` header, its bytes compared in constant time with the token's ASCII
bytes: :func:`durably.tokens.check_token` keeps tokens to visible ASCII) and 413 for a body
over the limit, whether the client announces its size (``Content-Length``) or streams it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers

from durably.tokens import check_token

from .errors import ApiError

__all__ = ["OPEN_PATHS", "Guard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz"})
"""Paths served without a token by default (liveness probes carry none); the server passes
those of its operation table that need no auth."""


def _too_large(limit: int) -> ApiError:
    return ApiError(
        "payload_too_large",
        f"the request body is over the server's limit of {limit} bytes; send less (store large "
        "data elsewhere and pass a reference), or start the server with a larger --max-body-bytes",
    )


def _is_dapr(scope: Scope) -> bool:
    return str(scope["path"]).startswith("/v1.0")


class Guard:
    """ASGI middleware: 401 without the right token (when one is set), 413 over ``max_body``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        max_body: int,
        open_paths: frozenset[str] = OPEN_PATHS,
    ) -> None:
        self.app = app
        self.open_paths = open_paths
        self.token = check_token(token).encode("ascii") if token is not None else None
        self.max_body = max_body

    def _authorized(self, headers: Headers) -> bool:
        assert self.token is not None
        given = b""
        auth = headers.get("authorization", "")
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() == "bearer":
            given = credentials.strip().encode("latin-1")  # the header's raw bytes
        elif "dapr-api-token" in headers:
            given = headers["dapr-api-token"].strip().encode("latin-1")
        return hmac.compare_digest(given, self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if (
            self.token is not None
            and scope["path"] not in self.open_paths
            and not self._authorized(headers)
        ):
            error = ApiError(
                "unauthorized",
                "missing or wrong token: send the header 'Authorization: Bearer <token>' "
                "with the token the server was started with (--token or $DURABLY_TOKEN)",
                headers={"WWW-Authenticate": 'Bearer realm="durably"'},
            )
            await error.response(dapr=_is_dapr(scope))(scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):  # "²".isdigit() is true
                error = ApiError("bad_request", "invalid Content-Length")
                await error.response(dapr=_is_dapr(scope))(scope, receive, send)
                return
            if len(length) > 18 or int(length) > self.max_body:
                await _too_large(self.max_body).response(dapr=_is_dapr(scope))(scope, receive, send)
                return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that raises a 413 :class:`ApiError` once the body passes the limit."""
        seen = 0
        limit = self.max_body

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
            return message

        return limited
