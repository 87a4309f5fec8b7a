"""Core benchmark: durably's throughput and per-step latency next to the raw SQLite floor.

Every figure is printed next to the storage floor measured in the same run, on the same kind of
file durably's SqliteStore uses (WAL, synchronous=FULL), in the same folder:

- raw: the mean time of one committed single-row transaction (BEGIN IMMEDIATE; INSERT; COMMIT),
  and the rows/s of 100-row batches, one batch per commit;
- throughput: N workflows of 3 sequential no-op steps, each started with ``app.start`` from the
  main thread while an embedded worker runs (async workflow + async steps, then sync workflow +
  sync steps); wall time from the first start to the last result;
- sequential latency: one workflow of M sequential no-op steps; mean time per step.

Each measurement uses a fresh database file. Usage::

    python benchmarks/bench_core.py [--db-dir DIR] [--workflows 2000] [--steps 1000]
                                    [--json out.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tables import num, table

import durably

STEPS_PER_WORKFLOW = 3
BATCH_ROWS = 100
# A payload about the size of a small journal entry's result.
ROW_PAYLOAD = '{"ok": true, "value": "' + "x" * 64 + '"}'


# -- the raw storage floor ------------------------------------------------------------------------


def _raw_connection(path: Path) -> sqlite3.Connection:
    """A connection configured like durably's SqliteStore writer: WAL, synchronous=FULL."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute(
        "CREATE TABLE rows (id INTEGER PRIMARY KEY, workflow_id TEXT NOT NULL, "
        "seq INTEGER NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL)"
    )
    return conn


def bench_raw_commit(path: Path, commits: int) -> dict[str, float]:
    """Mean ms of one committed single-row INSERT transaction."""
    conn = _raw_connection(path)
    try:
        t0 = time.perf_counter()
        for i in range(commits):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO rows (workflow_id, seq, payload, created_at) VALUES (?, ?, ?, ?)",
                ("wf", i, ROW_PAYLOAD, time.time()),
            )
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
    commit_ms = elapsed / commits * 1000
    return {"commits": commits, "commit_ms": commit_ms, "commits_per_s": commits / elapsed}


def bench_raw_batch(path: Path, batches: int, rows: int = BATCH_ROWS) -> dict[str, float]:
    """Rows/s when ``rows`` rows share each committed transaction."""
    conn = _raw_connection(path)
    try:
        t0 = time.perf_counter()
        for b in range(batches):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO rows (workflow_id, seq, payload, created_at) VALUES (?, ?, ?, ?)",
                [("wf", b * rows + i, ROW_PAYLOAD, time.time()) for i in range(rows)],
            )
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
    return {
        "batches": batches,
        "rows_per_batch": rows,
        "rows_per_s": batches * rows / elapsed,
        "batch_ms": elapsed / batches * 1000,
    }


# -- durably -------------------------------------------------------------------------------------


def _app(path: Path) -> durably.App:
    return durably.App(f"sqlite:///{path}")


def bench_throughput(
    path: Path, workflows: int, *, sync: bool, backlog: bool = False
) -> dict[str, float]:
    """``workflows`` workflows of 3 sequential no-op steps, started one by one, all awaited.

    Normally the embedded worker runs while the workflows are started, and the wall time runs
    from the first start to the last result. With ``backlog`` they are all started first, with
    no worker, and the wall time runs from starting the worker to the last result: how fast a
    worker drains a backlog, without the cost of the starts.
    """
    app = _app(path)
    run: Any
    if sync:

        @app.step(name="noop_sync")
        def noop_sync(i: int) -> int:
            return i

        @app.workflow(name="three_steps_sync")
        def three_steps_sync(n: int) -> int:
            total = 0
            for i in range(STEPS_PER_WORKFLOW):
                total += noop_sync(i)
            return total + n

        run = three_steps_sync
    else:

        @app.step(name="noop_async")
        async def noop_async(i: int) -> int:
            return i

        @app.workflow(name="three_steps_async")
        async def three_steps_async(n: int) -> int:
            total = 0
            for i in range(STEPS_PER_WORKFLOW):
                total += await noop_async(i)
            return total + n

        run = three_steps_async

    expected_extra = sum(range(STEPS_PER_WORKFLOW))
    try:
        if backlog:
            s0 = time.perf_counter()
            handles = [app.start(run, n, id=f"bench-{n}") for n in range(workflows)]
            start_seconds = time.perf_counter() - s0
            app.start_worker()
            t0 = time.perf_counter()
        else:
            app.start_worker()
            t0 = time.perf_counter()
            handles = [app.start(run, n, id=f"bench-{n}") for n in range(workflows)]
            start_seconds = time.perf_counter() - t0
        for n, h in enumerate(handles):
            value = h.result(timeout=600)
            if value != n + expected_extra:
                raise RuntimeError(f"workflow {h.id} returned {value!r}")
        elapsed = time.perf_counter() - t0
    finally:
        app.close()
    steps = workflows * STEPS_PER_WORKFLOW
    return {
        "workflows": workflows,
        "steps": steps,
        "seconds": elapsed,
        "start_seconds": start_seconds,
        "start_ms": start_seconds / workflows * 1000,
        "workflows_per_s": workflows / elapsed,
        "steps_per_s": steps / elapsed,
    }


def bench_sequential(path: Path, steps: int) -> dict[str, float]:
    """One workflow of ``steps`` sequential no-op steps; mean wall time per step."""
    app = _app(path)

    @app.step(name="noop")
    async def noop(i: int) -> int:
        return i

    @app.workflow(name="many_steps")
    async def many_steps(n: int) -> int:
        total = 0
        for i in range(n):
            total += await noop(i)
        return total

    try:
        with app:
            t0 = time.perf_counter()
            h = app.start(many_steps, steps, id="bench-sequential")
            value = h.result(timeout=600)
            elapsed = time.perf_counter() - t0
            if value != sum(range(steps)):
                raise RuntimeError(f"sequential workflow returned {value!r}")
            journal = h.history()
    finally:
        app.close()
    if len(journal) != steps:
        raise RuntimeError(f"expected {steps} journal entries, found {len(journal)}")
    # Time between the first step's start and the last step's commit, from the journal itself:
    # excludes the start transaction and the claim.
    inner = (journal[-1].finished_at - journal[0].started_at).total_seconds()
    return {
        "steps": steps,
        "seconds": elapsed,
        "step_ms": elapsed / steps * 1000,
        "journal_step_ms": inner / steps * 1000,
    }


# -- reporting ------------------------------------------------------------------------------------


def bench_sleeping(path: Path, count: int) -> dict[str, float]:
    """Worker RSS with ``count`` parked sleeping workflows, in a fresh process."""
    script = Path(__file__).with_name("bench_sleeping.py")
    proc = subprocess.run(
        [sys.executable, str(script), str(path), str(count)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _filesystem(folder: Path) -> str:
    """The filesystem type holding ``folder`` (Linux /proc/mounts), else 'unknown'."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    target = str(folder.resolve())
    best, fstype = "", "unknown"
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, fstype = mount, parts[2]
    return fstype


def render(results: dict[str, Any]) -> str:
    """The human-readable table."""
    raw, batch = results["raw_commit"], results["raw_batch"]
    seq = results["sequential"]
    floor_commit = num(raw["commits_per_s"], "commits/s")
    rows: list[tuple[str, str, str, str]] = [
        (
            "raw commit, 1 row per txn",
            num(raw["commit_ms"], "ms/commit"),
            "(the floor)",
            "",
        ),
        (
            f"raw batch, {batch['rows_per_batch']} rows per txn",
            num(batch["rows_per_s"], "rows/s"),
            "(the ceiling)",
            "",
        ),
    ]
    for key, label in (
        ("async_throughput", "async throughput"),
        ("sync_throughput", "sync throughput"),
        ("async_backlog", "async backlog drain"),
    ):
        t = results[key]
        rows.append(
            (
                f"{label}, {t['workflows']} wf x {STEPS_PER_WORKFLOW} steps",
                f"{num(t['workflows_per_s'], 'wf/s')}, {num(t['steps_per_s'], 'steps/s')}",
                floor_commit,
                f"{t['steps_per_s'] / raw['commits_per_s']:.2f}x",
            )
        )
    rows.append(
        (
            f"sequential, 1 wf x {seq['steps']} steps",
            num(seq["step_ms"], "ms/step"),
            num(raw["commit_ms"], "ms/commit"),
            f"{seq['ratio_to_raw_commit']:.2f}x",
        )
    )

    env = results["environment"]
    out = [
        f"durably core benchmark  {env['date']}",
        f"  Python {env['python']}, SQLite {env['sqlite']}, {env['cpus']} CPUs, "
        f"db dir {env['db_dir']} ({env['filesystem']}), WAL + synchronous=FULL",
        "",
        *table(("measurement", "durably", "raw SQLite, same run", "ratio"), rows),
        "",
        "  throughput ratio = durably steps/s over raw single-row commits/s (above 1: group commit",
        "  beats one fsync per step); sequential ratio = ms per step over ms per raw commit.",
    ]
    for key in ("async_throughput", "sync_throughput"):
        t = results[key]
        out.append(
            f"  {key.split('_')[0]} throughput: {t['workflows']} app.start calls took "
            f"{t['start_seconds']:.2f} of {t['seconds']:.2f} s ({t['start_ms']:.2f} ms each = "
            f"{t['start_ms'] / raw['commit_ms']:.1f}x a raw commit)."
        )
    b = results["async_backlog"]
    out.append(
        f"  backlog drain: all started first with no worker ({b['start_ms']:.2f} ms per "
        "app.start), then timed"
    )
    out.append("  from starting the worker to the last result.")
    out.append(
        f"  sequential: {seq['journal_step_ms']:.3f} ms/step measured inside the journal "
        "(first step start to last step commit)."
    )
    z = results["sleeping"]
    out.append(
        f"  sleeping: {z['workflows']:,.0f} workflows parked in {z['seconds_to_park_all']:.1f} s; "
        f"worker RSS {z['rss_mb']:.0f} MB ({z['rss_idle_mb']:.0f} MB before starting them; "
        f"{z['rss_per_1000_mb']:.2f} MB per 1,000)."
    )
    return "\n".join(out)


def run(
    db_dir: Path,
    workflows: int,
    steps: int,
    raw_commits: int,
    raw_batches: int,
    sleeping: int = 10_000,
) -> dict[str, Any]:
    """Run every measurement, each on a fresh file in ``db_dir``; return the results."""
    stamp = f"{os.getpid()}-{int(time.time() * 1000)}"

    created: list[Path] = []

    def fresh(label: str) -> Path:
        path = db_dir / f"bench-{stamp}-{label}.db"
        if path.exists():
            raise RuntimeError(f"{path} already exists")
        created.append(path)
        return path

    measurements: list[tuple[str, Callable[[], dict[str, float]]]] = [
        ("raw_commit", lambda: bench_raw_commit(fresh("raw-commit"), raw_commits)),
        ("raw_batch", lambda: bench_raw_batch(fresh("raw-batch"), raw_batches)),
        ("async_throughput", lambda: bench_throughput(fresh("async"), workflows, sync=False)),
        ("sync_throughput", lambda: bench_throughput(fresh("sync"), workflows, sync=True)),
        (
            "async_backlog",
            lambda: bench_throughput(fresh("backlog"), workflows, sync=False, backlog=True),
        ),
        ("sequential", lambda: bench_sequential(fresh("sequential"), steps)),
        ("sleeping", lambda: bench_sleeping(fresh("sleeping"), sleeping)),
    ]
    results: dict[str, Any] = {
        "environment": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
            "cpus": os.cpu_count() or 0,
            "db_dir": str(db_dir),
            "filesystem": _filesystem(db_dir),
            "durably": durably.__version__,
        },
        "params": {
            "workflows": workflows,
            "steps_per_workflow": STEPS_PER_WORKFLOW,
            "sequential_steps": steps,
            "raw_commits": raw_commits,
            "raw_batches": raw_batches,
            "raw_batch_rows": BATCH_ROWS,
            "sleeping_workflows": sleeping,
        },
    }
    try:
        for key, measure in measurements:
            print(f"  measuring {key.replace('_', ' ')}...", file=sys.stderr, flush=True)
            results[key] = measure()
    finally:
        for path in created:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    seq, raw = results["sequential"], results["raw_commit"]
    seq["ratio_to_raw_commit"] = seq["step_ms"] / raw["commit_ms"]
    for key in ("async_throughput", "sync_throughput", "async_backlog"):
        t = results[key]
        t["ratio_to_raw_commits_per_s"] = t["steps_per_s"] / raw["commits_per_s"]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--db-dir", type=Path, help="folder for the database files (default: a temp dir)"
    )
    parser.add_argument(
        "--workflows", type=int, default=2000, help="workflows in each throughput run"
    )
    parser.add_argument("--steps", type=int, default=1000, help="steps of the sequential workflow")
    parser.add_argument("--raw-commits", type=int, default=1000, help="single-row raw commits")
    parser.add_argument(
        "--raw-batches", type=int, default=100, help=f"{BATCH_ROWS}-row raw batches"
    )
    parser.add_argument(
        "--sleeping", type=int, default=10_000, help="parked workflows for the memory line"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.workflows, args.steps, args.raw_commits, args.raw_batches = 20, 20, 50, 5
        args.sleeping = 50
    for name in ("workflows", "steps", "raw_commits", "raw_batches", "sleeping"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    with tempfile.TemporaryDirectory(prefix="durably-bench-") as tmp:
        db_dir = args.db_dir or Path(tmp)
        if not db_dir.is_dir():
            parser.error(f"--db-dir {db_dir} is not a folder")
        results = run(
            db_dir, args.workflows, args.steps, args.raw_commits, args.raw_batches, args.sleeping
        )
    print(render(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
