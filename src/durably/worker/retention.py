"""The retention pass: workers purge finished workflows older than their retention.

Which retention applies to a finished workflow (completed, failed, cancelled or terminated;
``needs_attention`` ones wait for a person and are never purged automatically):

- a name this worker registers: that workflow's ``@app.workflow(retention=...)``, else the App's
  ``retention`` (None: kept forever);
- a name this worker does not register but another live worker does: left to that worker (its
  own registration decides);
- a name no live worker registers (a workflow since removed or renamed, or only started by
  clients): this worker's App ``retention``; None keeps it.

So workers that register one name with different retentions each purge by their own: the
shortest wins. A child whose parent has not finished is kept until the parent finishes (the
parent reads its outcome). The pass reads through the ``(finished_at, id)`` index and purges in
batches of ``WorkerOptions.retention_batch`` ids, each one short transaction, resting between
batches so that they take at most ``retention_share`` of the time (and at least
``retention_pause`` seconds), so it never holds locks long; passes of several
workers at once are safe (a purge deletes only what is still there and still finished).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from durably.definitions import Registry
from durably.storage.base import Store, WorkflowSelection, WorkflowStatus
from durably.worker.state import WorkerState, log

__all__ = [
    "LIVE_SECONDS",
    "PURGEABLE_STATUSES",
    "Retention",
    "purge_expired",
    "rest_after",
    "retention_selections",
]

PURGEABLE_STATUSES = (
    WorkflowStatus.CANCELLED,
    WorkflowStatus.COMPLETED,
    WorkflowStatus.FAILED,
    WorkflowStatus.TERMINATED,
)
"""The statuses a retention pass purges."""
LIVE_SECONDS = 30.0
"""A worker whose last heartbeat is older than this is not live (its names fall to the App
default of the workers that purge)."""


def retention_selections(
    registry: Registry, others: Iterable[str], now: float
) -> list[WorkflowSelection]:
    """What one pass purges, as of ``now``: a selection per retention period of the names
    ``registry`` registers, and one with the App's default for every name neither registered
    here nor in ``others`` (the names live workers elsewhere register). Empty when nothing
    here has a retention."""
    by_period: dict[timedelta, list[str]] = {}
    for name in sorted(registry.workflows):
        period = registry.retention_of(name)
        if period is not None:
            by_period.setdefault(period, []).append(name)
    selections = [
        WorkflowSelection(
            statuses=PURGEABLE_STATUSES,
            names=tuple(names),
            finished_before=now - period.total_seconds(),
        )
        for period, names in sorted(by_period.items())
    ]
    if registry.retention is not None:
        known = sorted(set(registry.workflows) | set(others))
        selections.append(
            WorkflowSelection(
                statuses=PURGEABLE_STATUSES,
                exclude_names=tuple(known) or None,
                finished_before=now - registry.retention.total_seconds(),
            )
        )
    return selections


def rest_after(busy: float, pause: float, share: float) -> float:
    """How long to wait after a batch that took ``busy`` seconds: at least ``pause``, and long
    enough that the batches take at most ``share`` of the time (1: no extra wait)."""
    return max(pause, busy * (1 - share) / share)


def purge_expired(
    store: Store,
    selections: Iterable[WorkflowSelection],
    *,
    batch: int = 100,
    pause: float = 0.0,
    share: float = 1.0,
    stop: threading.Event | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Purge every workflow the selections select, ``batch`` ids per transaction, waiting
    between batches at least ``pause`` seconds and long enough that the batches take at most
    ``share`` of the time (see :func:`rest_after`); returns how many were purged. Stops early
    when ``stop`` is set; interrupted (even mid-way by a crash), a later pass purges the rest.
    ``on_batch`` is told each batch's count."""
    purged = 0
    for selection in selections:
        after: tuple[float, str] | None = None
        while stop is None or not stop.is_set():
            t0 = time.perf_counter()
            page = store.expired_workflows(selection, after=after, limit=batch)
            if not page:
                break
            done = len(store.purge_workflows([workflow_id for _, workflow_id in page]))
            purged += done
            if on_batch is not None:
                on_batch(done)
            if len(page) < batch:
                break
            after = page[-1]
            wait = rest_after(time.perf_counter() - t0, pause, share)
            if stop is not None:
                stop.wait(wait)  # a stop ends the rest at once
            elif wait > 0:
                time.sleep(wait)
    return purged


class Retention(WorkerState):
    """The worker's retention loop: a pass every ``WorkerOptions.retention_interval`` seconds
    (the first one that long after the start), when anything here has a retention."""

    def retention_pass(self, stop: threading.Event | None = None) -> int:
        """One retention pass now (blocking; see the module docstring): how many workflows it
        purged."""
        registry = self.registry
        if registry.retention is None and all(
            registry.retention_of(name) is None for name in registry.workflows
        ):
            return 0
        live = time.time() - LIVE_SECONDS
        others = {
            name
            for w in self.store.list_workers()
            if w.id != self.id and w.heartbeat_at >= live
            for name in w.workflows
        }
        opts = self.options
        selections = retention_selections(registry, others, self.clock())
        return purge_expired(
            self.store, selections, batch=opts.retention_batch, pause=opts.retention_pause,
            share=opts.retention_share, stop=stop,
        )  # fmt: skip

    async def _retention_loop(self) -> None:
        stop = threading.Event()
        interval = self.options.retention_interval
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    purged = await asyncio.to_thread(self.retention_pass, stop)
                except Exception as exc:  # the next pass tries again
                    log.warning("worker %s: retention pass failed: %s", self.id, exc)
                    continue
                if purged:
                    log.info("worker %s purged %d expired workflow(s)", self.id, purged)
        finally:
            stop.set()  # a pass in its thread stops after its current batch
