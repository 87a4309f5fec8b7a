"""JSON forms of durably's objects: workflows, history entries, runs and workers come from
:mod:`durably.jsonforms` (shared with the CLI and the remote client); results are the server's.

Values (inputs, outputs, event payloads, published state) are decoded with the App's serializer
and shown as JSON, with dates, bytes, UUIDs and decimals as durably's one-key tagged objects
(``{"$datetime": "..."}``), which ``JsonSerializer.decode`` turns back into those types. A value
the App cannot decode (written by another App's custom serializer) is shown as
``{"$undecodable": {"text": <the stored text>, "reason": ...}}``.
"""

from __future__ import annotations

from typing import Any

from durably.codec import Codec
from durably.jsonforms import history_json, iso, run_json, to_json, worker_json, workflow_json
from durably.storage.base import TERMINAL_STATUSES, WorkflowRecord

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


def stored(codec: Codec, text: str | None) -> Any:
    """A stored payload as a JSON value (see the module's docstring)."""
    return None if text is None else codec.as_json(text)


def result_json(rec: WorkflowRecord, codec: Codec) -> dict[str, Any]:
    """The answer of a result poll: ``done`` and, when done, the output and error."""
    done = rec.status in TERMINAL_STATUSES
    body: dict[str, Any] = {"id": rec.id, "status": rec.status.value, "done": done}
    if done:
        body["output"] = stored(codec, rec.output)
        body["error"] = None if rec.error is None else codec.view_error(rec.error)
    return body
