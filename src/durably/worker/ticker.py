"""The ticker: each worker makes the schedules' due ticks into workflows.

Every worker ticks every schedule (a worker that does not serve a schedule's workflow still
creates its workflows; the workers that serve it run them). On start it writes the schedules its
App declares (:func:`durably.schedules.define.put`); then it reads the due schedules whenever the
earliest one is due, at least once a second (a schedule made elsewhere is seen within a
second), and hands each to :class:`~durably.schedules.firing.Firing`, whose compare-and-set
writes make any number of tickers start one workflow per tick.
"""

from __future__ import annotations

import asyncio

from durably.errors import DurablyError
from durably.schedules.define import put, record_of
from durably.schedules.firing import Firing
from durably.storage.base import ScheduleRecord
from durably.worker.state import WorkerState, log

__all__ = ["TICK_POLL_SECONDS", "Ticker"]

TICK_POLL_SECONDS = 1.0
"""The longest a ticker sleeps between two reads of the due schedules."""


class Ticker(WorkerState):
    """Writes the App's declared schedules, then ticks every due schedule."""

    def _declare_schedules(self) -> None:
        now = self.clock()
        for name, (schedule, workflow_name, queue) in self.registry.schedules.items():
            try:
                rec = record_of(schedule, workflow_name, self.codec, now, queue)
            except DurablyError as exc:  # checked when declared: a serializer changed since?
                log.warning("schedule %s not written: %s", name, exc)
                continue
            _, done = put(self.store, rec, now, self.codec)
            if done != "unchanged":
                log.info("schedule %s %s", rec.name, done)

    def _tick_due(self, firing: Firing) -> float | None:
        """Tick every due schedule; the time the earliest next one is due."""
        for rec in self.store.due_schedules(self.clock()):
            try:
                self._tick_one(firing, rec)
            except DurablyError as exc:  # its definition no longer reads (a time zone gone?)
                log.warning("schedule %s cannot tick: %s", rec.name, exc)
        return self.store.next_schedule_due()

    def _tick_one(self, firing: Firing, rec: ScheduleRecord) -> None:
        for _ in range(3):  # lost to another writer: read it again (it may be done)
            if firing.tick(rec, self.clock()) is not None:
                return
            fresh = self.store.get_schedule(rec.name)
            if fresh is None or fresh.paused:
                return
            rec = fresh

    async def _ticker_loop(self) -> None:
        firing = Firing(self.store, self.codec, self.registry.version, self.clock)
        declared = False
        while True:
            delay = TICK_POLL_SECONDS
            try:
                if not declared:
                    await asyncio.to_thread(self._declare_schedules)
                    declared = True
                due = await asyncio.to_thread(self._tick_due, firing)
                if due is not None:
                    delay = min(delay, max(due - self.clock(), 0.005))
            except NotImplementedError:  # a store without schedules (a test's fake)
                return
            except Exception as exc:  # the database may be down: try again
                log.warning("worker %s could not tick schedules: %s", self.id, exc)
            await asyncio.sleep(delay)
