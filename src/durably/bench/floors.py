"""The storage floor: what the database itself costs, measured in the same run as durably.

Both floors write rows shaped like one of durably's journal entries into a fresh table with the
journal's primary key, through a plain DB-API connection with durably's durability settings:

- commit floor: one committed single-row insert, repeated; the mean ms per commit;
- batch floor: ``rows`` inserts sharing each commit; rows/s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: A result about the size of a small step's.
RESULT = '{"ok": true, "value": "' + "x" * 48 + '"}'
OWNER = "bench-host:12345:abcdef"

TABLE = """CREATE TABLE floor_journal (
    workflow_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    status TEXT NOT NULL, result TEXT, error TEXT, attempts INTEGER NOT NULL,
    owner TEXT NOT NULL, epoch INTEGER NOT NULL, started_at {real} NOT NULL,
    finished_at {real} NOT NULL, PRIMARY KEY (workflow_id, seq))"""


def _insert(mark: str) -> str:
    return (
        "INSERT INTO floor_journal (workflow_id, seq, kind, name, status, result, error, "
        "attempts, owner, epoch, started_at, finished_at) VALUES "
        f"({', '.join([mark] * 12)})"
    )


def _row(workflow: str, seq: int) -> tuple[Any, ...]:
    now = time.time()
    return (workflow, seq, "step", "noop", "completed", RESULT, None, 1, OWNER, 1, now, now)


def _create(conn: Any, mark: str) -> None:
    """The table (committed), shaped like durably's journal."""
    real = "REAL" if mark == "?" else "DOUBLE PRECISION"
    conn.execute(TABLE.format(real=real))
    if mark == "%s":
        conn.commit()


def _commit(conn: Any, begin: str | None) -> None:
    if begin is None:
        conn.commit()
    else:
        conn.execute("COMMIT")


def _timed(
    conn: Any, mark: str, commits: int, begin: str | None, write: Callable[[int], object]
) -> float:
    """Seconds that ``commits`` transactions take on a fresh table: each ``write(i)``, then a
    commit (``begin``: SQLite's explicit BEGIN first)."""
    _create(conn, mark)
    t0 = time.perf_counter()
    for i in range(commits):
        if begin is not None:
            conn.execute(begin)
        write(i)
        _commit(conn, begin)
    return time.perf_counter() - t0


def commit_floor(conn: Any, mark: str, commits: int, *, begin: str | None) -> dict[str, float]:
    """Mean ms of one committed single-row insert (``begin``: SQLite's explicit BEGIN)."""
    insert = _insert(mark)
    elapsed = _timed(conn, mark, commits, begin, lambda i: conn.execute(insert, _row("floor", i)))
    return {
        "commits": commits,
        "commit_ms": elapsed / commits * 1000,
        "commits_per_s": commits / elapsed,
    }


def batch_floor(
    conn: Any, mark: str, batches: int, rows: int, *, begin: str | None
) -> dict[str, float]:
    """Rows/s when ``rows`` single-row inserts share each commit."""
    insert = _insert(mark)

    def write(b: int) -> None:
        batch = [_row("floor", b * rows + i) for i in range(rows)]
        if mark == "?":
            conn.executemany(insert, batch)
        else:
            with conn.cursor() as cur:  # psycopg 3 pipelines executemany: one round trip
                cur.executemany(insert, batch)

    elapsed = _timed(conn, mark, batches, begin, write)
    return {
        "batches": batches,
        "rows_per_batch": rows,
        "rows_per_s": batches * rows / elapsed,
        "batch_ms": elapsed / batches * 1000,
    }
