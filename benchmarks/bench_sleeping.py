"""Memory of a worker holding many sleeping workflows (each parked: rows in a table, no
coroutine, no thread). Run alone, it prints one JSON line; bench_core.py runs it in a fresh
process so that the RSS it reports is the worker's own.

    python benchmarks/bench_sleeping.py DB_PATH COUNT
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta

import durably


def rss_mb() -> float:
    """This process's resident set size in MB (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(db_path: str, count: int) -> dict[str, float]:
    """Start ``count`` workflows that sleep 30 days; wait until all are parked; report RSS."""
    app = durably.App(
        f"sqlite:///{db_path}",
        worker_options=durably.WorkerOptions(eviction_threshold=0.0, poll_interval=0.05),
    )

    @app.workflow()
    async def sleeper(i: int) -> int:
        await durably.sleep(timedelta(days=30))
        return i

    with app:
        rss_idle = rss_mb()
        t0 = time.perf_counter()
        for i in range(count):
            app.start(sleeper, i, id=f"sleeper-{i}")
        worker = app._worker
        assert worker is not None
        while True:
            rows = app.store.list_workflows(statuses=[durably.WorkflowStatus.RUNNING], limit=count)
            if sum(1 for r in rows if r.wake_at is not None and r.owner is None) == count:
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        rss_parked = rss_mb()
        busy = worker.busy()
    app.close()
    return {
        "workflows": count,
        "seconds_to_park_all": seconds,
        "rss_idle_mb": rss_idle,
        "rss_mb": rss_parked,
        "rss_per_1000_mb": (rss_parked - rss_idle) / count * 1000,
        "worker_busy_after": float(busy),
    }


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
