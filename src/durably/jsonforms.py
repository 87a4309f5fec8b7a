"""The JSON forms of durably's objects, one set shared by the HTTP server, the CLI's ``--json``
and the remote :class:`durably.Client`: a workflow (full, or a listed summary), a history
entry, an earlier run, a worker; and the reverse, each form back as durably's type.

Values (inputs, outputs, event payloads) are shown as JSON, with dates, bytes, UUIDs and
decimals as durably's one-key tagged objects (``{"$datetime": "..."}``); a value this process
cannot decode is ``{"$undecodable": {"text": ..., "reason": ...}}``. The server's OpenAPI
document describes these forms with pydantic models (``durably.server.models``); this module
needs no third-party package.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from typing import Any

from durably.codec import to_json
from durably.handle import HistoryEntry, RunInfo, WorkflowInfo
from durably.storage.base import VersionCounts, WorkerInfo, WorkflowStatus

__all__ = [
    "MalformedForm",
    "encode_cursor",
    "history_entry",
    "history_json",
    "iso",
    "run_info",
    "run_json",
    "timestamp",
    "to_json",
    "version_counts",
    "versions_json",
    "worker_info",
    "worker_json",
    "workflow_info",
    "workflow_json",
]


class MalformedForm(ValueError):
    """A JSON object that is not the form it should be (a field missing or of a wrong type)."""


def iso(value: datetime | float | None) -> str | None:
    """An ISO-8601 UTC string (from a datetime or epoch seconds), or None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    return value.isoformat()


def _deep(value: Any) -> Any:
    """``value`` with every datetime inside turned into an ISO string."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep(v) for v in value]
    return value


# -- durably's types as JSON -------------------------------------------------------------------


def workflow_json(info: WorkflowInfo) -> dict[str, Any]:
    """The JSON form of a :class:`durably.WorkflowInfo`; a summary (a listed workflow) has no
    ``input``, ``output`` and ``error``, only their previews."""
    payloads = {} if info.summary else {
        "input": to_json(info.input),
        "output": to_json(info.output),
        "error": info.error,
    }  # fmt: skip
    return {
        "id": info.id,
        "name": info.name,
        "status": info.status.value,
        **payloads,
        "summary": info.summary,
        "input_preview": info.input_preview,
        "output_preview": info.output_preview,
        "error_preview": info.error_preview,
        "created_at": iso(info.created_at),
        "created_at_epoch": info.created_at_epoch,
        "updated_at": iso(info.updated_at),
        "started_at": iso(info.started_at),
        "finished_at": iso(info.finished_at),
        "owner": info.owner,
        "epoch": info.epoch,
        "queue": info.queue,
        "priority": info.priority,
        "parent_id": info.parent_id,
        "run": info.run,
        "wake_at": iso(info.wake_at),
        "unserved": info.unserved,
        "version": info.version,
    }


def history_json(entry: HistoryEntry) -> dict[str, Any]:
    """The JSON form of a :class:`durably.HistoryEntry`."""
    return {
        "seq": entry.seq,
        "kind": entry.kind,
        "name": entry.name,
        "status": entry.status,
        "result": to_json(entry.result),
        "error": _deep(entry.error),
        "attempts": entry.attempts,
        "started_at": iso(entry.started_at),
        "finished_at": iso(entry.finished_at),
        "owner": entry.owner,
        "epoch": entry.epoch,
        "failed_attempts": _deep(list(entry.failed_attempts)),
    }


def run_json(run: RunInfo) -> dict[str, Any]:
    """The JSON form of a :class:`durably.RunInfo` (an earlier run of a workflow)."""
    return {
        "run": run.run,
        "status": run.status.value,
        "input": to_json(run.input),
        "output": to_json(run.output),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
    }


def worker_json(worker: WorkerInfo) -> dict[str, Any]:
    """The JSON form of a worker registration."""
    return {
        "id": worker.id,
        "hostname": worker.hostname,
        "pid": worker.pid,
        "started_at": iso(worker.started_at),
        "heartbeat_at": iso(worker.heartbeat_at),
        "workflows": list(worker.workflows),
        "queues": list(worker.queues),
        "version": worker.version,
        "auto_upgrade": list(worker.auto_upgrade),
    }


def versions_json(counts: VersionCounts) -> dict[str, Any]:
    """The JSON form of unfinished workflows per version (``GET /v1/versions``, ``durably
    versions --json``): unversioned first, then by version."""
    order = sorted(counts, key=lambda v: (v is not None, v or ""))
    return {
        "versions": [
            {
                "version": v,
                "unfinished": sum(counts[v].values()),
                "statuses": {s.value: n for s, n in sorted(counts[v].items())},
            }
            for v in order
        ]
    }


def version_counts(obj: dict[str, Any]) -> VersionCounts:
    """:func:`versions_json`'s form as counts (:class:`MalformedForm` if it is not)."""
    try:
        return {
            _text(v.get("version")): {
                WorkflowStatus(s): int(n) for s, n in (v.get("statuses") or {}).items()
            }
            for v in obj["versions"]
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedForm(f"a malformed versions object ({exc!r})") from exc


def encode_cursor(created_at: float, last_id: str) -> str:
    """The list cursor (``cursor=`` of ``GET /v1/workflows``) of the page after the workflow
    ``(created_at, last_id)``: ``created_at`` is the exact stored epoch, which JSON carries
    exactly. The server and the remote client both make cursors with this function."""
    raw = json.dumps([created_at, last_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


# -- JSON back as durably's types --------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise MalformedForm(f"{value!r} where a timestamp belongs")


def _required_time(value: Any) -> datetime:
    parsed = _time(value)
    if parsed is None:
        raise MalformedForm("no timestamp where one is required")
    return parsed


def timestamp(value: Any) -> float:
    """A JSON timestamp (ISO-8601 or epoch seconds) as epoch seconds."""
    return _required_time(value).timestamp()


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def workflow_info(obj: dict[str, Any]) -> WorkflowInfo:
    """A workflow's JSON form as :class:`WorkflowInfo` (:class:`MalformedForm` if it is not)."""
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
            version=_text(obj.get("version")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedForm(f"a malformed workflow object ({exc!r})") from exc


def _attempt(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    for key in ("started_at", "finished_at"):
        if key in out:
            out[key] = _time(out[key])
    return out


def history_entry(obj: dict[str, Any]) -> HistoryEntry:
    """A history entry's JSON form as :class:`HistoryEntry`."""
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
        raise MalformedForm(f"a malformed history entry ({exc!r})") from exc


def run_info(obj: dict[str, Any]) -> RunInfo:
    """A run's JSON form as :class:`RunInfo`."""
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
        raise MalformedForm(f"a malformed run object ({exc!r})") from exc


def worker_info(obj: dict[str, Any]) -> WorkerInfo:
    """A worker's JSON form as :class:`WorkerInfo` (timestamps as epoch seconds, as stored)."""
    try:
        return WorkerInfo(
            id=obj["id"],
            hostname=obj.get("hostname") or "",
            pid=int(obj.get("pid") or 0),
            started_at=timestamp(obj["started_at"]),
            heartbeat_at=timestamp(obj["heartbeat_at"]),
            workflows=list(obj.get("workflows") or []),
            queues=list(obj.get("queues") or []),
            version=_text(obj.get("version")),
            auto_upgrade=list(obj.get("auto_upgrade") or []),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedForm(f"a malformed worker object ({exc!r})") from exc
