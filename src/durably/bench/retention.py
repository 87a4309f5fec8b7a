"""How much a retention purge slows a running workload: ``python -m durably.bench.retention``.

Seeds ``--purge`` finished workflows (each with two journal entries) long past their retention,
then runs a closed-loop workload (``--clients`` concurrent clients, each starting a three-step
workflow and waiting for its result, on an embedded worker) in alternating slots of
``--slot`` seconds: one with the purge paused, one with it running (in batches of ``--batch``
ids with ``--pause`` seconds between them, as the workers' retention pass does), until every
seeded workflow is purged. Alternating slots cancel the drift of a shared machine. Prints the
median throughput of each kind of slot and their ratio. Prints numbers; asserts nothing.

``--db`` is a database URL (default: a temporary SQLite file); for PostgreSQL give
``postgresql://...``: a fresh schema is made and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import durably
from durably.storage.base import WorkflowSelection
from durably.worker import WorkerOptions
from durably.worker.retention import PURGEABLE_STATUSES, rest_after

__all__ = ["main"]

_COLUMNS = "id, name, status, input, output, created_at, updated_at, started_at, finished_at, epoch"
_JOURNAL = (
    "workflow_id, seq, kind, name, status, result, attempts, owner, epoch, started_at, "
    "finished_at, key"
)
_SEED_SQLITE = (
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1) "
    "INSERT INTO workflows ({cols}) SELECT 'old-' || i, 'old', 'completed', '[]', '1', "
    "1000.0 + i, 2000.0 + i, 1000.0 + i, 2000.0 + i, 1 FROM n"
)
_SEED_POSTGRES = (
    "INSERT INTO workflows ({cols}) SELECT 'old-' || i, 'old', 'completed', '[]', '1', "
    "1000.0 + i, 2000.0 + i, 1000.0 + i, 2000.0 + i, 1 FROM generate_series(0, %s - 1) AS i"
)
_SEED_JOURNAL = (
    "INSERT INTO journal ({cols}) SELECT id, s.seq, 'step', 'work', 'completed', '1', 1, "
    "'seed', 1, created_at, finished_at, CAST(s.seq AS TEXT) FROM workflows, "
    "(SELECT 0 AS seq UNION ALL SELECT 1) AS s WHERE name = 'old'"
)


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    if url is None or not url.startswith(("postgres://", "postgresql://")):
        if url is not None:
            yield url
            return
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'retention.db'}"
        return
    import psycopg
    from psycopg import sql

    schema = f"bench_retention_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}schema={schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _seed(app: durably.App, count: int) -> None:
    store: Any = app.store
    postgres = store._dialect.name == "postgres"
    seed = (_SEED_POSTGRES if postgres else _SEED_SQLITE).format(cols=_COLUMNS)
    with store._transaction() as conn:
        conn.execute(seed, (count,))
        conn.execute(_SEED_JOURNAL.format(cols=_JOURNAL))
    with store._transaction() as conn:  # statistics as a database holding old rows has them
        conn.execute("ANALYZE")


def _purger(
    store: Any, selection: WorkflowSelection, args: argparse.Namespace, gate: threading.Event
) -> tuple[threading.Thread, dict[str, float]]:
    """A thread purging ``selection`` as a retention pass does (batches, pauses), that purges
    only while ``gate`` is set; its figures once done."""
    figures: dict[str, float] = {}

    def run() -> None:
        purged, busy, after = 0, 0.0, None
        while True:
            gate.wait()
            t0 = time.perf_counter()
            page = store.expired_workflows(selection, after=after, limit=args.batch)
            if page:
                purged += len(store.purge_workflows([wid for _, wid in page]))
                after = page[-1]
            took = time.perf_counter() - t0
            busy += took
            if len(page) < args.batch:
                break
            time.sleep(rest_after(took, args.pause, args.share))
        figures.update(purged=purged, busy_seconds=busy)

    return threading.Thread(target=run, daemon=True), figures


async def _measure(
    app: durably.App, wf: Any, args: argparse.Namespace, gate: threading.Event,
    purging: threading.Thread,
) -> dict[str, list[float]]:  # fmt: skip
    """Run the closed loop in alternating slots of ``args.slot`` seconds, the purge paused
    (``alone``) then running (``purge``), until the purge is done: each slot's throughput."""
    done = 0
    stop = False

    async def client() -> None:
        nonlocal done
        i = 0
        while not stop:
            handle = await app.start_async(wf, i, id=f"load-{uuid.uuid4().hex}")
            await handle.result_async(timeout=120)
            done += 1
            i += 1

    clients = [asyncio.ensure_future(client()) for _ in range(args.clients)]
    await asyncio.sleep(2.0)  # warm up
    rates: dict[str, list[float]] = {"alone": [], "purge": []}
    purging.start()
    slot = 0
    while True:
        kind = "purge" if slot % 2 else "alone"
        if kind == "purge":
            gate.set()
        before, t0 = done, time.perf_counter()
        await asyncio.sleep(args.slot)
        gate.clear()
        if kind == "purge" and not purging.is_alive():
            break  # the purge ended within this slot: a partial slot, not counted
        rates[kind].append((done - before) / (time.perf_counter() - t0))
        slot += 1
    before, t0 = done, time.perf_counter()
    await asyncio.sleep(args.slot)  # one more slot alone, after the purge
    rates["alone"].append((done - before) / (time.perf_counter() - t0))
    stop = True
    await asyncio.gather(*clients)
    return rates


def _run(args: argparse.Namespace, url: str) -> dict[str, float]:
    options = WorkerOptions(retention_interval=3600.0)  # the bench runs its own pass
    app = durably.App(url, worker_options=options, retention=timedelta(days=1))

    @app.step
    async def work(x: int) -> int:
        return x + 1

    @app.workflow(retention=None)
    async def load(x: int) -> int:
        for _ in range(3):
            x = await work(x)
        return x

    _seed(app, args.purge)
    selection = WorkflowSelection(
        statuses=PURGEABLE_STATUSES, names=("old",), finished_before=time.time()
    )
    gate = threading.Event()
    purging, figures = _purger(app.store, selection, args, gate)
    with app:
        rates = asyncio.run(_measure(app, load, args, gate, purging))
    purging.join()
    left = app.store.count_workflows(WorkflowSelection(names=("old",)))
    app.close()
    alone = statistics.median(rates["alone"])
    during = statistics.median(rates["purge"]) if rates["purge"] else float("nan")
    return {
        **figures, "left": left, "alone_wf_per_s": alone, "during_wf_per_s": during,
        "ratio": during / alone, "slots_alone": len(rates["alone"]),
        "slots_purge": len(rates["purge"]),
        "purged_per_busy_s": figures["purged"] / max(figures["busy_seconds"], 1e-9),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m durably.bench.retention", description=__doc__)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--purge", type=int, default=100_000, help="finished workflows to purge")
    parser.add_argument("--clients", type=int, default=20, help="concurrent workload clients")
    parser.add_argument("--slot", type=float, default=1.0, help="seconds of each measured slot")
    parser.add_argument("--batch", type=int, default=WorkerOptions().retention_batch,
                        help="ids purged per transaction")  # fmt: skip
    defaults = WorkerOptions()
    parser.add_argument(
        "--pause",
        type=float,
        default=defaults.retention_pause,
        help="least seconds between batches",
    )
    parser.add_argument(
        "--share", type=float, default=defaults.retention_share,
        help="most of the time spent in purge transactions (WorkerOptions.retention_share)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    # stopped (SIGTERM), it still drops the schema it made
    before = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with _database(args.db) as url:
            figures = _run(args, url)
    finally:
        signal.signal(signal.SIGTERM, before)
    backend = "postgresql" if url.startswith("postgres") else "sqlite"
    print(f"backend: {backend}; purged {int(figures['purged'])} finished workflows "
          f"({int(figures['left'])} left), batch {args.batch}, share {args.share}; "
          f"workload: {args.clients} clients, 3-step workflows")  # fmt: skip
    print(f"throughput alone (median of {int(figures['slots_alone'])} slots of {args.slot}s): "
          f"{figures['alone_wf_per_s']:8.1f} workflows/s")  # fmt: skip
    print(f"throughput while purging ({int(figures['slots_purge'])} slots):       "
          f"{figures['during_wf_per_s']:8.1f} workflows/s")  # fmt: skip
    print(f"ratio while purging / alone: {figures['ratio']:.3f}")
    print(f"purge: {figures['busy_seconds']:.1f} s in its transactions, "
          f"{figures['purged_per_busy_s']:.0f} workflows per such second")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
