"""``durably.wait_any``: wait for the first of several events, timers and child workflows.

One journal entry (kind ``"any"``, named after what it waits on, e.g. ``"event:approve |
timer"``) holds the whole wait. The first call records it ``waiting`` with each timer's due time
(``{"deadlines": [...]}``), so that every replay waits for the same times. When one of the waits
fires, the entry is resolved, once, with the choice: ``{"index": i, "value": <its value as
stored>}``, plus ``"event": <name>`` when an event won (a child that did not complete: a
``failed`` entry with the child's error). A replay returns the recorded choice, whatever else
has become ready since.

The losers: an event that did not win is not consumed (it stays in the inbox for a later wait);
a child that did not win keeps running (await its handle later, or cancel it); a timer that did
not win is dropped. When several are ready at once (the workflow was parked or down while they
happened), the one that became ready first wins: events by the time they were sent, timers by
their due time, children by the time they ended; at the same time, events win (in the order
sent), then the first in argument order.

Waiting holds no coroutine or thread past the eviction threshold: the workflow parks as a lone
wait does, woken by any of the events, children or the earliest timer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

from durably.engine.waits import WaitingExecution, Waits
from durably.errors import ConfigurationError
from durably.storage.base import (
    ChildOutcome,
    ConsumeEvent,
    InboxEvent,
    JournalEntry,
    RecordEntry,
    WorkflowStatus,
    WriteOp,
)
from durably.waitables import EventWait, Fired, TimerWait, Waitable, describe

__all__ = ["ANY", "target", "wait"]

ANY = "any"
"""The journal kind of a ``wait_any``."""

_Ready = tuple[float, int, InboxEvent | JournalEntry | ChildOutcome | None]
"""A wait that fired: (when it became ready, its index, what fired)."""


def target(ctx: WaitingExecution, waits: Sequence[Waitable]) -> tuple[int, JournalEntry]:
    """Take the seq of a ``wait_any`` over ``waits``; the first time, record its timers."""
    for w in waits:
        if not isinstance(w, EventWait | TimerWait) and w._scope is not cast(object, ctx):
            raise ConfigurationError(
                f"wait_any() in workflow {ctx.workflow_id!r} was given the handle of child "
                f"{w.id!r}, which another workflow started: wait only on this workflow's "
                "children"
            )
    seq, entry = ctx.take(ANY, describe(waits))
    if entry is None:
        now = ctx.runtime.time()
        deadlines = [_deadline(w, now) for w in waits]
        waiting = ctx.runtime.codec.encode({"deadlines": deadlines}, what="wait_any timers")
        entry = ctx.new_entry(seq, ANY, describe(waits), "waiting", waiting)
        ctx.runtime.record(RecordEntry(entry), ctx.on_written)
    return seq, entry


def _deadline(w: Waitable, now: float) -> float | None:
    if not isinstance(w, TimerWait):
        return None
    if w.until is not None:
        return w.until
    return now + max(0.0, w.seconds or 0.0)


async def wait(
    waits: Waits,
    seq: int,
    entry: JournalEntry,
    specs: Sequence[Waitable],
    keys: Sequence[str | None],
) -> Fired:
    """The first of ``specs`` to fire (recorded in the entry at ``seq``)."""
    ctx = waits.ctx
    if entry.status != "waiting":
        return _fired(waits, entry, specs, keys)
    codec = ctx.runtime.codec
    recorded = codec.decode(entry.result or "{}", what="wait_any timers")
    deadlines: list[float | None] = list(recorded.get("deadlines") or [])
    deadlines += [None] * (len(specs) - len(deadlines))
    while True:
        waits.deliver_cancel_if_pending(seq)
        now = ctx.runtime.time()
        ready = _first_ready(waits, specs, deadlines, now)
        if ready is not None:
            done = await _resolve(waits, seq, entry, specs, ready)
            return _fired(waits, done, specs, keys)
        due = [d for d in deadlines if d is not None]
        await waits.block(
            seq, ANY, entry.name, min(due) if due else None,
            events=tuple(dict.fromkeys(s.name for s in specs if isinstance(s, EventWait))),
            children=tuple(s.id for s in specs if not isinstance(s, EventWait | TimerWait)),
        )  # fmt: skip


def _first_ready(
    waits: Waits, specs: Sequence[Waitable], deadlines: list[float | None], now: float
) -> _Ready | None:
    """The wait that became ready first, if any is."""
    ready: list[_Ready] = []
    for i, spec in enumerate(specs):
        if isinstance(spec, EventWait):
            event = next((e for e in waits.inbox if e.name == spec.name), None)
            if event is not None:
                ready.append((event.created_at, i, event))
        elif isinstance(spec, TimerWait):
            due = deadlines[i]
            if due is not None and now >= due:
                ready.append((due, i, None))
        else:
            started = waits.ctx.journal.get(spec._seq)
            if started is not None and started.status != "waiting":  # awaited, or not started
                ready.append((started.finished_at, i, started))
                continue
            outcome = waits.children.get(spec.id)
            if outcome is not None:
                ended = outcome.finished_at if outcome.finished_at is not None else now
                ready.append((ended, i, outcome))
    return min(ready, key=_order) if ready else None


def _order(ready: _Ready) -> tuple[float, int, int, int]:
    """When it became ready; at the same time, events first (in the order sent), then by
    argument order."""
    when, index, what = ready
    if isinstance(what, InboxEvent):
        return (when, 0, what.id, index)
    return (when, 1, 0, index)


async def _resolve(
    waits: Waits, seq: int, entry: JournalEntry, specs: Sequence[Waitable], ready: _Ready
) -> JournalEntry:
    """Record the choice ``ready`` (consuming its event, if an event won) and return the
    resolved entry."""
    ctx = waits.ctx
    codec = ctx.runtime.codec
    _, index, what = ready
    status, value, error = "completed", None, None
    op: WriteOp
    if isinstance(what, InboxEvent):
        value = what.payload
        if value is None:
            value = codec.encode(None, what=f"payload of event {what.name!r}")
    elif isinstance(what, JournalEntry):  # the child's own entry was resolved already
        status, value, error = what.status, what.result, what.error
    elif isinstance(what, ChildOutcome):
        if what.status is WorkflowStatus.COMPLETED:
            value = what.output
        else:
            info = codec.decode_error(what.error) if what.error else {}
            info.update(status=what.status.value, child_id=what.id)
            status, error = "failed", codec.encode_error(info)
    chosen: dict[str, Any] = {"index": index, "value": value}
    if isinstance(what, InboxEvent):
        chosen["event"] = what.name  # for readers of the journal (views, crash tests)
    choice = codec.encode(chosen, what="wait_any choice")
    done = ctx.new_entry(seq, ANY, entry.name, status, choice, error)
    if isinstance(what, InboxEvent):
        waits.inbox.remove(what)
        op = ConsumeEvent(done, what.id)
    else:
        op = RecordEntry(done)
    await ctx.commit_op(op)
    ctx.journal[seq] = done
    return done


def _fired(
    waits: Waits, entry: JournalEntry, specs: Sequence[Waitable], keys: Sequence[str | None]
) -> Fired:
    """The :class:`Fired` a resolved ``wait_any`` entry records (or the child's error)."""
    codec = waits.ctx.runtime.codec
    choice = codec.decode(entry.result or "{}", what="wait_any choice")
    index = int(choice["index"])
    value: str | None = choice.get("value")
    spec = specs[index]
    if isinstance(spec, EventWait):
        return Fired(index, keys[index], None if value is None else codec.decode(value))
    if isinstance(spec, TimerWait):
        return Fired(index, keys[index], None)
    as_child = dataclasses.replace(entry, kind="child", result=value)
    return Fired(index, keys[index], waits.child_value(as_child, spec.id, spec._workflow))
