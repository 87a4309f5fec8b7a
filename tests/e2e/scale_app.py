"""A durably app for the end-to-end scale-out chaos test: a worker script and a client module.

As a script it serves workflows until SIGTERM::

    python tests/e2e/scale_app.py DBURL LOGPATH  # sqlite:///path.db or postgresql://...?schema=x

Imported, :func:`make_app` builds the same App (same workflow and step names) for the test
process, which starts workflows and sends them events without running a worker.

Two workflows, ``plan`` (async) and ``plan_sync`` (sync), each interpret a list of operations
on an accumulator that starts at ``base``:

* ``["add", k]``: step ``add(acc, k)`` (async);
* ``["mul", k]``: step ``mul(acc, k)`` (sync; reduces modulo :data:`MODULUS`);
* ``["pair", k]``: steps ``add(acc, k)`` and ``square(k)`` started together, then summed modulo
  :data:`MODULUS`;
* ``["sleep", seconds]``: a durable sleep;
* ``["event", name]``: waits for event ``name`` (a dict ``{"v": int, ...}``) and adds its ``v``.

They return ``{"acc": acc, "events": [payloads consumed, in order]}``. Every step appends a
"start" and an "end" line to the side-effect log LOGPATH exactly as ``crash_app``'s steps do (its
:class:`~crash_app.SideEffectLog`).

The worker is tuned through environment variables (see :func:`options_from_env`):
``E2E_LEASE_SECONDS``, ``E2E_POLL_INTERVAL``, ``E2E_MAX_CONCURRENT``, ``E2E_CLAIM_BATCH``,
``E2E_EVICTION_THRESHOLD`` and ``E2E_STEP_DELAY`` ("lo,hi" seconds each step works).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import durably

if __package__:
    from .crash_app import MODULUS, NO_RETRY, SideEffectLog, serve, step_delay_from_env
else:  # run as a script: tests/e2e is on sys.path
    from crash_app import MODULUS, NO_RETRY, SideEffectLog, serve, step_delay_from_env

__all__ = ["MODULUS", "make_app", "options_from_env"]


def options_from_env(environ: Mapping[str, str] = os.environ) -> durably.WorkerOptions:
    """Worker options from the ``E2E_*`` environment variables (defaults: quick takeover)."""
    return durably.WorkerOptions(
        lease_seconds=float(environ.get("E2E_LEASE_SECONDS", "2.0")),
        poll_interval=float(environ.get("E2E_POLL_INTERVAL", "0.05")),
        max_concurrent=int(environ.get("E2E_MAX_CONCURRENT", "500")),
        claim_batch=int(environ.get("E2E_CLAIM_BATCH", "100")),
        eviction_threshold=float(environ.get("E2E_EVICTION_THRESHOLD", "0.5")),
    )


def make_app(
    db_url: str,
    log_path: str,
    options: durably.WorkerOptions | None = None,
    step_delay: tuple[float, float] = (0.0, 0.0),
) -> durably.App:
    """The App on database ``db_url``: the ``plan`` and ``plan_sync`` workflows."""
    app = durably.App(db_url, worker_options=options)
    effects = SideEffectLog(log_path, step_delay)

    # -- steps ---------------------------------------------------------------------------------

    @app.step(name="add", retry=NO_RETRY)
    async def add(a: int, b: int) -> int:
        started = effects.begin()
        await asyncio.sleep(effects.delay())
        effects.end(started)
        return a + b

    @app.step(name="square", retry=NO_RETRY)
    async def square(x: int) -> int:
        started = effects.begin()
        await asyncio.sleep(effects.delay())
        effects.end(started)
        return x * x

    @app.step(name="mul", retry=NO_RETRY)
    def mul(a: int, b: int) -> int:
        started = effects.begin()
        time.sleep(effects.delay())
        effects.end(started)
        return (a * b) % MODULUS

    # -- workflows -----------------------------------------------------------------------------

    @app.workflow(name="plan")
    async def plan(base: int, ops: list[list[Any]]) -> dict[str, Any]:
        acc, events = base, []
        for op, arg in ops:
            if op == "add":
                acc = await add(acc, arg)
            elif op == "mul":
                acc = await durably.run(mul, acc, arg)
            elif op == "pair":
                a, b = await asyncio.gather(add(acc, arg), square(arg))
                acc = (a + b) % MODULUS
            elif op == "sleep":
                await durably.sleep(arg)
            elif op == "event":
                payload = await durably.wait_event(arg)
                events.append(payload)
                acc = (acc + payload["v"]) % MODULUS
            else:
                raise ValueError(f"unknown operation {op!r}")
        return {"acc": acc, "events": events}

    @app.workflow(name="plan_sync")
    def plan_sync(base: int, ops: list[list[Any]]) -> dict[str, Any]:
        acc, events = base, []
        for op, arg in ops:
            if op == "add":
                acc = durably.submit(add, acc, arg).result()
            elif op == "mul":
                acc = mul(acc, arg)
            elif op == "pair":
                first, second = durably.submit(add, acc, arg), durably.submit(square, arg)
                acc = (first.result() + second.result()) % MODULUS
            elif op == "sleep":
                durably.sleep_sync(arg)
            elif op == "event":
                payload = durably.wait_event_sync(arg)
                events.append(payload)
                acc = (acc + payload["v"]) % MODULUS
            else:
                raise ValueError(f"unknown operation {op!r}")
        return {"acc": acc, "events": events}

    return app


def main(argv: list[str]) -> int:
    """Serve the app's workflows until SIGTERM/SIGINT."""
    return serve(argv, lambda db, log: make_app(db, log, options_from_env(), step_delay_from_env()))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
