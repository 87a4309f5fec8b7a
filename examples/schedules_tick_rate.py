"""How fast one worker's ticker turns due ticks into workflows: each tick is one decision, one
compare-and-set transaction that advances the schedule and creates the tick's workflow.

    python examples/schedules_tick_rate.py [DATABASE_URL] [SCHEDULES]

Makes SCHEDULES (default 1000) ``every=60`` schedules on a virtual clock, moves the clock past
their next tick, and times one worker's ticker starting all of them. Prints numbers; asserts
nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time

import durably
from durably.schedules.firing import Firing


def main() -> None:
    folder = tempfile.mkdtemp()
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{folder}/tick_rate.db"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    app = durably.App(url)
    now = [1_800_000_000.0]
    app.clock = lambda: now[0]

    @app.workflow(name="job")
    def job() -> None:
        pass

    began = time.perf_counter()
    for i in range(count):
        app.schedule(f"rate-{i}", "job", every=60, overlap="allow_all")
    created = time.perf_counter() - began
    now[0] += 61
    worker = app._new_worker()  # its ticker, not served: no workflow runs
    firing = Firing(app.store, app.codec, None, app.clock)
    began = time.perf_counter()
    while app.store.due_schedules(now[0]):
        worker._tick_due(firing)
    ticked = time.perf_counter() - began
    started = len(app.list_workflows(limit=count + 1, id_prefix="rate-"))
    print(
        f"{app.safe_database_url.split(':')[0]}: {count} schedules written in {created:.2f}s "
        f"({count / created:.0f}/s); {started} due ticks started by one ticker in {ticked:.2f}s "
        f"({started / ticked:.0f} ticks/s)"
    )
    app.close()


if __name__ == "__main__":
    main()
