"""Runs the benchmark: every selected workload on fresh databases, then the table and JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import durably
from durably.bench.options import WORKLOADS, Params, add_arguments, params_from
from durably.bench.processes import memory, recovery, recovery_supervised, replay
from durably.bench.procs import ensure_bytecode
from durably.bench.replay_check import replay_check
from durably.bench.report import render
from durably.bench.targets import PostgresTarget, SqliteTarget, Target
from durably.bench.workloads import (
    floor_batch,
    floor_commit,
    sequential,
    start_to_result,
    throughput_embedded,
    throughput_processes,
)
from durably.codec_options import CODECS_ENV, codec_options
from durably.errors import DurablyError
from durably.storage.urls import scrub

Measure = Callable[[Target, Params], dict[str, float]]

#: (workload it belongs to, None: always; key in the results; label; function), in run order.
MEASUREMENTS: list[tuple[str | None, str, str, Measure]] = [
    (None, "floor_commit", "floor: single-row commits", floor_commit),
    (None, "floor_batch", "floor: 100-row commits", floor_batch),
    ("throughput", "throughput_1", "throughput, 1 process", throughput_embedded),
    ("throughput", "throughput_k", "throughput, K worker processes", throughput_processes),
    ("sequential", "sequential", "sequential steps", sequential),
    ("latency", "latency", "start-to-result latency", start_to_result),
    ("recovery", "recovery", "recovery after SIGKILL", recovery),
    ("recovery", "recovery_supervised", "recovery after SIGKILL, supervised", recovery_supervised),
    ("replay", "replay", "replay of a long journal", replay),
    ("replay-check", "replay_check", "replay-check of parked journals", replay_check),
    ("memory", "memory", "memory of sleeping workflows", memory),
]


def cpu_check() -> float:
    """Seconds a fixed pure-Python loop (5 million additions) takes now: the same machine can
    run at very different speeds when it is shared, and this says how fast it was."""
    started = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    return time.perf_counter() - started


def machine(target: Target) -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "durably": durably.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count() or 0,
        "sqlite": sqlite3.sqlite_version,
        "codecs": os.environ.get(CODECS_ENV) or None,
        **target.info(),
    }


def add_ratios(figures: dict[str, dict[str, float]]) -> None:
    """Each figure over the floor of the same run."""
    commit = figures["floor_commit"]
    for key in ("throughput_1", "throughput_k"):
        if key in figures:
            figures[key]["steps_ratio"] = figures[key]["steps_per_s"] / commit["commits_per_s"]
    if "sequential" in figures:
        seq = figures["sequential"]
        seq["ratio"] = seq["step_ms"] / seq.get("floor_ms", commit["commit_ms"])
        seq["ratio_to_run_floor"] = seq["step_ms"] / commit["commit_ms"]
    if "latency" in figures:
        figures["latency"]["ratio"] = figures["latency"]["p50_ms"] / commit["commit_ms"]
    if "replay" in figures:
        replay = figures["replay"]
        replay["write_floor_s"] = replay["entries"] / figures["floor_batch"]["rows_per_s"]
        replay["ratio"] = replay["from_claim_s"] / replay["write_floor_s"]


def measure(
    target: Target, params: Params, only: Sequence[str], *, url: str = ""
) -> dict[str, Any]:
    """Run the floors and the workloads in ``only``; the results (machine, params, figures).
    The secrets of ``url`` (the database URL given, if any) never reach the results."""
    results: dict[str, Any] = {
        "machine": machine(target),
        "params": dataclasses.asdict(params),
        "workloads": list(only),
        "figures": {},
    }
    errors: dict[str, str] = {}
    results["machine"]["bytecode"] = ensure_bytecode()
    results["machine"]["cpu_check_before_s"] = cpu_check()
    for workload, key, label, fn in MEASUREMENTS:
        if workload is None or workload in only:
            print(f"  measuring {label}...", file=sys.stderr, flush=True)
            try:
                results["figures"][key] = fn(target, params)
            except (DurablyError, RuntimeError, OSError) as exc:
                if workload is None:  # no floor, no ratios: give up
                    raise
                errors[key] = scrub(" ".join(str(exc).split()), url)[:2000]
                print(f"  {label} FAILED: {errors[key]}", file=sys.stderr, flush=True)
    results["machine"]["cpu_check_after_s"] = cpu_check()
    add_ratios(results["figures"])
    if errors:
        results["errors"] = errors
    return results


def run(args: argparse.Namespace) -> int:
    """``durably bench`` with parsed arguments; the exit code.

    ``--codecs`` reaches the bench's worker processes through ``$DURABLY_CODECS``, set for the
    run only: a caller's environment (a test, an embedding program) is left as it was."""
    saved = os.environ.get(CODECS_ENV)
    try:
        return _run(args)
    finally:
        if saved is None:
            os.environ.pop(CODECS_ENV, None)
        else:
            os.environ[CODECS_ENV] = saved


def _run(args: argparse.Namespace) -> int:
    try:
        params = params_from(args)
    except argparse.ArgumentTypeError as exc:
        print(f"durably bench: error: {exc}", file=sys.stderr)
        return 2
    if args.db is not None and not args.db.startswith(("postgresql://", "postgres://")):
        print(
            "durably bench: error: --db takes a PostgreSQL URL; for SQLite use --db-dir DIR",
            file=sys.stderr,
        )
        return 2
    only = args.only or WORKLOADS
    if getattr(args, "codecs", None):  # the workers (processes) read it too
        os.environ[CODECS_ENV] = args.codecs
    try:
        codec_options(argparse.Namespace())  # a bad --codecs fails now, not in every workload
    except DurablyError as exc:
        print(f"durably bench: error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.db is not None:
            target = PostgresTarget(args.db, relaxed=args.relaxed)
            results = measure(target, params, only, url=args.db)
        elif args.db_dir is not None:
            if not args.db_dir.is_dir():
                print(f"durably bench: error: {args.db_dir} is not a folder", file=sys.stderr)
                return 2
            results = measure(SqliteTarget(args.db_dir, relaxed=args.relaxed), params, only)
        else:
            with tempfile.TemporaryDirectory(prefix="durably-bench-") as tmp:
                results = measure(SqliteTarget(Path(tmp), relaxed=args.relaxed), params, only)
    except ImportError as exc:
        print(f"durably bench: error: {exc} (pip install 'durably[postgres]')", file=sys.stderr)
        return 2
    except (DurablyError, RuntimeError, OSError) as exc:
        print(f"durably bench: error: {scrub(str(exc), args.db or '')}", file=sys.stderr)
        return 1
    print(render(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 1 if "errors" in results else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m durably.bench``: the same as ``durably bench``."""
    parser = argparse.ArgumentParser(
        prog="durably bench", description="durably's benchmark suite, next to the storage floor"
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
