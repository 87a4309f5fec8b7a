"""Schedules: workflows started by the clock (cron expressions or fixed intervals), stored in
the database and ticked by the workers, exactly one workflow per tick.

:mod:`~durably.schedules.spec` is what a user declares (:class:`Schedule`) and the tick
arithmetic (cron via ``cronsim``, time zones via ``zoneinfo``); :mod:`~durably.schedules.firing`
turns due ticks into workflows under a schedule's overlap and catch-up policies, with one
compare-and-set write per decision, for the workers' ticker and for operators' triggers and
backfills alike.
"""

from durably.schedules.firing import ScheduleTick
from durably.schedules.spec import OVERLAP_POLICIES, Overlap, Schedule, ScheduleInfo

__all__ = ["OVERLAP_POLICIES", "Overlap", "Schedule", "ScheduleInfo", "ScheduleTick"]
