"""Queue limits hold across worker processes: 4 workers on one database.

- ``concurrency=3`` (``worker_concurrency=2``): at no moment do more than 3 workflows of the
  queue run, counting each from the start of its first step to the end of its last (across a
  durable sleep: an admitted workflow keeps its place), and the limit is reached;
- ``rate_limit=(4, 1.0)``: no 1 s window holds more than 4 admissions, and the queue drains at
  about that rate (within tolerance);
- ``worker_concurrency=1``: each process runs one at a time, several processes in parallel.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import pytest

from . import queue_app
from .support import Database, Workers, assert_no_traceback, read_log

WORKERS = 4
HELD = 18
TICKS = 16
SOLOS = 8
WORKER_ENV = {"E2E_POLL_INTERVAL": "0.05", "E2E_LEASE_SECONDS": "5.0"}


def _peak(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (an interval ending when another starts does not
    overlap it)."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    now = peak = 0
    for _, delta in points:  # ends sort before starts at the same time
        now += delta
        peak = max(peak, now)
    return peak


def _spans(records: list[dict[str, Any]], queue: str) -> dict[str, tuple[float, float, int]]:
    """Per workflow of ``queue``: first step start, last step end, and the pid that ran it."""
    spans: dict[str, list[float]] = {}
    pids: dict[str, int] = {}
    for r in records:
        if r["queue"] != queue:
            continue
        span = spans.setdefault(r["wf"], [r["t"], r["t"]])
        span[0], span[1] = min(span[0], r["t"]), max(span[1], r["t"])
        pids[r["wf"]] = r["pid"]
    return {wid: (s, e, pids[wid]) for wid, (s, e) in spans.items()}


@pytest.mark.timeout(120)
def test_queue_limits_hold_across_four_worker_processes(
    queue_workers: Workers, database: Database
) -> None:
    pool = queue_workers
    client = queue_app.make_app(database.url, str(pool.log))
    client.store.migrate()
    try:
        procs = [pool.spawn(f"q{i}", WORKER_ENV) for i in range(WORKERS)]
        for w in procs:
            pool.wait_registered(w)
        # every worker registered the queues its module defines
        for info in client.list_workers():
            assert {"default", queue_app.LIMITED.name, queue_app.RATED.name,
                    queue_app.SOLO.name} <= set(info.queues)  # fmt: skip
        began = time.time()
        handles = [queue_app.LIMITED.enqueue(client.registry.workflows["held"], i)
                   for i in range(HELD)]  # fmt: skip
        handles += [client.enqueue(queue_app.RATED.name, "tick", i) for i in range(TICKS)]
        handles += [client.enqueue(queue_app.SOLO, "solo", i) for i in range(SOLOS)]
        for h in handles:
            h.result(timeout=90)

        records = read_log(pool.log)
        # concurrency=3, across processes, over each workflow's whole run
        held = _spans(records, queue_app.LIMITED.name)
        assert len(held) == HELD
        peak = _peak([(s, e) for s, e, _ in held.values()])
        print(
            f"limited queue: peak {peak} in flight over {len({p for *_, p in held.values()})} pids"
        )
        assert peak == 3
        assert len({pid for *_, pid in held.values()}) > 1  # really across processes

        # rate_limit=(4, 1.0): admissions (started_at, the store's own record) per window
        rows = database.query(
            "SELECT started_at FROM workflows WHERE queue = ? ORDER BY started_at",
            (queue_app.RATED.name,),
        )
        starts = [float(r[0]) for r in rows]
        assert len(starts) == TICKS
        for i, t in enumerate(starts):
            in_window = sum(1 for u in starts[i:] if u < t + 1.0)
            assert in_window <= 4, f"{in_window} admissions in the 1 s from {t - began:.2f}s"
        span = starts[-1] - starts[0]
        print(f"rated queue: {TICKS} admissions over {span:.2f}s (limit 4/s)")
        assert 3.0 <= span <= 5.5  # (16/4 - 1) windows at least; promptly after each opens
        # each step ran soon after its admission
        ticks = _spans(records, queue_app.RATED.name)
        assert len(ticks) == TICKS

        # worker_concurrency=1: one at a time per process, yet in parallel across processes
        solos = _spans(records, queue_app.SOLO.name)
        by_pid: dict[int, list[tuple[float, float]]] = defaultdict(list)
        for s, e, pid in solos.values():
            by_pid[pid].append((s, e))
        assert all(_peak(spans) == 1 for spans in by_pid.values()), dict(by_pid)
        assert _peak([(s, e) for s, e, _ in solos.values()]) > 1

        for w in procs:
            assert pool.terminate(w) == 0
            assert_no_traceback(w)
    finally:
        client.close()
