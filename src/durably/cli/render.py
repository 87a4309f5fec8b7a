"""What the management commands print: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from durably.codec import Undecodable, to_json
from durably.handle import HistoryEntry, WorkflowInfo
from durably.jsonforms import history_json, versions_json, worker_json, workflow_json
from durably.storage.base import WorkerInfo

__all__ = [
    "dumps",
    "duration",
    "history_json",
    "history_table",
    "preview",
    "table",
    "to_plain",
    "versions_json",
    "versions_table",
    "when",
    "worker_json",
    "workers_table",
    "workflow_detail",
    "workflow_json",
    "workflows_table",
]

_MAX_CELL = 60


def to_plain(value: Any) -> Any:
    """A decoded value as JSON-ready data again (dates, bytes... as durably's tagged objects; a
    value this process cannot decode as ``{"$undecodable": {"text", "reason"}}``)."""
    return to_json(value)


def dumps(value: Any) -> str:
    """``value`` as indented JSON."""
    return json.dumps(value, indent=2, ensure_ascii=False)


# -- for people --------------------------------------------------------------------------------


def when(value: datetime | None) -> str:
    """A UTC time to the second, or ``-``."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """``0.25s``, ``42s``, ``3m04s``, ``2h05m``, ``3d04h`` (``-`` for None)."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def preview(value: Any, width: int = 40) -> str:
    """Compact JSON of ``value`` cut to ``width`` characters (a value this process cannot decode:
    a note and its stored text)."""
    if isinstance(value, str | Undecodable):
        text = str(value)
    else:
        text = json.dumps(to_plain(value), ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows under headers, columns aligned (cells over 60 characters are cut)."""
    cells = [[c if len(c) <= _MAX_CELL else c[: _MAX_CELL - 1] + "…" for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _status(info: WorkflowInfo) -> str:
    return info.status.value + (" (unserved)" if info.unserved else "")


def _took(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    return (end.timestamp() if end is not None else time.time()) - start.timestamp()


def workflows_table(workflows: Sequence[WorkflowInfo]) -> str:
    """The ``durably ls`` table."""
    versions = any(w.version is not None for w in workflows)  # a column only when used
    rows = [
        [w.id, w.name, _status(w), w.queue, *([w.version or "-"] if versions else []),
         when(w.created_at), duration(_took(w.started_at, w.finished_at))]
        for w in workflows
    ]  # fmt: skip
    headers = ["ID", "NAME", "STATUS", "QUEUE", *(["VERSION"] if versions else [])]
    return table([*headers, "CREATED (UTC)", "RAN"], rows)


def _outcome(entry: HistoryEntry) -> str:
    if entry.error:
        return f"{entry.error.get('type', 'error')}: {entry.error.get('message', '')}"
    return preview(entry.result)


def history_table(entries: Sequence[HistoryEntry], *, attempts: bool = True) -> str:
    """The ``durably history`` table; failed attempts of a step are listed under it."""
    rows: list[list[str]] = []
    for e in entries:
        took = e.finished_at.timestamp() - e.started_at.timestamp()
        rows.append([str(e.seq), e.kind, e.name, e.status, str(e.attempts),
                     when(e.started_at), duration(took), _outcome(e)])  # fmt: skip
        if attempts:
            for a in e.failed_attempts:
                error = a.get("error") or {}
                why = f"{error.get('type', 'error')}: {error.get('message', '')}"
                rows.append(["", "", f"  attempt {a.get('attempt')}", "failed", "", "", "", why])
    headers = ["SEQ", "KIND", "NAME", "STATUS", "ATTEMPTS", "STARTED (UTC)", "TOOK", "RESULT"]
    return table(headers, rows)


def workflow_detail(
    info: WorkflowInfo,
    entries: Sequence[HistoryEntry],
    states: dict[str, Any],
    children: Sequence[WorkflowInfo] = (),
) -> str:
    """The ``durably show`` page: the workflow, its steps and its published state."""
    lines = [
        f"workflow  {info.id}",
        f"name      {info.name}",
        f"status    {_status(info)}",
        f"queue     {info.queue}" + (f" (priority {info.priority})" if info.priority else ""),
        f"created   {when(info.created_at)} UTC",
        f"started   {when(info.started_at)}"
        + (f" (running {duration(_took(info.started_at, None))})"
           if info.started_at and not info.finished_at else ""),
        f"finished  {when(info.finished_at)}"
        + (f" (ran {duration(_took(info.started_at, info.finished_at))})"
           if info.finished_at else ""),
    ]  # fmt: skip
    if info.version is not None:
        lines.append(f"version   {info.version}")
    if info.run > 1:
        lines.append(f"run       {info.run}")
    if info.parent_id:
        lines.append(f"parent    {info.parent_id}")
    if info.owner:
        lines.append(f"owner     {info.owner} (epoch {info.epoch})")
    if info.wake_at is not None and info.finished_at is None:
        lines.append(f"wakes at  {when(info.wake_at)}")
    lines.append(f"input     {preview(info.input, 200)}")
    if info.output is not None or info.status.value == "completed":
        lines.append(f"output    {preview(info.output, 200)}")
    if info.error:
        lines.append(
            f"error     {info.error.get('type', 'error')}: {info.error.get('message', '')}"
        )
    lines.append("")
    done = sum(1 for e in entries if e.status == "completed")
    lines.append(f"steps ({done} of {len(entries)} completed)")
    lines.append(history_table(entries, attempts=False) if entries else "  (none yet)")
    if children:
        lines.append("")
        lines.append(f"children ({len(children)})")
        rows = [[c.id, c.name, _status(c)] for c in children]
        lines.append(table(["ID", "NAME", "STATUS"], rows))
    if states:
        lines.append("")
        lines.append("state")
        lines.append(table(["KEY", "VALUE"], [[k, preview(v, 60)] for k, v in states.items()]))
    return "\n".join(lines)


def versions_table(rows: Sequence[dict[str, Any]]) -> str:
    """The ``durably versions`` table, from :func:`versions_json`'s rows."""
    body = [
        [r["version"] or "(none)", str(r["unfinished"]),
         ", ".join(f"{s} {n}" for s, n in r["statuses"].items())]
        for r in rows
    ]  # fmt: skip
    return table(["VERSION", "UNFINISHED", "BY STATUS"], body)


def workers_table(workers: Sequence[WorkerInfo], now: float | None = None) -> str:
    """The ``durably workers`` table."""
    now = time.time() if now is None else now
    versions = any(w.version is not None for w in workers)  # a column only when used
    rows = [
        [w.id, w.hostname, str(w.pid), when(datetime.fromtimestamp(w.started_at, UTC)),
         duration(now - w.heartbeat_at) + " ago", *([w.version or "-"] if versions else []),
         ",".join(w.queues), ",".join(w.workflows)]
        for w in workers
    ]  # fmt: skip
    headers = ["ID", "HOST", "PID", "STARTED (UTC)", "HEARTBEAT"]
    headers += ["VERSION"] if versions else []
    return table([*headers, "QUEUES", "WORKFLOWS"], rows)
