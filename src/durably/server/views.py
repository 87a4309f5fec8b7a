"""JSON forms of durably's objects: workflows, history entries, runs and workers come from
:mod:`durably.jsonforms` (shared with the CLI and the remote client); results and published
state are the server's, made from what the App's handles return.

Values (inputs, outputs, event payloads, published state) are decoded with the App's serializer
(:meth:`durably.codec.Codec.view`) and shown as JSON, with dates, bytes, UUIDs and decimals as
durably's one-key tagged objects (``{"$datetime": "..."}``), which ``JsonSerializer.decode``
turns back into those types. A value the App cannot decode (written by another App's custom
serializer) is shown as ``{"$undecodable": {"text": <the stored text>, "reason": ...}}``.
"""

from __future__ import annotations

from typing import Any

from durably.handle import WorkflowInfo
from durably.jsonforms import history_json, iso, run_json, to_json, worker_json, workflow_json
from durably.storage.base import TERMINAL_STATUSES

__all__ = [
    "history_json",
    "iso",
    "result_json",
    "run_json",
    "state_json",
    "to_json",
    "worker_json",
    "workflow_json",
]


def result_json(info: WorkflowInfo) -> dict[str, Any]:
    """The answer of a result poll: ``done`` and, when done, the output and error."""
    done = info.status in TERMINAL_STATUSES
    body: dict[str, Any] = {"id": info.id, "status": info.status.value, "done": done}
    if done:
        body["output"] = to_json(info.output)
        body["error"] = info.error
    return body


def state_json(states: dict[str, Any]) -> dict[str, Any]:
    """A workflow's published state (``handle.states()``) as JSON."""
    return {"state": {key: to_json(value) for key, value in states.items()}}
