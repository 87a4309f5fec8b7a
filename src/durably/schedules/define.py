"""Writing a schedule's definition: create it, or update the stored one where it differs.

A worker writes every schedule its App declares when it starts (a deploy), and
``app.schedule(...)`` writes at once; both go through :func:`put`, which compares what is stored
with what is declared and changes only what differs. A change of when it ticks (cron, every,
time zone, bounds, jitter) moves its next tick to the first one after now; other changes
(arguments, overlap, note...) keep it. Whether it is paused is the operator's: a declaration
sets it only when it creates the schedule.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from durably.schedules.spec import Schedule, Timing, jitter_delay
from durably.storage.base import ScheduleRecord, Store

if TYPE_CHECKING:
    from durably.codec import Codec

__all__ = ["DEFINITION", "TIMING", "first_tick", "put", "record_of"]

TIMING = ("spec", "start_at", "end_at", "jitter")
"""The fields that say when a schedule ticks."""
DEFINITION = (*TIMING, "workflow_name", "input", "queue", "overlap", "catchup_window", "note")
"""The fields a definition sets (the rest is where the schedule is, and what it did)."""


def record_of(
    schedule: Schedule, workflow_name: str, codec: Codec, now: float, queue: str = "default"
) -> ScheduleRecord:
    """The stored form of ``schedule`` (of the workflow ``workflow_name``), as if created at
    ``now``: its arguments encoded with ``codec``, its first tick the first after ``now``."""
    assert schedule.name is not None
    timing = schedule.timing
    encoded = codec.encode_call(
        tuple(schedule.args), dict(schedule.kwargs),
        workflow_id=f"{schedule.name}@...", name=workflow_name,
    )  # fmt: skip
    rec = ScheduleRecord(
        name=schedule.name, workflow_name=workflow_name, spec=timing.spec_json(),
        input=encoded, created_at=now, updated_at=now, queue=queue,
        overlap=schedule.overlap, catchup_window=schedule.catchup_seconds,
        jitter=schedule.jitter_seconds, start_at=timing.start_at, end_at=timing.end_at,
        paused=schedule.paused, note=schedule.note,
        pause_reason="paused in its definition" if schedule.paused else None,
    )  # fmt: skip
    return first_tick(rec, now)


def first_tick(rec: ScheduleRecord, now: float) -> ScheduleRecord:
    """``rec`` with its next tick the first after ``now`` (and no buffered tick)."""
    tick = Timing.from_json(rec.spec, rec.start_at, rec.end_at).next_tick(now)
    rec.next_run_at = tick
    rec.due_at = None if tick is None else tick + jitter_delay(rec.name, tick, rec.jitter)
    rec.buffered_at = None
    return rec


def put(
    store: Store, declared: ScheduleRecord, now: float, codec: Codec | None = None
) -> tuple[ScheduleRecord, str]:
    """Create ``declared``, or bring the stored schedule of its name to its definition.

    Returns the stored schedule and what was done: ``created``, ``updated`` or ``unchanged``.
    Safe under concurrency (every worker of a deploy does it at once): a compare-and-set, read
    again when another writer came first. With ``codec``, stored arguments that differ only in
    their encoding (payload encryption uses a new nonce for every value) count as unchanged."""
    while True:
        old = store.get_schedule(declared.name)
        if old is None:
            if store.insert_schedule(declared):
                return declared, "created"
            continue
        changed = [f for f in DEFINITION if getattr(old, f) != getattr(declared, f)]
        if (
            "input" in changed
            and codec is not None
            and codec.same_stored(old.input, declared.input)
        ):
            changed.remove("input")
        if not changed:
            return old, "unchanged"
        new = dataclasses.replace(old, updated_at=now)
        for f in changed:
            setattr(new, f, getattr(declared, f))
        if any(f in TIMING for f in changed):
            first_tick(new, now)
        if store.update_schedule(new, old.revision) is not None:
            return new, "updated"
