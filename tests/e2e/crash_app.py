"""A durably app for the end-to-end crash and fencing tests: a worker script and a client module.

As a script it serves workflows until SIGTERM::

    python tests/e2e/crash_app.py DBURL LOGPATH  # sqlite:///path.db or postgresql://...?schema=x

Imported, :func:`make_app` builds the same App (same workflow and step names) for a test process
that starts and inspects workflows without running a worker.

Every step execution appends one JSON line per event ("start" when the step body begins, "end"
just before it returns) to the side-effect log LOGPATH, written with one ``os.write`` on an
``O_APPEND`` descriptor, so lines of concurrent processes never interleave and a line written
before a ``kill -9`` is never lost. Each line names the workflow, the step's seq and name, the
pid, a random token of the process (which tells processes apart even if a pid is reused) and a
random id of the execution (which pairs its "end" with its "start").

The worker is tuned through environment variables (see :func:`options_from_env`):
``E2E_LEASE_SECONDS``, ``E2E_POLL_INTERVAL``, ``E2E_MAX_CONCURRENT``, ``E2E_CLAIM_BATCH`` and
``E2E_STEP_DELAY`` ("lo,hi": each step sleeps a uniformly random time in [lo, hi] seconds).

Workflow results are a deterministic function of their input; the tests model them
independently (``expected_run`` in the tests) to check every completed run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import durably

__all__ = ["MODULUS", "TOKEN", "make_app", "options_from_env", "step_delay_from_env"]

TOKEN = uuid.uuid4().hex[:12]
"""This process's token in the side-effect log."""

MODULUS = 1_000_003
"""``mul`` reduces its product modulo this, to keep chained values small."""

NO_RETRY = durably.Retry(attempts=1)
"""Steps here never fail; a failure is a bug that must show, not be retried away."""


def options_from_env(environ: Mapping[str, str] = os.environ) -> durably.WorkerOptions:
    """Worker options from the ``E2E_*`` environment variables (defaults suit a crash test)."""
    return durably.WorkerOptions(
        lease_seconds=float(environ.get("E2E_LEASE_SECONDS", "5.0")),
        poll_interval=float(environ.get("E2E_POLL_INTERVAL", "0.05")),
        max_concurrent=int(environ.get("E2E_MAX_CONCURRENT", "500")),
        claim_batch=int(environ.get("E2E_CLAIM_BATCH", "100")),
    )


def step_delay_from_env(environ: Mapping[str, str] = os.environ) -> tuple[float, float]:
    """``E2E_STEP_DELAY="lo,hi"`` as a (lo, hi) pair of seconds; default 5 to 60 ms."""
    lo, _, hi = environ.get("E2E_STEP_DELAY", "0.005,0.06").partition(",")
    return float(lo), float(hi or lo)


class SideEffectLog:
    """Appends one line per step event to a file shared by every worker process."""

    def __init__(self, path: str, delay: tuple[float, float]) -> None:
        self.path = path
        self.delay_range = delay
        self._fd: int | None = None
        self._lock = threading.Lock()

    def _descriptor(self) -> int:
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            return self._fd

    def _write(self, event: str, ctx: durably.StepContext, run: str) -> None:
        record = {
            "event": event,
            "run": run,
            "workflow_id": ctx.workflow_id,
            "seq": ctx.seq,
            "step": ctx.step,
            "attempt": ctx.attempt,
            "pid": os.getpid(),
            "token": TOKEN,
            "time": time.time(),
        }
        os.write(self._descriptor(), (json.dumps(record) + "\n").encode())

    def begin(self) -> tuple[durably.StepContext, str]:
        """Log the start of an execution of the running step; return what :meth:`end` needs."""
        ctx, run = durably.step_context(), uuid.uuid4().hex[:12]
        self._write("start", ctx, run)
        return ctx, run

    def end(self, started: tuple[durably.StepContext, str]) -> None:
        """Log that the step's side effect is done (its result is not yet committed)."""
        self._write("end", *started)

    def delay(self) -> float:
        """How long this step execution works, in seconds."""
        lo, hi = self.delay_range
        return random.uniform(lo, hi)


def make_app(
    db_url: str,
    log_path: str,
    options: durably.WorkerOptions | None = None,
    step_delay: tuple[float, float] = (0.005, 0.06),
) -> durably.App:
    """The App on database ``db_url`` (a ``sqlite:///`` or ``postgresql://`` URL): four
    workflows mixing sync/async code and steps."""
    app = durably.App(db_url, worker_options=options)
    effects = SideEffectLog(log_path, step_delay)

    # -- steps: two async, three sync, one async echo ----------------------------------------

    @app.step(name="add", retry=NO_RETRY)
    async def add(a: int, b: int) -> int:
        ctx = effects.begin()
        await asyncio.sleep(effects.delay())
        effects.end(ctx)
        return a + b

    @app.step(name="square", retry=NO_RETRY)
    async def square(x: int) -> int:
        ctx = effects.begin()
        await asyncio.sleep(effects.delay())
        effects.end(ctx)
        return x * x

    @app.step(name="echo", retry=NO_RETRY)
    async def echo(value: str) -> str:
        ctx = effects.begin()
        await asyncio.sleep(effects.delay())
        effects.end(ctx)
        return value

    @app.step(name="mul", retry=NO_RETRY)
    def mul(a: int, b: int) -> int:
        ctx = effects.begin()
        time.sleep(effects.delay())
        effects.end(ctx)
        return (a * b) % MODULUS

    @app.step(name="cube", retry=NO_RETRY)
    def cube(x: int) -> int:
        ctx = effects.begin()
        time.sleep(effects.delay())
        effects.end(ctx)
        return x * x * x

    @app.step(name="total", retry=NO_RETRY)
    def total(values: list[int]) -> int:
        ctx = effects.begin()
        time.sleep(effects.delay())
        effects.end(ctx)
        return sum(values)

    # -- workflows -----------------------------------------------------------------------------

    @app.workflow(name="async_chain")
    async def async_chain(n: int) -> dict[str, Any]:
        """uuid, echo it, then ``n`` sequential steps alternating async ``add``/sync ``mul``."""
        u = str(durably.uuid4())
        echoed = await echo(u)
        acc = 1
        for i in range(n):
            if i % 2 == 0:
                acc = await add(acc, i)
            else:
                acc = await durably.run(mul, acc, i + 1)
        return {"acc": acc, "uuid_ok": echoed == u}

    @app.workflow(name="async_fanout")
    async def async_fanout(xs: list[int]) -> dict[str, Any]:
        """now, echo it, gather square/cube of xs, gather add(v, i), then total."""
        stamp = durably.now().isoformat()
        echoed = await echo(stamp)
        powers = await asyncio.gather(
            *(square(x) if i % 2 == 0 else durably.run(cube, x) for i, x in enumerate(xs))
        )
        shifted = await asyncio.gather(*(add(v, i) for i, v in enumerate(powers)))
        result = await durably.run(total, list(shifted))
        return {"total": result, "now_ok": echoed == stamp}

    @app.workflow(name="sync_chain")
    def sync_chain(n: int, label: str) -> str:
        """``n`` sequential steps (sync ``mul`` called directly, async ``add`` via submit),
        then uuid, echo it, and ``total``."""
        parts: list[int] = []
        for i in range(n):
            if i % 3 == 2:
                parts.append(durably.submit(add, i, 100).result())
            else:
                parts.append(mul(i, 7))
        u = str(durably.uuid4())
        echoed = durably.submit(echo, u).result()
        result = total(parts)
        return f"{label}:{'-'.join(map(str, parts))}:{result}:{'ok' if echoed == u else 'bad'}"

    @app.workflow(name="sync_fanout")
    def sync_fanout(xs: list[int]) -> int:
        """submit square/cube of xs, then add(v, i) of each, then total, then now + echo."""
        futures = [
            durably.submit(cube, x) if i % 2 else durably.submit(square, x)
            for i, x in enumerate(xs)
        ]
        powers = [f.result() for f in futures]
        shifted = [durably.submit(add, v, i) for i, v in enumerate(powers)]
        result = total([f.result() for f in shifted])
        stamp = durably.now().isoformat()
        echoed = durably.submit(echo, stamp).result()
        return result if echoed == stamp else -1

    return app


def serve(argv: list[str], build: Callable[[str, str], durably.App]) -> int:
    """A worker script's main: serve ``build(DBURL, LOGPATH)`` until SIGTERM/SIGINT."""
    if len(argv) != 3:
        print(f"usage: {argv[0]} DBURL LOGPATH", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    app = build(argv[1], argv[2])
    try:
        app.run_worker()
    finally:
        app.close()
    return 0


def main(argv: list[str]) -> int:
    """Serve the app's workflows until SIGTERM/SIGINT."""
    return serve(argv, lambda db, log: make_app(db, log, options_from_env(), step_delay_from_env()))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
