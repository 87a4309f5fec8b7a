"""The app the benchmark's worker processes serve: ``durably worker durably.bench.workload:app``.

The database comes from ``$DURABLY_DB`` (the benchmark sets it for each fresh database). The
benchmark process builds its own client :class:`~durably.App` on the same database with
:func:`build`, so both sides register the same workflows under the same names and start them
by name.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import durably
from durably.codec_options import CODECS_ENV, codec_options

STEPS_PER_WORKFLOW = 3
SLOW_STEP_SECONDS = 0.2
GO_EVENT = "go"

THREE_STEPS = "bench_three_steps"
MANY_STEPS = "bench_many_steps"
ONE_STEP = "bench_one_step"
SLOW_STEPS = "bench_slow_steps"
JOURNAL_THEN_WAIT = "bench_journal_then_wait"
SLEEPER = "bench_sleeper"


def build(url: str | None = None, options: durably.WorkerOptions | None = None) -> durably.App:
    """A new App on ``url`` (default ``$DURABLY_DB``) with every benchmark workflow, and the
    payload codecs of ``$DURABLY_CODECS`` if set (``durably bench --codecs``)."""
    codecs = codec_options(argparse.Namespace()).codecs if os.environ.get(CODECS_ENV) else ()
    app = durably.App(url, worker_options=options, codecs=codecs)

    @app.step(name="bench_noop")
    async def noop(i: int) -> int:
        return i

    @app.step(name="bench_slow")
    async def slow(log_path: str, i: int) -> int:
        with open(log_path, "a") as log:  # when this attempt of step i started
            log.write(f"{i} {time.time()!r}\n")
        await asyncio.sleep(SLOW_STEP_SECONDS)
        return i

    @app.step(name="bench_mark")
    async def mark() -> float:
        return time.time()

    @app.workflow(name=THREE_STEPS)
    async def three_steps(n: int) -> int:
        total = n
        for i in range(STEPS_PER_WORKFLOW):
            total += await noop(i)
        return total

    @app.workflow(name=MANY_STEPS)
    async def many_steps(n: int) -> int:
        total = 0
        for i in range(n):
            total += await noop(i)
        return total

    @app.workflow(name=ONE_STEP)
    async def one_step(n: int) -> int:
        return await noop(n)

    @app.workflow(name=SLOW_STEPS)
    async def slow_steps(log_path: str, n: int) -> int:
        total = 0
        for i in range(n):
            total += await slow(log_path, i)
        return total

    @app.workflow(name=JOURNAL_THEN_WAIT)
    async def journal_then_wait(n: int) -> float:
        for i in range(n):
            await noop(i)
        await durably.wait_event(GO_EVENT)
        return await mark()  # the first step after the wait: when it ran

    @app.workflow(name=SLEEPER)
    async def sleeper(i: int) -> int:
        await durably.sleep(86400)
        return i

    return app


app = build()
