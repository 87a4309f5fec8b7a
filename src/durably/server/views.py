"""JSON forms of durably's objects: workflows, history entries, workers, results.

Values (inputs, outputs, event payloads, published state) are decoded with the App's serializer
and shown as JSON, with dates, bytes, UUIDs and decimals as durably's one-key tagged objects
(``{"$datetime": "..."}``), which ``JsonSerializer.decode`` turns back into those types. A value
the App cannot decode (written by another App's custom serializer) is shown as
``{"$undecodable": {"text": <the stored text>, "reason": ...}}``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from durably.codec import Codec
from durably.codec import to_json as to_json
from durably.handle import HistoryEntry, RunInfo, WorkflowInfo
from durably.storage.base import TERMINAL_STATUSES, WorkerInfo, WorkflowRecord

__all__ = [
    "history_json",
    "iso",
    "result_json",
    "run_json",
    "stored",
    "to_json",
    "worker_json",
    "workflow_json",
]


def iso(value: datetime | float | None) -> str | None:
    """An ISO-8601 UTC string (from a datetime or epoch seconds), or None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    return value.isoformat()


def stored(codec: Codec, text: str | None) -> Any:
    """A stored payload as a JSON value (see the module's docstring)."""
    return None if text is None else codec.as_json(text)


def _deep(value: Any) -> Any:
    """``value`` with every datetime inside turned into an ISO string."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep(v) for v in value]
    return value


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
    }


def history_json(entry: HistoryEntry) -> dict[str, Any]:
    """The JSON form of a :class:`durably.HistoryEntry`."""
    data = _deep(asdict(entry))
    data["result"] = to_json(entry.result)
    return dict(data)


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
    }


def result_json(rec: WorkflowRecord, codec: Codec) -> dict[str, Any]:
    """The answer of a result poll: ``done`` and, when done, the output and error."""
    done = rec.status in TERMINAL_STATUSES
    body: dict[str, Any] = {"id": rec.id, "status": rec.status.value, "done": done}
    if done:
        body["output"] = stored(codec, rec.output)
        body["error"] = None if rec.error is None else codec.view_error(rec.error)
    return body
