"""The PostgreSQL benchmark runs end to end with --quick, as a user runs it (in a subprocess).

No timing assertions: only that every line is measured, positive, and the schema is dropped.
Without a reachable server this test fails, unless DURABLY_SKIP_POSTGRES=1 says to skip it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_postgres.py"
PG_URL = os.environ.get("DURABLY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

THROUGHPUT_KEYS = {
    "workflows",
    "processes",
    "steps",
    "seconds",
    "start_seconds",
    "start_ms",
    "workflows_per_s",
    "steps_per_s",
    "ratio_to_raw_commits_per_s",
}
EXPECTED: dict[str, set[str]] = {
    "raw_commit": {"commits", "commit_ms", "commits_per_s"},
    "raw_batch": {"batches", "rows_per_batch", "rows_per_s", "batch_ms"},
    "backlog_1": THROUGHPUT_KEYS | {"ready_seconds"},
    "backlog_2": THROUGHPUT_KEYS | {"ready_seconds"},
    "live_1": THROUGHPUT_KEYS,
    "live_2": THROUGHPUT_KEYS,
    "sequential": {"steps", "seconds", "step_ms", "journal_step_ms", "ratio_to_raw_commit"},
    "takeover_new_worker": {
        "step_seconds",
        "restart_after_kill_s",
        "recorded_after_kill_s",
        "restart_after_spawn_s",
        "recorded_after_spawn_s",
    },
    "takeover_live_peer": {"step_seconds", "restart_after_kill_s", "recorded_after_kill_s"},
}


def test_bench_postgres_quick_writes_every_line(tmp_path: Path) -> None:
    if os.environ.get("DURABLY_SKIP_POSTGRES") == "1":
        pytest.skip("DURABLY_SKIP_POSTGRES=1: PostgreSQL benchmark skipped on request")
    import psycopg

    out = tmp_path / "bench.json"
    env = dict(os.environ)
    env.pop("DURABLY_DB", None)
    env["DURABLY_TEST_POSTGRES_URL"] = PG_URL
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())

    assert set(EXPECTED) <= set(results)
    for key, fields in EXPECTED.items():
        assert set(results[key]) == fields, key
        for field in fields:
            value = results[key][field]
            assert isinstance(value, int | float) and value > 0, (key, field, value)
    assert results["params"]["workflows"] == 20
    for key in ("backlog_1", "live_1"):
        assert results[key]["processes"] == 1
    for key in ("backlog_2", "live_2"):
        assert results[key]["processes"] == 2
    for line in (
        "raw commit",
        "backlog drain, 2 processes",
        "live start, 1 process",
        "sequential, 1 wf x 20 steps",
        "takeover after kill -9, new worker",
        "takeover after kill -9, live peer",
    ):
        assert line in proc.stdout, line

    schema = results["environment"]["schema"]
    assert schema.startswith("bench_")
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=10) as conn:
        left = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchall()
    assert left == [], f"schema {schema} was not dropped"
