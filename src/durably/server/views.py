"""JSON forms of durably's objects: workflows, history entries, workers, results.

Values (inputs, outputs, event payloads, published state) appear as durably stores them: plain
JSON, with dates, bytes, UUIDs and decimals as durably's one-key tagged objects (``{"$datetime":
"..."}``), which ``JsonSerializer.decode`` turns back into those types.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from durably.handle import HistoryEntry, RunInfo, WorkflowInfo
from durably.serialization import JsonSerializer
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


def stored(text: str | None) -> Any:
    """A stored payload (JSON text) as a JSON value, tags kept."""
    return None if text is None else json.loads(text)


def to_json(serializer: JsonSerializer, value: Any) -> Any:
    """A decoded value as JSON again (dates, bytes... as durably's tagged objects)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.loads(serializer.encode(value))


def _deep(value: Any) -> Any:
    """``value`` with every datetime inside turned into an ISO string."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep(v) for v in value]
    return value


def workflow_json(info: WorkflowInfo, serializer: JsonSerializer) -> dict[str, Any]:
    """The JSON form of a :class:`durably.WorkflowInfo`; a summary (a listed workflow) has no
    ``input``, ``output`` and ``error``, only their previews."""
    payloads = {} if info.summary else {
        "input": to_json(serializer, info.input),
        "output": to_json(serializer, info.output),
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


def history_json(entry: HistoryEntry, serializer: JsonSerializer) -> dict[str, Any]:
    """The JSON form of a :class:`durably.HistoryEntry`."""
    data = _deep(asdict(entry))
    data["result"] = to_json(serializer, entry.result)
    return dict(data)


def run_json(run: RunInfo, serializer: JsonSerializer) -> dict[str, Any]:
    """The JSON form of a :class:`durably.RunInfo` (an earlier run of a workflow)."""
    return {
        "run": run.run,
        "status": run.status.value,
        "input": to_json(serializer, run.input),
        "output": to_json(serializer, run.output),
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


def result_json(rec: WorkflowRecord) -> dict[str, Any]:
    """The answer of a result poll: ``done`` and, when done, the output and error."""
    done = rec.status in TERMINAL_STATUSES
    body: dict[str, Any] = {"id": rec.id, "status": rec.status.value, "done": done}
    if done:
        body["output"] = stored(rec.output)
        body["error"] = stored(rec.error)
    return body
