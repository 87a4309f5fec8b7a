"""A durably app of long-lived workflows for the end-to-end crash test of durable waits: timers,
events, child workflows and cancellation. A worker script and a client module.

As a script it serves workflows until SIGTERM::

    python tests/e2e/long_app.py DBURL LOGPATH

Imported, :func:`make_app` builds the same App (same workflow and step names) for a test process
that starts, signals, cancels and inspects workflows without running a worker.

Its two steps, ``work`` (async) and ``work_sync`` (sync), return their ``tag`` after working
``delay`` seconds, and append a "start" and an "end" line to the side-effect log LOGPATH exactly as
``crash_app``'s steps do (one ``os.write`` per line on an ``O_APPEND`` descriptor, with the
wall-clock time, so the test can tell when a step after a timer began).

The worker is tuned through environment variables (see :func:`options_from_env`):
``E2E_EVICTION_THRESHOLD`` (small: waits are unwound and replayed all the time),
``E2E_POLL_INTERVAL``, ``E2E_LEASE_SECONDS`` and ``E2E_MAX_CONCURRENT``.

Every workflow's journal and result are a deterministic function of its arguments (and, for the
event waiters, of the order of the events sent); the test models them independently.
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
    from .crash_app import NO_RETRY, SideEffectLog, serve
else:  # run as a script: tests/e2e is on sys.path
    from crash_app import NO_RETRY, SideEffectLog, serve

__all__ = ["DOOMED_SLEEP", "UNDO_DELAY", "UNDO_NAP", "make_app", "options_from_env"]

DOOMED_SLEEP = 3600.0
"""How long the cancellable workflows sleep: they are always cancelled first."""
UNDO_DELAY = 0.3
"""How long the first compensation step works (a kill often lands in it)."""
UNDO_NAP = 0.2
"""The durable sleep between the two compensation steps."""
PING_TIMEOUT = 0.3
"""The event waiters first wait this long for a "ping" event nobody sends."""


def options_from_env(environ: Mapping[str, str] = os.environ) -> durably.WorkerOptions:
    """Worker options from the ``E2E_*`` environment variables."""
    return durably.WorkerOptions(
        lease_seconds=float(environ.get("E2E_LEASE_SECONDS", "5.0")),
        poll_interval=float(environ.get("E2E_POLL_INTERVAL", "0.02")),
        max_concurrent=int(environ.get("E2E_MAX_CONCURRENT", "500")),
        eviction_threshold=float(environ.get("E2E_EVICTION_THRESHOLD", "0.1")),
    )


def make_app(
    db_url: str, log_path: str, options: durably.WorkerOptions | None = None
) -> durably.App:
    """The App on database ``db_url`` (a ``sqlite:///`` or ``postgresql://`` URL)."""
    app = durably.App(db_url, worker_options=options)
    effects = SideEffectLog(log_path, (0.0, 0.0))

    # -- steps ---------------------------------------------------------------------------------

    @app.step(name="work", retry=NO_RETRY)
    async def work(tag: str, delay: float) -> str:
        started = effects.begin()
        await asyncio.sleep(delay)
        effects.end(started)
        return tag

    @app.step(name="work_sync", retry=NO_RETRY)
    def work_sync(tag: str, delay: float) -> str:
        started = effects.begin()
        time.sleep(delay)
        effects.end(started)
        return tag

    # -- timers --------------------------------------------------------------------------------

    @app.workflow(name="naps")
    async def naps(durations: list[float], delay: float) -> list[str]:
        """A durable sleep of each duration, each followed by a step."""
        tags = []
        for i, nap in enumerate(durations):
            await durably.sleep(nap)
            tags.append(await work(f"nap{i}", delay))
        return tags

    @app.workflow(name="naps_sync")
    def naps_sync(durations: list[float], delay: float) -> list[str]:
        """:func:`naps` as a sync workflow."""
        tags = []
        for i, nap in enumerate(durations):
            durably.sleep_sync(nap)
            tags.append(work_sync(f"nap{i}", delay))
        return tags

    # -- events --------------------------------------------------------------------------------

    @app.workflow(name="inbox")
    async def inbox(count: int, delay: float) -> dict[str, Any]:
        """Wait for a "ping" that never comes (times out), then consume ``count`` "item"
        events, a step after each (and a short sleep before every third step)."""
        ping = await durably.wait_event("ping", timeout=PING_TIMEOUT, default=None)
        items = []
        for i in range(count):
            items.append(await durably.wait_event("item"))
            if i % 3 == 1:
                await durably.sleep(0.15)
            await work(f"ack{i}", delay)
        return {"ping": ping, "items": items}

    @app.workflow(name="inbox_sync")
    def inbox_sync(count: int, delay: float) -> dict[str, Any]:
        """:func:`inbox` as a sync workflow."""
        ping = durably.wait_event_sync("ping", timeout=PING_TIMEOUT, default=None)
        items = []
        for i in range(count):
            items.append(durably.wait_event_sync("item"))
            if i % 3 == 1:
                durably.sleep_sync(0.15)
            work_sync(f"ack{i}", delay)
        return {"ping": ping, "items": items}

    # -- children ------------------------------------------------------------------------------

    @app.workflow(name="kid")
    async def kid(label: str, durations: list[float], delay: float) -> str:
        """A child: a sleep and a step per duration; returns its label and step tags."""
        tags = []
        for i, nap in enumerate(durations):
            await durably.sleep(nap)
            tags.append(await work(f"{label}.{i}", delay))
        return f"{label}:{','.join(tags)}"

    @app.workflow(name="kid_sync")
    def kid_sync(label: str, durations: list[float], delay: float) -> str:
        """:func:`kid` as a sync workflow."""
        tags = []
        for i, nap in enumerate(durations):
            durably.sleep_sync(nap)
            tags.append(work_sync(f"{label}.{i}", delay))
        return f"{label}:{','.join(tags)}"

    @app.workflow(name="family")
    async def family(label: str, durations: list[float], delay: float, post: float) -> list[str]:
        """Await one child directly; start two more with start_child and await them later; a
        slow step (``post`` seconds) right after each child's result."""
        first = await kid(f"{label}a", durations, delay)
        await work("after-a", post)
        second = durably.start_child(kid_sync, f"{label}b", durations[::-1], delay)
        third = durably.start_child(kid, f"{label}c", durations[1:], delay)
        await work("started", delay)
        b = await second
        await work("after-b", post)
        c = await third
        await work("after-c", post)
        return [first, b, c]

    @app.workflow(name="family_sync")
    def family_sync(label: str, durations: list[float], delay: float, post: float) -> list[str]:
        """:func:`family` as a sync workflow (a direct call of a child blocks)."""
        first = kid_sync(f"{label}a", durations, delay)
        work_sync("after-a", post)
        second = durably.start_child(kid, f"{label}b", durations[::-1], delay)
        work_sync("started", delay)
        b = second.result()
        work_sync("after-b", post)
        return [first, b]

    # -- cancellation --------------------------------------------------------------------------

    @app.workflow(name="doomed")
    async def doomed(mode: str, delay: float, warm: list[float]) -> str:
        """A step, a short sleep and a step per ``warm`` duration, then a wait that only a
        cancellation ends (a long sleep, an event nobody sends, a doomed child awaited at once, or
        one started with start_child, then a step, then awaited); compensation in
        ``except durably.Cancelled``: a slow step, a durable sleep, a step, and the cancellation
        goes on."""
        try:
            await work("begin", delay)
            for i, nap in enumerate(warm):
                await durably.sleep(nap)
                await work(f"warm{i}", delay)
            if mode == "sleep":
                await durably.sleep(DOOMED_SLEEP)
            elif mode == "event":
                await durably.wait_event("never")
            elif mode == "child":
                await doomed("sleep", delay, warm[::-1])
            else:
                handle = durably.start_child(doomed, "sleep", delay, warm[::-1])
                await work("started", delay)
                await handle
            await work("never", delay)
            return "not cancelled"
        except durably.Cancelled:
            await work("undo", UNDO_DELAY)
            await durably.sleep(UNDO_NAP)
            await work("undone", delay)
            raise

    @app.workflow(name="doomed_sync")
    def doomed_sync(mode: str, delay: float, warm: list[float]) -> str:
        """:func:`doomed` as a sync workflow."""
        try:
            work_sync("begin", delay)
            for i, nap in enumerate(warm):
                durably.sleep_sync(nap)
                work_sync(f"warm{i}", delay)
            if mode == "sleep":
                durably.sleep_sync(DOOMED_SLEEP)
            elif mode == "event":
                durably.wait_event_sync("never")
            elif mode == "child":
                doomed_sync("sleep", delay, warm[::-1])
            else:
                handle = durably.start_child(doomed_sync, "sleep", delay, warm[::-1])
                work_sync("started", delay)
                handle.result()
            work_sync("never", delay)
            return "not cancelled"
        except durably.Cancelled:
            work_sync("undo", UNDO_DELAY)
            durably.sleep_sync(UNDO_NAP)
            work_sync("undone", delay)
            raise

    return app


def main(argv: list[str]) -> int:
    """Serve the app's workflows until SIGTERM/SIGINT."""
    return serve(argv, lambda db, log: make_app(db, log, options_from_env()))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
