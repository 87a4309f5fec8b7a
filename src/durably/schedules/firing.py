"""Turning a schedule's ticks into workflows: the one place where due ticks, triggers and
backfills meet the overlap and catch-up policies.

Every decision is written with :meth:`Store.update_schedule <durably.storage.base.Store.
update_schedule>`: a compare-and-set on the schedule's revision that, in the same transaction,
creates the tick's workflow (id ``NAME@<tick>``, created once). Two workers that tick one
schedule at once both decide; one write lands, the other finds the revision moved and does
nothing. A crash before the commit leaves the schedule where it was (the next worker decides
again); after it, the tick is done. So each tick starts exactly one workflow (or is recorded as
skipped or missed), whatever crashes.

Stopping earlier runs (``cancel_previous``, ``terminate_previous``) follows the write: a crash
in between leaves them running (the new run has started all the same).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from durably.schedules.spec import Timing, jitter_delay, tick_id
from durably.storage.base import ScheduleRecord, Store, WorkflowRecord, WorkflowStatus

if TYPE_CHECKING:
    from durably.codec import Codec

__all__ = ["UNFINISHED", "Firing", "ScheduleTick"]

UNFINISHED = (WorkflowStatus.PENDING, WorkflowStatus.RUNNING, WorkflowStatus.SUSPENDED)
MAX_TICKS = 10_000
"""The most ticks one decision (a catch-up, a backfill) handles."""


@dataclass(frozen=True, slots=True)
class ScheduleTick:
    """What one tick did: its time (in the schedule's time zone), its workflow id, and
    ``result``: ``started``, ``exists`` (that workflow was there already), ``skipped``,
    ``buffered`` or ``missed``."""

    tick: datetime
    workflow_id: str
    result: str


@dataclass(slots=True)
class _Decision:
    """One decision being made about a schedule: its new row, the workflows to create, what
    each tick did, and the runs to stop once it is written."""

    rec: ScheduleRecord
    timing: Timing
    running: list[str]
    overlap: str
    creations: list[WorkflowRecord] = dataclasses.field(default_factory=list)
    ticks: list[tuple[float, str, str]] = dataclasses.field(default_factory=list)
    stop: list[str] = dataclasses.field(default_factory=list)
    record_last: bool = True
    """Whether the decision's last tick becomes the schedule's ``last_*``."""


class Firing:
    """Makes the decisions of the schedules in ``store``. ``codec`` encodes why a run was
    terminated; ``version`` is recorded on the workflows started (the code's version)."""

    def __init__(
        self, store: Store, codec: Codec, version: str | None, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.codec = codec
        self.version = version
        self.clock = clock

    def running(self, rec: ScheduleRecord) -> list[str]:
        """The ids of the schedule's unfinished runs (workflows of its name whose id starts
        with ``NAME@``)."""
        found = self.store.list_workflows(
            statuses=UNFINISHED, name=rec.workflow_name, id_prefix=rec.name + "@", limit=1000
        )
        return [r.id for r in found]

    # -- the decisions ---------------------------------------------------------------------

    def tick(self, rec: ScheduleRecord, now: float) -> list[ScheduleTick] | None:
        """Handle what is due of ``rec`` at ``now`` (its buffered tick once its earlier runs
        ended; its due ticks: the missed ones recorded, the others run under its overlap
        policy) and advance it. None if another writer changed it first (read it again)."""
        d = self._decision(rec, rec.overlap)
        new = d.rec
        if rec.buffered_at is not None and not d.running:
            new.buffered_at = None
            self._start(d, rec.buffered_at, tick_id(rec.name, rec.buffered_at, d.timing.tz))
        if rec.next_run_at is not None and rec.due_at is not None and rec.due_at <= now:
            due: list[float] = []
            tick: float | None = rec.next_run_at
            while tick is not None and len(due) < MAX_TICKS:
                if tick + jitter_delay(rec.name, tick, rec.jitter) > now:
                    break
                due.append(tick)
                tick = d.timing.next_tick(tick)
            new.next_run_at = tick
            new.due_at = None if tick is None else tick + jitter_delay(rec.name, tick, rec.jitter)
            window = rec.catchup_window
            keep = due[-1:] if window is None else [t for t in due if t >= now - window]
            for t in due[: len(due) - len(keep)]:
                d.ticks.append((t, tick_id(rec.name, t, d.timing.tz), "missed"))
                new.missed += 1
            for t in keep:
                self._apply(d, t, tick_id(rec.name, t, d.timing.tz))
        if not d.ticks and new.next_run_at == rec.next_run_at:
            return []  # a buffered tick still waiting: nothing to write
        return self._write(d, now)

    def run_ticks(
        self, rec: ScheduleRecord, ticks: list[float], overlap: str | None, *, trigger: bool
    ) -> list[ScheduleTick] | None:
        """Start the workflows of ``ticks`` (a trigger's one, a backfill's) under ``overlap``
        (default: the schedule's), leaving its next tick as it is. None if another writer
        changed the schedule first."""
        d = self._decision(rec, overlap or rec.overlap)
        d.record_last = trigger  # a backfill's ticks are older than the last: not "the last"
        for t in ticks:
            wid = tick_id(rec.name, t, d.timing.tz)
            if trigger:  # to the microsecond: never a tick's id
                local = datetime.fromtimestamp(t, d.timing.tz)
                wid = f"{rec.name}@{local.isoformat(timespec='microseconds')}"
            self._apply(d, t, wid)
        return self._write(d, self.clock())

    # -- parts -----------------------------------------------------------------------------

    def _decision(self, rec: ScheduleRecord, overlap: str) -> _Decision:
        timing = Timing.from_json(rec.spec, rec.start_at, rec.end_at)
        # allow_all asks nothing of the earlier runs (unless a tick is buffered from before)
        blind = overlap == "allow_all" and rec.buffered_at is None
        running = [] if blind else self.running(rec)
        return _Decision(dataclasses.replace(rec), timing, running, overlap)

    def _apply(self, d: _Decision, tick: float, wid: str) -> None:
        """Tick ``tick`` (workflow ``wid``) under the overlap policy."""
        if not d.running or d.overlap == "allow_all":
            self._start(d, tick, wid)
        elif d.overlap == "skip":
            d.ticks.append((tick, wid, "skipped"))
        elif d.overlap == "buffer_one":
            if d.rec.buffered_at is None:
                d.rec.buffered_at = tick
                d.ticks.append((tick, wid, "buffered"))
            else:
                d.ticks.append((tick, wid, "skipped"))
        else:  # cancel_previous, terminate_previous
            d.stop.extend(r for r in d.running if r not in d.stop)
            d.running = []
            self._start(d, tick, wid)

    def _start(self, d: _Decision, tick: float, wid: str) -> None:
        rec, now = d.rec, self.clock()
        d.creations.append(
            WorkflowRecord(
                id=wid,
                name=rec.workflow_name,
                status=WorkflowStatus.PENDING,
                input=rec.input,
                created_at=now,
                updated_at=now,
                queue=rec.queue,
                version=self.version,
            )
        )
        d.ticks.append((tick, wid, "started"))
        d.running.append(wid)

    def _write(self, d: _Decision, now: float) -> list[ScheduleTick] | None:
        new = d.rec
        if d.ticks and d.record_last:
            tick, wid, result = d.ticks[-1]
            new.last_tick, new.last_workflow_id, new.last_result = tick, wid, result
        new.updated_at = now
        created = self.store.update_schedule(new, d.rec.revision, d.creations)
        if created is None:
            return None
        made = {w.id: ok for w, ok in zip(d.creations, created, strict=True)}
        for wid in d.stop:
            self._stop(wid, d.overlap, new.name, now)
        tz = d.timing.tz
        return [
            ScheduleTick(
                datetime.fromtimestamp(t, tz),
                wid,
                "exists" if result == "started" and not made.get(wid, True) else result,
            )
            for t, wid, result in d.ticks
        ]

    def _stop(self, workflow_id: str, overlap: str, name: str, now: float) -> None:
        if overlap == "cancel_previous":
            self.store.request_cancel(workflow_id, now)
            return
        message = f"terminated by a newer run of schedule {name!r} (overlap=terminate_previous)"
        error = self.codec.encode_error(
            {"type": "Terminated", "code": "terminated", "message": message}
        )
        self.store.terminate(workflow_id, error, now)
