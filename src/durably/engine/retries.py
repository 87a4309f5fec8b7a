"""Durable retry backoff: the wait between two attempts of a step is a durable timer.

When an attempt fails and the step's :class:`~durably.Retry` policy calls for another, the
step's journal entry is recorded as ``waiting`` with the number of attempts made so far
(``attempts``), the time the next one is due (``result``: ``{"retry_at": t}``) and the last
attempt's error (``error``). The wait itself is an ordinary durable wait
(:meth:`~durably.engine.waits.Waits.block`, with no event and no child): a short one stays in
memory, one longer than the worker's eviction threshold parks the workflow with ``wake_at`` at
the retry time, holding no coroutine or thread.

A replay that meets the ``waiting`` entry (after a park, a crash, a restart) does not run the
attempts it records again: it waits for the recorded time, if still ahead, and runs attempt
``attempts + 1``; the entry is replaced by the step's outcome when it completes or gives up. So
the attempt count survives crashes: however often the worker dies, at most ``Retry.attempts``
attempts are numbered (an attempt the crash interrupted before it was recorded runs again under
the same number, as a step whose result was not committed does).
"""

from __future__ import annotations

from typing import Any

from durably.codec import Codec
from durably.engine.waits import WaitingExecution, Waits
from durably.storage.base import JournalEntry, RecordEntry

__all__ = ["RETRY_WAIT", "record", "resumed", "wait"]

RETRY_WAIT = "retry"
"""The kind of the durable wait between two attempts of a step (a timer)."""


def record(
    ctx: WaitingExecution,
    seq: int,
    step: str,
    attempts: int,
    error: str,
    first_started: float,
    retry_at: float,
) -> None:
    """Record (fire-and-forget: durable before any later commit or park) that step ``step``
    at ``seq`` made ``attempts`` attempts, the last failing with ``error``, and that the next
    one is due at ``retry_at``."""
    rt = ctx.runtime
    due = rt.codec.encode({"retry_at": retry_at}, what="retry time")
    entry = ctx.new_entry(seq, "step", step, "waiting", due, error)
    entry.attempts = attempts
    entry.started_at = first_started
    rt.record(RecordEntry(entry), ctx.on_written)


def resumed(codec: Codec, entry: JournalEntry) -> tuple[int, float, float]:
    """What a step's ``waiting`` entry records: (attempts made, when the first one started,
    when the next one is due)."""
    recorded: Any = codec.decode(entry.result or "{}", what="retry time")
    retry_at = recorded.get("retry_at") if isinstance(recorded, dict) else None
    due = float(retry_at) if isinstance(retry_at, int | float) else entry.finished_at
    return entry.attempts, entry.started_at, due


async def wait(waits: Waits, seq: int, step: str, retry_at: float) -> None:
    """Wait durably until ``retry_at`` (the step at ``seq`` is between two attempts: not busy,
    so the workflow may be parked meanwhile). A pending cancellation is raised here."""
    if waits.ctx.runtime.time() >= retry_at:
        return
    waits.step_finished()
    try:
        while waits.ctx.runtime.time() < retry_at:
            await waits.block(seq, RETRY_WAIT, step, retry_at)
    finally:
        waits.step_started()
