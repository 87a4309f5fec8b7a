"""A workflow's whole history as a JSON document: what ``durably export`` writes and
``durably.testing.replay`` reads.

Format ``durably.history/1`` (one JSON object; payloads are the stored texts, verbatim, so that
a replay decodes exactly what a worker would)::

    {
      "format": "durably.history/1",
      "exported_at": 1764800000.0,             # Unix seconds
      "workflow": {"id": ..., "name": ..., "status": ..., "input": "<encoded call>", "run": 1,
                   "cancel_key": null, ...},   # every column of the workflow's record
      "journal": [{"seq": 0, "key": "0", "kind": "step", "name": "charge", "status": "completed",
                   "result": "<encoded value>", "error": null, "attempts": 1, ...}, ...],
      "attempts": [{"seq": 0, "attempt": 1, "error": "<encoded error>", ...}, ...],
      "events": [{"id": 7, "name": "approved", "payload": "<encoded>", "created_at": ...}],
      "children": [{"id": ..., "status": "completed", "output": ..., "error": ...}],
      "state": {"progress": "<encoded value>"},
      "runs": [{"run": 1, "input": ..., "output": ..., "status": ..., ...}]
    }

``events`` are the events sent and not consumed yet (consumed ones are in the journal);
``children`` the finished children whose outcome the journal has not recorded yet; ``runs`` the
earlier runs of a workflow that continued as new (the journal is the current run's).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from durably.errors import ConfigurationError, WorkflowNotFoundError
from durably.storage.base import (
    JournalEntry,
    RunRecord,
    StepAttempt,
    Store,
    WorkflowRecord,
    WorkflowStatus,
)

__all__ = ["FORMAT", "History", "export_history", "load_histories"]

FORMAT = "durably.history/1"
"""The format tag of an exported history (bumped if its meaning ever changes)."""


@dataclass(slots=True)
class History:
    """One workflow's history: its record and journal (what a replay needs), and the rest."""

    workflow: WorkflowRecord
    journal: list[JournalEntry]
    attempts: list[StepAttempt] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)
    runs: list[RunRecord] = field(default_factory=list)
    source: str = ""
    """Where it was read from (a file's path), for messages."""

    def to_dict(self) -> dict[str, Any]:
        """The ``durably.history/1`` document."""
        return {
            "format": FORMAT,
            "exported_at": time.time(),
            "workflow": _plain(self.workflow),
            "journal": [_plain(e) for e in self.journal],
            "attempts": [_plain(a) for a in self.attempts],
            "events": self.events,
            "children": self.children,
            "state": self.state,
            "runs": [_plain(r) for r in self.runs],
        }

    @classmethod
    def from_dict(cls, doc: Any, source: str = "") -> History:
        """Read a ``durably.history/1`` document; ConfigurationError if it is not one."""
        where = f" in {source}" if source else ""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise ConfigurationError(
                f"not a durably history{where}: expected format {FORMAT!r}, found {found!r}; "
                "write one with `durably export ID -o FILE`"
            )
        try:
            wf = dict(doc["workflow"])
            wf["status"] = WorkflowStatus(wf["status"])
            return cls(
                workflow=WorkflowRecord(**wf),
                journal=[JournalEntry(**e) for e in doc["journal"]],
                attempts=[StepAttempt(**a) for a in doc.get("attempts", [])],
                events=list(doc.get("events", [])),
                children=list(doc.get("children", [])),
                state=dict(doc.get("state", {})),
                runs=[
                    RunRecord(**{**r, "status": WorkflowStatus(r["status"])})
                    for r in doc.get("runs", [])
                ],
                source=source,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"malformed durably history{where}: {type(exc).__name__}: {exc}"
            ) from None


def _plain(record: Any) -> dict[str, Any]:
    out = dataclasses.asdict(record)
    for key, value in out.items():
        if isinstance(value, WorkflowStatus):
            out[key] = value.value
    return out


def export_history(store: Store, workflow_id: str) -> History:
    """Read workflow ``workflow_id``'s whole history from ``store`` (reads only)."""
    record = store.get_workflow(workflow_id)
    if record is None:
        raise WorkflowNotFoundError(f"no workflow with id {workflow_id!r}", workflow_id=workflow_id)
    signals = store.poll_signals([workflow_id], 0)
    return History(
        workflow=record,
        journal=store.get_journal(workflow_id),
        attempts=store.get_attempts(workflow_id),
        events=[
            {"id": e.id, "name": e.name, "payload": e.payload, "created_at": e.created_at}
            for e in signals.events
            if e.workflow_id == workflow_id
        ],
        children=[
            {"id": c.id, "status": c.status.value, "output": c.output, "error": c.error}
            for c in signals.children.get(workflow_id, [])
        ],
        state=store.get_state(workflow_id),
        runs=store.list_runs(workflow_id),
    )


def _read(path: Path) -> list[History]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read history {str(path)!r}: {exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"history {str(path)!r} is not JSON: {exc}") from None
    return _histories(doc, str(path))


def _histories(doc: Any, source: str) -> list[History]:
    if isinstance(doc, list):
        return [h for item in doc for h in _histories(item, source)]
    return [History.from_dict(doc, source)]


def load_histories(source: Any) -> list[History]:
    """Histories from ``source``: a path to an exported file (or to a folder: every ``*.json``
    in it, sorted), a ``durably.history/1`` dict, a :class:`History`, or a list of those."""
    if isinstance(source, History):
        return [source]
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            files = sorted(path.glob("*.json"))
            if not files:
                raise ConfigurationError(f"no exported histories (*.json) in {str(path)!r}")
            return [h for f in files for h in _read(f)]
        return _read(path)
    if isinstance(source, dict):
        return [History.from_dict(source)]
    if isinstance(source, Iterable):
        return [h for item in source for h in load_histories(item)]
    raise ConfigurationError(
        f"expected a history: a path, a folder, a dict or a list of them, got "
        f"{type(source).__name__}"
    )
