"""``POST /v1/bulk/{action}``: a bulk operation by filter (see :mod:`durably.bulk`).

The body: ``{"filter": {...}, "dry_run": false, "reason": "...", "limit": 1000, "after": null}``.
One request goes through at most ``limit`` workflows (at most :data:`MAX_BULK_LIMIT`) and
answers the counts processed and skipped, and a ``cursor`` to send back as ``after`` when it
stopped at the limit (None: done). A bad filter (an unknown status, a bad time, no criterion
and no ``"all": true``) is a 400 and changes nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from durably.bulk import BULK_ACTIONS, MAX_BATCH, BulkFilter, check_action

from .endpoint import Call, json_response
from .errors import ApiError
from .inputs import model_body, workflow_id
from .operation import Body, Operation, Reply

__all__ = ["MAX_BULK_LIMIT", "OPERATIONS"]

MAX_BULK_LIMIT = MAX_BATCH
"""The most workflows one request goes through (then it answers a cursor)."""
DEFAULT_BULK_LIMIT = 1000


class BulkRequest(BaseModel):
    """POST /v1/bulk/{action}."""

    model_config = ConfigDict(extra="forbid", strict=True)

    filter: dict[str, Any] = Field(
        description="status (one or a list), name, version, queue, id_prefix, created_after, "
        "created_before, finished_after, finished_before (epoch seconds or ISO-8601), all",
        examples=[{"status": ["failed"], "name": "send_invoice"}],
    )
    dry_run: bool = False
    reason: str = "terminated"
    limit: int = Field(
        default=DEFAULT_BULK_LIMIT, json_schema_extra={"minimum": 1, "maximum": MAX_BULK_LIMIT}
    )
    after: str | None = Field(default=None, description="the cursor of the previous answer")


class BulkAnswer(BaseModel):
    """What a bulk request did (see :class:`durably.BulkResult`)."""

    action: str
    dry_run: bool
    matched: int
    processed: int
    skipped: int
    sample: list[str]
    cursor: str | None


def bulk(call: Call) -> Response:
    """POST /v1/bulk/{action}: apply ``action`` to the workflows the filter selects."""
    action = check_action(call.param("action"))
    req = model_body(call.json(allow_empty=False), BulkRequest)
    flt = BulkFilter.from_json(req.filter)
    if not 1 <= req.limit <= MAX_BULK_LIMIT:
        raise ApiError("bad_request", f"limit must be from 1 to {MAX_BULK_LIMIT}")
    after = None if req.after is None else workflow_id(req.after)
    result = call.app.bulk(
        action, flt, dry_run=req.dry_run, reason=req.reason, limit=req.limit, after=after
    )
    return json_response(result.to_json())


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/v1/bulk/{action}",
        bulk,
        "Cancel, terminate, retry, resume, suspend or purge the workflows a filter selects",
        {200: Reply(BulkAnswer, "Counts processed and skipped; a cursor if it stopped")},
        (400, 401, 413, 415, 503),
        path_params={
            "action": {
                "name": "action",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": list(BULK_ACTIONS)},
            }
        },
        body=Body(BulkRequest),
    ),
)
