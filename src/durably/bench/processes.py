"""The measurements that need worker processes of their own: recovery after SIGKILL, resuming
a long journal in a fresh worker, and a worker's memory with many sleeping workflows."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from pathlib import Path

import durably
from durably.bench.options import Params
from durably.bench.procs import Worker, Workers, client_and_workers, rss_mb
from durably.bench.targets import Target
from durably.bench.workload import (
    GO_EVENT,
    JOURNAL_THEN_WAIT,
    SLEEPER,
    SLOW_STEP_SECONDS,
    SLOW_STEPS,
)
from durably.worker.supervisor import STARTUP_GRACE

Figures = dict[str, float]
POLL = 0.002
STANDBY_READY_SECONDS = STARTUP_GRACE + 1.0
"""Supervised recovery waits this long after its workers registered: past the supervisor's
startup grace (a child dying sooner is a startup failure, restarted after a backoff)."""
START_CHUNK = 1000
STALL_SECONDS = 120.0


def _step_starts(log: Path) -> list[float]:
    """When each logged step attempt started, in order."""
    try:
        lines = log.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [float(line.split()[1]) for line in lines if line.count(" ") == 1]


def _wait_starts(log: Path, count: int, workers: Workers, worker: Worker) -> list[float]:
    deadline = time.monotonic() + 120
    while len(starts := _step_starts(log)) < count:
        workers.check(worker)
        if time.monotonic() > deadline:
            raise RuntimeError(f"no step {count} in 120 s:\n{worker.output()}")
        time.sleep(POLL)
    return starts


def _halfway_through_step_1(log: Path, workers: Workers, worker: Worker) -> None:
    """Wait until step 1 of the slow workflow is under way, and half its time has passed."""
    starts = _wait_starts(log, 2, workers, worker)
    time.sleep(max(0.0, starts[-1] + SLOW_STEP_SECONDS / 2 - time.time()))


def recovery(target: Target, params: Params) -> Figures:
    """SIGKILL a worker half-way through a slow step; start a new worker; time until the
    first step after the kill starts (the interrupted one again, by its log)."""
    with (
        tempfile.TemporaryDirectory() as tmp,  # removed after the workers stopped: they write in it
        client_and_workers(target, "recovery") as (_, client, workers),
    ):
        log = Path(tmp) / "steps.log"
        first = workers.spawn()
        workers.registration(first)
        handle = client.start(SLOW_STEPS, str(log), params.slow_steps, id="recovery")
        _halfway_through_step_1(log, workers, first)
        killed_at = workers.kill(first)
        before = len(_step_starts(log))
        second = workers.spawn()
        registered = workers.registration(second)
        restarted = _wait_starts(log, before + 1, workers, second)[before]
        value = handle.result(timeout=120)
    if value != sum(range(params.slow_steps)):
        raise RuntimeError(f"recovery workflow returned {value!r}")
    return {
        "step_seconds": SLOW_STEP_SECONDS,
        "from_spawn_s": restarted - second.spawned_at,
        "from_registration_s": restarted - registered.started_at,
        "from_kill_s": restarted - killed_at,
    }


def recovery_supervised(target: Target, params: Params) -> Figures:
    """``durably worker -p 2``: SIGKILL the child running a slow step; its supervisor hands
    the work to its standby process; time from the kill until the step starts again."""
    with (
        tempfile.TemporaryDirectory() as tmp,  # removed after the workers stopped: they write in it
        client_and_workers(target, "recovery-supervised") as (_, client, workers),
    ):
        log = Path(tmp) / "steps.log"
        supervisor = workers.spawn(processes=2)
        deadline = time.monotonic() + 60
        while len(client.list_workers()) < 2:
            workers.check(supervisor)
            if time.monotonic() > deadline:
                raise RuntimeError(f"no 2 workers in 60 s:\n{supervisor.output()}")
            time.sleep(POLL)
        # a crash long after start (not a startup failure, which backs off), with the
        # standby ready: its supervisor started it with the children
        time.sleep(STANDBY_READY_SECONDS)
        handle = client.start(SLOW_STEPS, str(log), params.slow_steps, id="recovery")
        _halfway_through_step_1(log, workers, supervisor)
        owner = handle.info().owner
        if owner is None:
            raise RuntimeError("recovery-supervised: the workflow has no owner")
        before = len(_step_starts(log))
        killed_at = time.time()
        os.kill(int(owner.split(":")[-2]), signal.SIGKILL)
        restarted = _wait_starts(log, before + 1, workers, supervisor)[before]
        value = handle.result(timeout=120)
    if value != sum(range(params.slow_steps)):
        raise RuntimeError(f"recovery-supervised workflow returned {value!r}")
    return {"step_seconds": SLOW_STEP_SECONDS, "from_kill_s": restarted - killed_at}


def _wait_journal(client: durably.App, workflow_id: str, entries: int, worker: Worker) -> None:
    """Wait until the workflow's journal holds ``entries`` entries (its wait is recorded)."""
    deadline = time.monotonic() + 900
    while len(client.store.get_journal(workflow_id)) < entries:
        if worker.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{workflow_id}: journal not written:\n{worker.output()}")
        time.sleep(0.1)


def replay(target: Target, params: Params) -> Figures:
    """A workflow of J no-op steps waits for an event; its worker stops; the event is sent; a
    fresh worker resumes it. Time until the first step after the wait runs."""
    journal = params.journal
    with client_and_workers(target, "replay") as (_, client, workers):
        first = workers.spawn()
        workers.registration(first)
        handle = client.start(JOURNAL_THEN_WAIT, journal, id="replay")
        _wait_journal(client, "replay", journal + 1, first)
        workers.stop(first)  # clean stop: the workflow is released
        epoch = handle.info().epoch
        client.send_event("replay", GO_EVENT, None)
        second = workers.spawn()
        deadline = time.monotonic() + 120
        unclaimed_at = second.spawned_at
        while True:  # the claim: the epoch moves; polled every ~2 ms
            polled_at = time.time()
            if handle.info().epoch > epoch:
                break
            unclaimed_at = polled_at
            workers.check(second)
            if time.monotonic() > deadline:
                raise RuntimeError(f"replay: not claimed:\n{second.output()}")
            time.sleep(POLL)
        registered = workers.registration(second)
        marked = float(handle.result(timeout=120))
        entries = len(handle.history())
    if entries != journal + 2:
        raise RuntimeError(f"replay: {entries} journal entries, expected {journal + 2}")
    return {
        "entries": journal + 1,
        "from_claim_s": marked - unclaimed_at,
        "from_spawn_s": marked - second.spawned_at,
        "from_registration_s": marked - registered.started_at,
    }


async def _start_sleepers(client: durably.App, count: int) -> None:
    for first in range(0, count, START_CHUNK):
        last = min(count, first + START_CHUNK)
        await asyncio.gather(
            *(client.start_async(SLEEPER, n, id=f"sleeper-{n}") for n in range(first, last))
        )


def memory(target: Target, params: Params) -> Figures:
    """A worker process's RSS before and after S workflows were started and parked asleep."""
    count = params.sleepers
    with client_and_workers(target, "memory") as (url, client, workers):
        worker = workers.spawn()
        workers.registration(worker)
        idle = rss_mb(worker.pid)
        t0 = time.perf_counter()
        asyncio.run(_start_sleepers(client, count))
        started = time.perf_counter() - t0
        progress_at, parked_before = time.monotonic(), -1
        while (parked_now := target.count_parked(url)) < count:
            workers.check(worker)
            if parked_now > parked_before:
                progress_at, parked_before = time.monotonic(), parked_now
            elif time.monotonic() - progress_at > STALL_SECONDS:
                raise RuntimeError(
                    f"memory: {parked_now} of {count} sleepers parked, none more in "
                    f"{STALL_SECONDS:.0f} s (worker RSS {rss_mb(worker.pid):.0f} MB):\n"
                    f"{worker.output()}"
                )
            time.sleep(0.2)
        parked = time.perf_counter() - t0
        rss = rss_mb(worker.pid)
    return {
        "workflows": count,
        "rss_idle_mb": idle,
        "rss_mb": rss,
        "start_seconds": started,
        "parked_seconds": parked,
    }
