"""The deploy gate's speed: journals replayed per second by ``durably replay-check``.

J workflows of 19 no-op steps each park on an event (20 journal entries each); the bench then
checks the database against the same code, as ``durably replay-check`` does (reading every
unfinished workflow and its journal, replaying it without executing anything)."""

from __future__ import annotations

import asyncio
import time

import durably
from durably.bench.options import Params
from durably.bench.targets import Target
from durably.bench.workload import JOURNAL_THEN_WAIT, build
from durably.replay import check_store
from durably.storage import open_store

ENTRIES = 20
"""Journal entries of each workflow: 19 steps and the event wait it parked on."""
_CHUNK = 500
_STALL_SECONDS = 120.0


async def _start(app: durably.App, count: int) -> None:
    for first in range(0, count, _CHUNK):
        last = min(count, first + _CHUNK)
        starts = (
            app.start_async(JOURNAL_THEN_WAIT, ENTRIES - 1, id=f"gate-{n}")
            for n in range(first, last)
        )
        await asyncio.gather(*starts)


def _park_all(target: Target, url: str, count: int) -> None:
    """Run ``count`` workflows until each parks on its event (embedded worker)."""
    app = build(url, durably.WorkerOptions(eviction_threshold=0.0))
    try:
        with app:
            asyncio.run(_start(app, count))
            progress_at, parked_before = time.monotonic(), -1
            while (parked := target.count_parked(url)) < count:
                if parked > parked_before:
                    progress_at, parked_before = time.monotonic(), parked
                elif time.monotonic() - progress_at > _STALL_SECONDS:
                    raise RuntimeError(f"replay-check: only {parked} of {count} workflows parked")
                time.sleep(0.05)
    finally:
        app.close()


def replay_check(target: Target, params: Params) -> dict[str, float]:
    """Seconds to check J parked workflows of 20 entries against unchanged code."""
    count = params.journals
    with target.fresh("replay-check") as url:
        _park_all(target, url, count)
        code = build(url)  # the new code: only its registry and codec are used
        store = open_store(url)
        try:
            started = time.perf_counter()
            report = check_store(code, store)
            elapsed = time.perf_counter() - started
        finally:
            store.close()
    entries = sum(r.entries for r in report.results)
    if len(report.results) != count or report.diverged or entries != count * ENTRIES:
        raise RuntimeError(
            f"replay-check: {len(report.results)} workflows, {entries} entries, "
            f"{len(report.diverged)} diverged; expected {count} x {ENTRIES}, none diverged"
        )
    return {
        "journals": count,
        "entries": entries,
        "seconds": elapsed,
        "journals_per_s": count / elapsed,
        "entries_per_s": entries / elapsed,
    }
