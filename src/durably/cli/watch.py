"""``durably show --watch``: follow a workflow until it ends, redrawing its page on a terminal or
printing one line per change when the output is a pipe."""

from __future__ import annotations

from typing import Any, TextIO

from durably.cli import render
from durably.errors import WorkflowFailedError, WorkflowTimeoutError
from durably.storage.base import TERMINAL_STATUSES, WorkflowStatus

__all__ = ["watch"]

_CLEAR = "\x1b[H\x1b[2J"


def watch(handle: Any, out: TextIO, *, interval: float, redraw: bool) -> WorkflowStatus:
    """Follow ``handle``'s workflow until it ends; its final status. ``redraw``: clear and draw
    the whole page after each change (a terminal), else print each change as a line."""
    seen: set[tuple[int, str]] = set()
    status: WorkflowStatus | None = None
    while True:
        info = handle.info()
        entries = handle.history()
        if redraw:
            page = render.workflow_detail(info, entries, handle.states(), handle.children())
            footer = "" if info.status in TERMINAL_STATUSES else "\n\nwatching… (Ctrl-C stops)"
            out.write(_CLEAR + page + footer + "\n")
        else:
            if info.status is not status:
                out.write(f"status   {info.status.value}" + (" (unserved)" if info.unserved
                                                              else "") + "\n")  # fmt: skip
            for e in entries:
                if (e.seq, e.status) not in seen:
                    seen.add((e.seq, e.status))
                    outcome = render.preview(e.error or e.result, 60)
                    out.write(f"step {e.seq:<3} {e.kind} {e.name}: {e.status} {outcome}\n")
        out.flush()
        status = info.status
        if status in TERMINAL_STATUSES:
            if not redraw:
                if info.error:
                    error = info.error
                    out.write(f"error    {error.get('type')}: {error.get('message')}\n")
                elif status is WorkflowStatus.COMPLETED:
                    out.write(f"output   {render.preview(info.output, 200)}\n")
            return status
        try:
            handle.result(timeout=interval)  # returns at once when it ends
        except (WorkflowTimeoutError, WorkflowFailedError):
            pass
