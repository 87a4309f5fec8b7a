"""Errors only a remote :class:`durably.Client` raises (the others map to durably's own)."""

from __future__ import annotations

from durably.errors import DurablyError

__all__ = ["AuthenticationError", "ServerError", "ServerUnreachableError"]


class AuthenticationError(DurablyError):
    """The server refused the request (HTTP 401): no token, or not the server's token."""

    code = "unauthorized"


class ServerUnreachableError(DurablyError):
    """The server could not be reached (connection refused, timeout, DNS) or answered that its
    database is unavailable (HTTP 503)."""

    code = "server_unreachable"


class ServerError(DurablyError):
    """The server answered with an error durably has no better type for (a 5xx, or a response
    that is not the API's JSON). ``status`` is the HTTP status."""

    code = "server_error"

    def __init__(self, message: str, *, status: int = 0, workflow_id: str | None = None) -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.status = status
