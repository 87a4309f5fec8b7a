"""Errors of the HTTP API: one JSON shape, stable codes, and the mapping from durably's errors.

Every error answer is ``{"error": {"code": "<stable code>", "message": "<what to do>"}}`` with
the status that goes with the code (see ``STATUS``). Malformed input is a 4xx, never a 500.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.responses import JSONResponse

from durably.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    DurablyError,
    InvalidIdError,
    PayloadTooLargeError,
    ScheduleNotFoundError,
    SerializationError,
    UnknownWorkflowError,
    WorkflowIdConflictError,
    WorkflowNotFoundError,
    WorkflowStateError,
)
from durably.storage.urls import scrub

__all__ = ["STATUS", "ApiError", "error_body", "from_exception", "known", "missing_workflow"]

log = logging.getLogger("durably.server")

STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "id_conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "internal": 500,
    "unavailable": 503,
}
"""Each stable error code and its HTTP status."""


class ApiError(Exception):
    """An error answer: ``code`` (a key of :data:`STATUS`) and a message that says what to do."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS[code] if status is None else status
        self.headers = headers or {}

    def response(self, *, dapr: bool = False) -> JSONResponse:
        """The JSON answer (``dapr``: also Dapr's top-level ``errorCode`` and ``message``)."""
        body = error_body(self.code, self.message)
        if dapr:
            body = {
                "errorCode": _DAPR_CODES.get(self.code, "ERR_BAD_REQUEST"),
                "message": self.message,
                **body,
            }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


_DAPR_CODES = {
    "bad_request": "ERR_MALFORMED_REQUEST",
    "unauthorized": "ERR_UNAUTHORIZED",
    "not_found": "ERR_INSTANCE_ID_NOT_FOUND",
    "conflict": "ERR_INSTANCE_ID_CONFLICT",
    "id_conflict": "ERR_INSTANCE_ID_CONFLICT",
    "payload_too_large": "ERR_BODY_TOO_LARGE",
    "unsupported_media_type": "ERR_MALFORMED_REQUEST",
    "method_not_allowed": "ERR_METHOD_NOT_ALLOWED",
    "internal": "ERR_INTERNAL",
    "unavailable": "ERR_STATE_STORE_NOT_CONFIGURED",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    """``{"error": {"code": code, "message": message}}``."""
    return {"error": {"code": code, "message": message}}


def _unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or used right now."""
    if isinstance(exc, sqlite3.OperationalError | sqlite3.InterfaceError):
        return True
    kind = type(exc)
    return kind.__module__.startswith(("psycopg", "psycopg_pool")) and kind.__name__ in (
        "OperationalError",
        "InterfaceError",
        "PoolTimeout",
        "TooManyRequests",
    )


def missing_workflow(workflow_id: str, *, dapr: bool = False) -> ApiError:
    """The 404 for a workflow id that names no workflow (in the Dapr routes' words if
    ``dapr``)."""
    if dapr:
        return ApiError("not_found", f"no workflow instance with ID {workflow_id!r}")
    return ApiError(
        "not_found",
        f"no workflow with id {workflow_id!r}; check the id (GET /v1/workflows lists them)",
    )


@contextmanager
def known(workflow_id: str, *, dapr: bool = False) -> Iterator[None]:
    """Reads of workflow ``workflow_id`` inside: if it does not exist, the 404 of
    :func:`missing_workflow` instead of the App's :class:`WorkflowNotFoundError`."""
    try:
        yield
    except WorkflowNotFoundError as exc:
        if exc.workflow_id != workflow_id:
            raise
        raise missing_workflow(workflow_id, dapr=dapr) from None


def from_exception(exc: Exception, database_url: str = "") -> ApiError:
    """The API error for an exception raised while serving a request; ``database_url`` (the
    server's) is scrubbed from any driver text that reaches the answer or the log."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, DurablyError):
        if isinstance(exc, WorkflowNotFoundError | UnknownWorkflowError):
            return ApiError("not_found", exc.message)
        if isinstance(exc, ScheduleNotFoundError):  # its message names the database: not here
            return ApiError(
                "not_found", f"no schedule named {exc.name!r}; GET /v1/schedules lists them"
            )
        if isinstance(exc, WorkflowStateError):
            return ApiError("conflict", exc.message)
        if isinstance(exc, WorkflowIdConflictError):
            return ApiError("id_conflict", exc.message)
        if isinstance(exc, PayloadTooLargeError):
            return ApiError("payload_too_large", exc.message)
        if isinstance(exc, DatabaseUnavailableError):
            # the server's database, not the request, is at fault
            said = scrub(exc.message, database_url)
            log.warning("database unavailable: %s", said)
            return ApiError(
                "unavailable",
                f"the database is unavailable: {said}; retry later",
                headers={"Retry-After": "1"},
            )
        if isinstance(exc, InvalidIdError | ConfigurationError | SerializationError):
            return ApiError("bad_request", exc.message)
        log.exception("unexpected durably error while serving a request")
        return ApiError("internal", f"{exc.code}: {exc.message}")
    if _unavailable(exc):
        said = scrub(str(exc), database_url)
        log.warning("database unavailable: %s", said)
        return ApiError(
            "unavailable",
            f"the database is unavailable ({type(exc).__name__}: {said}); retry later, and check "
            "that the database server runs and the URL given to `durably server --db` is right",
            headers={"Retry-After": "1"},
        )
    log.exception("internal error while serving a request")
    return ApiError(
        "internal", f"internal error ({type(exc).__name__}); see the server log for details"
    )
