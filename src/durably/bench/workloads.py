"""The in-process measurements: the storage floors, throughput, sequential and start-to-result
latency. Each runs on a fresh database of the target and returns its figures (all positive)."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import durably
from durably.bench.options import Params
from durably.bench.procs import client_and_workers
from durably.bench.targets import Target
from durably.bench.workload import MANY_STEPS, ONE_STEP, STEPS_PER_WORKFLOW, THREE_STEPS, build

Figures = dict[str, float]


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile ``pct`` (0-100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def floor_commit(target: Target, params: Params) -> Figures:
    with target.fresh("floor-commit") as url:
        return target.floor_commit(url, params.commits)


def floor_batch(target: Target, params: Params) -> Figures:
    with target.fresh("floor-batch") as url:
        return target.floor_batch(url, params.batches, params.batch_rows)


async def _submit_all(app: durably.App, workflows: int) -> Figures:
    """Start ``workflows`` workflows at once (gathered), then await their results together (as
    ``asyncio.gather`` of ``result_async``: one poll reads every ended one)."""
    t0 = time.perf_counter()
    handles = await asyncio.gather(
        *(app.start_async(THREE_STEPS, n, id=f"throughput-{n}") for n in range(workflows))
    )
    submitted = time.perf_counter() - t0
    expected = sum(range(STEPS_PER_WORKFLOW))
    values = await asyncio.gather(*(handle.result_async(timeout=900) for handle in handles))
    for n, (handle, value) in enumerate(zip(handles, values, strict=True)):
        if value != n + expected:
            raise RuntimeError(f"workflow {handle.id} returned {value!r}")
    elapsed = time.perf_counter() - t0
    steps = workflows * STEPS_PER_WORKFLOW
    return {
        "workflows": workflows,
        "steps": steps,
        "seconds": elapsed,
        "submit_seconds": submitted,
        "workflows_per_s": workflows / elapsed,
        "steps_per_s": steps / elapsed,
    }


@contextmanager
def embedded(target: Target, label: str) -> Iterator[durably.App]:
    """A fresh database (``label``) and an App on it whose embedded worker runs while in use."""
    with target.fresh(label) as url:
        app = build(url)
        try:
            with app:
                yield app
        finally:
            app.close()


def throughput_embedded(target: Target, params: Params) -> Figures:
    """One process: the bench process's embedded worker runs what it starts."""
    with embedded(target, "throughput-1") as app:
        figures = asyncio.run(_submit_all(app, params.workflows))
    return {"processes": 1, **figures}


def throughput_processes(target: Target, params: Params) -> Figures:
    """K ``durably worker`` processes run; the bench process is a pure client."""
    with client_and_workers(target, "throughput-k") as (_, client, workers):
        spawned = [workers.spawn() for _ in range(params.processes)]
        for worker in spawned:
            workers.registration(worker)
        figures = asyncio.run(_submit_all(client, params.workflows))
        for worker in spawned:
            workers.check(worker)
    return {"processes": params.processes, **figures}


def _floor_now(target: Target, label: str, commits: int) -> float:
    with target.fresh(label) as url:
        return target.floor_commit(url, commits)["commit_ms"]


def sequential(target: Target, params: Params) -> Figures:
    """One workflow of M no-op steps; per-step time from consecutive journal commits, next to
    single-row commits measured just before and just after it (a disk's commit time drifts
    over a run: the floor at the start of the run can be far from the one around this)."""
    floor_before = _floor_now(target, "sequential-floor-before", max(50, params.commits // 2))
    with embedded(target, "sequential") as app:
        handle = app.start(MANY_STEPS, params.steps, id="sequential")
        value = handle.result(timeout=900)
        history = handle.history()
    if value != sum(range(params.steps)) or len(history) != params.steps:
        raise RuntimeError(f"sequential: result {value!r}, {len(history)} journal entries")
    deltas = [
        (b.finished_at - a.finished_at).total_seconds() * 1000
        for a, b in itertools.pairwise(history)
    ]
    total = (history[-1].finished_at - history[0].finished_at).total_seconds()
    floor_after = _floor_now(target, "sequential-floor-after", max(50, params.commits // 2))
    return {
        "steps": params.steps,
        "step_ms": total * 1000 / len(deltas),
        "p99_step_ms": percentile(deltas, 99),
        "floor_before_ms": floor_before,
        "floor_after_ms": floor_after,
        "floor_ms": (floor_before + floor_after) / 2,
    }


def start_to_result(target: Target, params: Params) -> Figures:
    """A 1-step workflow started, then its result awaited, one at a time (embedded worker)."""
    samples: list[float] = []
    with embedded(target, "latency") as app:
        for n in range(params.warmup + params.samples):
            t0 = time.perf_counter()
            value = app.start(ONE_STEP, n, id=f"latency-{n}").result(timeout=60)
            elapsed = time.perf_counter() - t0
            if value != n:
                raise RuntimeError(f"latency-{n} returned {value!r}")
            if n >= params.warmup:
                samples.append(elapsed * 1000)
    return {
        "samples": len(samples),
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "mean_ms": sum(samples) / len(samples),
    }
