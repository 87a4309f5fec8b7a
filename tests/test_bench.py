"""`durably bench` runs end to end with --quick, as a user runs it (in a subprocess), on SQLite
and on PostgreSQL. No timing assertions: only that it exits 0, prints the table, and writes
every figure as a positive number to the JSON file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from durably.bench.run import main as bench_main

from .backends import PG_URL, require_postgres

DURABLY = Path(sys.executable).with_name("durably")
FIGURES = {
    "floor_commit": {"commit_ms", "commits_per_s"},
    "floor_batch": {"rows_per_s"},
    "throughput_1": {"workflows_per_s", "steps_per_s", "steps_ratio"},
    "throughput_k": {"workflows_per_s", "steps_per_s", "steps_ratio", "processes"},
    "sequential": {"step_ms", "p99_step_ms", "ratio", "floor_ms", "ratio_to_run_floor"},
    "latency": {"p50_ms", "p99_ms", "ratio"},
    "recovery": {"from_spawn_s", "from_registration_s"},
    "recovery_supervised": {"from_kill_s"},
    "replay": {"from_claim_s", "from_spawn_s", "ratio"},
    "replay_check": {"journals", "entries", "seconds", "journals_per_s", "entries_per_s"},
    "memory": {"rss_mb", "rss_idle_mb"},
}
ROWS = (
    "floor: 1-row commit",
    "floor: 100 rows per commit",
    "throughput, 1 process (embedded), 50 wf x 3 steps",
    "throughput, 2 workers, 50 wf x 3 steps",
    "sequential, 1 wf x 50 steps, per step",
    "start to result, 1-step wf",
    "recovery after SIGKILL, step restarts",
    "recovery, supervised (-p 2): standby takes over",
    "replay of a 201-entry journal",
    "replay-check, 50 wf x 20 entries",
    "memory, 500 sleeping wf",
)


def _bench(command: list[str], args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DURABLY_DB"}
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


def _check(proc: subprocess.CompletedProcess[str], out_json: Path, backend: str) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "measurement" in proc.stdout and "floor, same run" in proc.stdout
    for row in ROWS:
        assert row in proc.stdout, row
    data = json.loads(out_json.read_text())
    assert data["machine"]["backend"] == backend
    assert 0 < data["machine"]["cpu_check_before_s"] < 60
    assert 0 < data["machine"]["cpu_check_after_s"] < 60
    assert "CPU check (a 5M-step Python loop" in proc.stdout
    assert data["machine"]["bytecode"] == "compiled"  # workers start as an installed package
    assert data["params"]["workflows"] == 50
    assert set(data["figures"]) == set(FIGURES)
    for key, required in FIGURES.items():
        figures = data["figures"][key]
        assert required <= set(figures), (key, figures)
        for name, value in figures.items():
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, name)
            assert value > 0, (key, name, value)


def test_bench_quick_on_sqlite(tmp_path: Path) -> None:
    dbs = tmp_path / "dbs"
    dbs.mkdir()
    out_json = tmp_path / "bench.json"
    args = ["bench", "--quick", "--processes", "2", "--db-dir", str(dbs), "--json", str(out_json)]
    proc = _bench([str(DURABLY)], args, tmp_path)
    _check(proc, out_json, "sqlite")
    assert list(dbs.iterdir()) == []  # every fresh database file is removed
    assert not any(tmp_path.glob("*.db*"))


def test_bench_quick_on_postgres(tmp_path: Path) -> None:
    require_postgres()
    out_json = tmp_path / "bench.json"
    args = ["--quick", "--processes", "2", "--db", PG_URL, "--json", str(out_json)]
    proc = _bench([sys.executable, "-m", "durably.bench"], args, tmp_path)
    _check(proc, out_json, "postgres")


@pytest.mark.parametrize(
    "argv",
    [["--only", "bogus"], ["--steps", "0"], ["--db", "sqlite:///x.db"], ["--steps", "1"]],
)
def test_bench_rejects_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = bench_main(argv)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    assert code == 2
    assert "error" in capsys.readouterr().err
