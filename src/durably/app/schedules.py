"""Schedules from an App: declare them (its workers write them at start), write them now, and
operate them (list, show, update, pause, unpause, trigger, backfill, delete).

A component of :class:`durably.App` (``app.schedules``); ``app.schedule(...)`` and
``app.add_schedule(...)`` forward here. Every change is a compare-and-set on the stored
schedule (see :mod:`durably.schedules.firing`), so operators and tickers never undo each other.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Unpack

from durably import limits
from durably.definitions import Registry, Workflow
from durably.errors import ConfigurationError, ScheduleNotFoundError
from durably.queues import DEFAULT_QUEUE
from durably.schedules.define import first_tick, put, record_of
from durably.schedules.firing import MAX_TICKS, Firing, ScheduleTick
from durably.schedules.spec import (
    Schedule,
    ScheduleInfo,
    ScheduleOptions,
    Timing,
    check_changes,
    check_overlap,
    check_schedule_name,
    info_of,
)
from durably.storage.base import ScheduleRecord

if TYPE_CHECKING:
    from durably.app.database import Database
    from durably.codec import Codec

__all__ = ["ScheduleOperations"]


@dataclass(frozen=True, slots=True)
class ScheduleOperations:
    """The schedules of an App's database (``app.schedules``).

    ``database``: where they are stored; ``registry``: the App's definitions (its declared
    schedules, its version); ``codec``: how arguments are stored; ``clock``: now;
    ``resolve``: a workflow (function or name) to its registered name; ``notify``: wakes the
    App's worker after a start.
    """

    database: Database
    registry: Registry
    codec: Codec
    clock: Callable[[], float]
    resolve: Callable[[Any], str]
    notify: Callable[[], None]

    # -- definitions -------------------------------------------------------------------------

    def declare(self, schedule: Schedule, workflow: Workflow[..., Any] | None = None) -> Schedule:
        """Declare ``schedule`` on the App (of ``workflow`` when it names none): each worker
        of the App writes it when it starts. Returns it, with its name and workflow set."""
        target: Any = schedule.workflow if schedule.workflow is not None else workflow
        if target is None:
            raise ConfigurationError(
                f"schedule {schedule.name!r} names no workflow: pass Schedule(name, workflow, ...)"
            )
        if isinstance(target, Workflow):
            if self.registry.workflows.get(target.name) is not target:
                raise ConfigurationError(
                    f"schedule {schedule.name!r}: workflow {target.name!r} is registered on "
                    "another App; declare the schedule on the App whose @app.workflow it is"
                )
            name = target.name
        else:
            name = limits.check_name(target, "workflow name")
        if schedule.name is None:
            schedule = dataclasses.replace(schedule, name=name)
        schedule = dataclasses.replace(schedule, workflow=name)
        assert schedule.name is not None
        queue = schedule.queue or DEFAULT_QUEUE
        record_of(schedule, name, self.codec, self.clock(), queue)  # its arguments encode: now
        self.registry.schedules[schedule.name] = (schedule, name, queue)
        return schedule

    def create(
        self, name: str, workflow: Workflow[..., Any] | str, /, **options: Unpack[ScheduleOptions]
    ) -> ScheduleInfo:
        """Define the schedule ``name`` of ``workflow`` (``cron=`` or ``every=``, and the other
        options of :class:`durably.Schedule`), write it to the database now (create it, or
        update the stored one where it differs) and declare it on the App (its workers write it
        again when they start). ``app.schedule(...)`` is this. Returns it as stored."""
        return self.put(self.declare(Schedule(name, workflow, **options)))

    def put(self, schedule: Schedule) -> ScheduleInfo:
        """Create ``schedule`` in the database now, or update the stored one to it (see
        :func:`durably.schedules.define.put`); returns it as stored."""
        if schedule.name is None or schedule.workflow is None:
            raise ConfigurationError("a schedule to write needs its name and its workflow")
        name = self.resolve(schedule.workflow)
        now = self.clock()
        rec = record_of(schedule, name, self.codec, now, schedule.queue or DEFAULT_QUEUE)
        stored, _ = put(self.database.store, rec, now, self.codec)
        return info_of(stored)

    # -- reading -----------------------------------------------------------------------------

    def _get(self, name: str) -> ScheduleRecord:
        rec = self.database.store.get_schedule(check_schedule_name(name))
        if rec is None:
            raise ScheduleNotFoundError(
                f"no schedule named {name!r} on {self.database.safe_database_url}; "
                "`durably schedules ls` lists them",
                name=name,
            )
        return rec

    def get(self, name: str) -> ScheduleInfo:
        """The schedule ``name``: its definition, next tick and last result."""
        return info_of(self._get(name))

    def list(self) -> list[ScheduleInfo]:
        """Every schedule, by name."""
        return [info_of(r) for r in self.database.store.list_schedules()]

    # -- changes -----------------------------------------------------------------------------

    def _change(self, name: str, change: Callable[[ScheduleRecord], None]) -> ScheduleInfo:
        """Apply ``change`` to the stored schedule with a compare-and-set (read again if another
        writer came first)."""
        store = self.database.store
        while True:
            rec = self._get(name)
            revision = rec.revision
            new = dataclasses.replace(rec, updated_at=self.clock())
            change(new)
            if store.update_schedule(new, revision) is not None:
                return info_of(new)

    def update(self, name: str, **changes: Any) -> ScheduleInfo:
        """Change the schedule's definition: any of ``workflow``, ``cron``, ``every``,
        ``timezone``, ``args``, ``kwargs``, ``overlap``, ``catchup_window``, ``jitter``,
        ``start_at``, ``end_at``, ``queue``, ``note`` (as :class:`durably.Schedule` takes them;
        ``cron=`` replaces an ``every=`` and the other way round). A change of when it ticks
        moves its next tick to the first one after now."""
        check_changes(changes)
        rec = self._get(name)
        current = self._schedule_of(rec)
        if "every" in changes and "cron" not in changes:
            changes["cron"] = None
        if "cron" in changes and "every" not in changes:
            changes["every"] = None
        wanted = dataclasses.replace(current, **changes)
        workflow = self.resolve(wanted.workflow)
        now = self.clock()
        declared = record_of(wanted, workflow, self.codec, now, wanted.queue or DEFAULT_QUEUE)
        if "args" not in changes and "kwargs" not in changes:
            declared.input = rec.input
        declared.paused, declared.pause_reason = rec.paused, rec.pause_reason
        stored, _ = put(self.database.store, declared, now, self.codec)
        return info_of(stored)

    def _schedule_of(self, rec: ScheduleRecord) -> Schedule:
        """The stored definition as a :class:`Schedule` (its arguments left out)."""
        timing = Timing.from_json(rec.spec, rec.start_at, rec.end_at)
        return Schedule(
            rec.name, rec.workflow_name, cron=timing.cron, every=timing.every,
            timezone=timing.timezone, overlap=rec.overlap,  # type: ignore[arg-type]
            catchup_window=rec.catchup_window, jitter=rec.jitter or None,
            start_at=rec.start_at, end_at=rec.end_at, queue=rec.queue, note=rec.note,
        )  # fmt: skip

    def pause(self, name: str, reason: str = "") -> ScheduleInfo:
        """Pause the schedule: no tick starts anything until :meth:`unpause`. ``reason`` is
        shown with it."""
        reason = limits.check_text(
            reason, "reason", max_length=limits.MAX_REASON_LENGTH, allow_empty=True
        )

        def paused(rec: ScheduleRecord) -> None:
            rec.paused, rec.pause_reason = True, reason or "paused"

        return self._change(name, paused)

    def unpause(self, name: str) -> ScheduleInfo:
        """Let a paused schedule tick again, from its first tick after now (the ticks of the
        pause are not run: backfill them if they should be)."""
        now = self.clock()

        def unpaused(rec: ScheduleRecord) -> None:
            was = rec.paused
            rec.paused, rec.pause_reason = False, None
            if was:
                first_tick(rec, now)

        return self._change(name, unpaused)

    def delete(self, name: str) -> None:
        """Delete the schedule (the workflows it started stay)."""
        if not self.database.store.delete_schedule(check_schedule_name(name)):
            self._get(name)  # raises ScheduleNotFoundError

    # -- runs --------------------------------------------------------------------------------

    def _firing(self) -> Firing:
        return Firing(self.database.store, self.codec, self.registry.version, self.clock)

    def _run(self, name: str, ticks: Callable[[Timing], builtins.list[float]], overlap: str | None,
             trigger: bool) -> builtins.list[ScheduleTick]:  # fmt: skip
        if overlap is not None:
            check_overlap(overlap)
        firing = self._firing()
        while True:
            rec = self._get(name)
            timing = Timing.from_json(rec.spec, rec.start_at, rec.end_at)
            done = firing.run_ticks(rec, ticks(timing), overlap, trigger=trigger)
            if done is not None:
                if any(t.result == "started" for t in done):
                    self.notify()
                return done

    def trigger(self, name: str, *, overlap: str | None = None) -> ScheduleTick:
        """Run the schedule now, as a tick at this instant (its workflow id is the instant to
        the microsecond, never a regular tick's), under ``overlap`` (default: the schedule's)."""
        now = self.clock()
        return self._run(name, lambda timing: [now], overlap, True)[0]

    def backfill(
        self,
        name: str,
        start: datetime | float,
        end: datetime | float,
        *,
        overlap: str | None = None,
    ) -> builtins.list[ScheduleTick]:
        """Run the schedule's ticks from ``start`` to ``end`` (inclusive; naive datetimes are in
        the schedule's time zone) under ``overlap`` (default: the schedule's). Their ids are
        the ticks' own, so a backfill run again starts nothing twice (``exists``)."""

        def ticks(timing: Timing) -> builtins.list[float]:
            begin, until = _epoch(start, timing), _epoch(end, timing)
            if until < begin:
                raise ConfigurationError("backfill end is before its start")
            first = timing.next_tick(begin, inclusive=True)
            found = [] if first is None else timing.ticks(first, until, MAX_TICKS + 1)
            if len(found) > MAX_TICKS:
                raise ConfigurationError(
                    f"a backfill runs at most {MAX_TICKS} ticks; split the range"
                )
            return found

        return self._run(name, ticks, overlap, False)


def _epoch(value: object, timing: Timing) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timing.tz)).timestamp()
    if isinstance(value, timedelta):
        raise ConfigurationError("backfill start and end are datetimes or epoch seconds")
    return limits.check_epoch(value, "backfill start/end")
