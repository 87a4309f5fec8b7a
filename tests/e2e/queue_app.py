"""A durably app for the cross-process queue-limit tests: a worker script and a client module.

As a script it serves until SIGTERM::

    python tests/e2e/queue_app.py DBURL LOGPATH

Every step appends one JSON line to LOGPATH when its body begins ("start") and just before it
returns ("end"), with the workflow id, the queue, the pid and a wall-clock time, in one
``os.write`` on an ``O_APPEND`` descriptor (lines of concurrent processes never interleave).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import durably

if __package__:
    from .crash_app import options_from_env, serve
else:  # run as a script
    from crash_app import options_from_env, serve  # type: ignore[no-redef]

__all__ = ["LIMITED", "RATED", "SOLO", "make_app"]

LIMITED = durably.Queue("e2e-limited", concurrency=3, worker_concurrency=2)
"""At most 3 admitted and unfinished across every worker, at most 2 in one process: reaching
3 takes two processes, and without the global limit 4 processes would run 8."""
RATED = durably.Queue("e2e-rated", rate_limit=(4, 1.0))
"""At most 4 admissions in any 1 s window, across every worker."""
SOLO = durably.Queue("e2e-solo", worker_concurrency=1)
"""At most 1 in progress per worker process; no global limit."""

NO_RETRY = durably.Retry(attempts=1)


def make_app(db_url: str, log_path: str, options: durably.WorkerOptions | None = None) -> Any:
    app = durably.App(db_url, worker_options=options)
    fd_holder: list[int] = []

    def log(event: str, wid: str, queue: str) -> None:
        if not fd_holder:
            fd_holder.append(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        line = {"event": event, "wf": wid, "queue": queue, "pid": os.getpid(), "t": time.time()}
        os.write(fd_holder[0], (json.dumps(line) + "\n").encode())

    @app.step(retry=NO_RETRY)
    async def hold(queue: str, seconds: float) -> str:
        wid = durably.step_context().workflow_id
        log("start", wid, queue)
        await asyncio.sleep(seconds)
        log("end", wid, queue)
        return wid

    @app.workflow()
    async def held(i: int) -> int:
        """Two steps around a durable sleep: its place in the queue is held throughout."""
        await hold(LIMITED.name, 0.15)
        await durably.sleep(0.2)
        await hold(LIMITED.name, 0.15)
        return i

    @app.workflow()
    async def tick(i: int) -> int:
        await hold(RATED.name, 0.01)
        return i

    @app.workflow()
    async def solo(i: int) -> int:
        await hold(SOLO.name, 0.3)
        return i

    return app


def main(argv: list[str]) -> int:
    return serve(argv, lambda db, log: make_app(db, log, options_from_env()))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
