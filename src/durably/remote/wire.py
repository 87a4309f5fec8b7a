"""The JSON forms of the API (see /v1 in the server's OpenAPI document) as durably's types."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from typing import Any

from durably.handle import HistoryEntry, RunInfo, WorkflowInfo
from durably.remote.errors import ServerError
from durably.storage.base import WorkerInfo, WorkflowStatus

__all__ = [
    "encode_cursor",
    "history_entry",
    "run_info",
    "timestamp",
    "worker_info",
    "workflow_info",
]


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise ServerError(f"the server sent {value!r} where a timestamp belongs")


def _required_time(value: Any) -> datetime:
    parsed = _time(value)
    if parsed is None:
        raise ServerError("the server sent no timestamp where one is required")
    return parsed


def timestamp(value: Any) -> float:
    """An API timestamp (ISO-8601 or epoch seconds) as epoch seconds."""
    return _required_time(value).timestamp()


def encode_cursor(created_at: float, last_id: str) -> str:
    """The list cursor (``cursor=`` of ``GET /v1/workflows``) of the page after the workflow
    ``(created_at, last_id)``: ``created_at`` is the exact stored epoch, which JSON carries
    exactly. The server makes its ``next_cursor`` with this same function."""
    raw = json.dumps([created_at, last_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def workflow_info(obj: dict[str, Any]) -> WorkflowInfo:
    """A workflow object as :class:`WorkflowInfo`."""
    try:
        return WorkflowInfo(
            id=obj["id"],
            name=obj["name"],
            status=WorkflowStatus(obj["status"]),
            input=obj.get("input"),
            output=obj.get("output"),
            error=obj.get("error"),
            created_at=_required_time(obj["created_at"]),
            updated_at=_required_time(obj["updated_at"]),
            started_at=_time(obj.get("started_at")),
            finished_at=_time(obj.get("finished_at")),
            owner=obj.get("owner"),
            epoch=int(obj.get("epoch") or 0),
            queue=obj.get("queue") or "default",
            priority=int(obj.get("priority") or 0),
            parent_id=obj.get("parent_id"),
            run=int(obj.get("run") or 1),
            wake_at=_time(obj.get("wake_at")),
            unserved=bool(obj.get("unserved", False)),
            created_at_epoch=_epoch(obj.get("created_at_epoch")),
            summary=bool(obj.get("summary", False)),
            input_preview=_text(obj.get("input_preview")),
            output_preview=_text(obj.get("output_preview")),
            error_preview=_text(obj.get("error_preview")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ServerError(f"the server sent a malformed workflow object ({exc!r})") from exc


def _attempt(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    for key in ("started_at", "finished_at"):
        if key in out:
            out[key] = _time(out[key])
    return out


def history_entry(obj: dict[str, Any]) -> HistoryEntry:
    """A history entry object as :class:`HistoryEntry`."""
    try:
        return HistoryEntry(
            seq=int(obj["seq"]),
            kind=obj["kind"],
            name=obj["name"],
            status=obj["status"],
            result=obj.get("result"),
            error=obj.get("error"),
            attempts=int(obj.get("attempts") or 0),
            started_at=_required_time(obj["started_at"]),
            finished_at=_required_time(obj["finished_at"]),
            owner=obj.get("owner") or "",
            epoch=int(obj.get("epoch") or 0),
            failed_attempts=[_attempt(a) for a in obj.get("failed_attempts") or []],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ServerError(f"the server sent a malformed history entry ({exc!r})") from exc


def run_info(obj: dict[str, Any]) -> RunInfo:
    """A run object as :class:`RunInfo`."""
    try:
        return RunInfo(
            run=int(obj["run"]),
            status=WorkflowStatus(obj["status"]),
            input=obj.get("input"),
            output=obj.get("output"),
            started_at=_time(obj.get("started_at")),
            finished_at=_required_time(obj["finished_at"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ServerError(f"the server sent a malformed run object ({exc!r})") from exc


def worker_info(obj: dict[str, Any]) -> WorkerInfo:
    """A worker object as :class:`WorkerInfo` (timestamps as epoch seconds, as in the store)."""
    try:
        return WorkerInfo(
            id=obj["id"],
            hostname=obj.get("hostname") or "",
            pid=int(obj.get("pid") or 0),
            started_at=timestamp(obj["started_at"]),
            heartbeat_at=timestamp(obj["heartbeat_at"]),
            workflows=list(obj.get("workflows") or []),
            queues=list(obj.get("queues") or []),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ServerError(f"the server sent a malformed worker object ({exc!r})") from exc
