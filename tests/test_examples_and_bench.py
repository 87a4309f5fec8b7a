"""The examples and the benchmark run end to end, as a user runs them (in subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BENCH = ROOT / "benchmarks" / "bench_core.py"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DURABLY_DB", None)
    env.pop("DURABLY_DEMO_DIR", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def _tmp_leftovers(tmp: Path) -> set[str]:
    return {p.name for p in tmp.iterdir() if p.name.startswith("durably-demo-")}


def test_demo_crash_survives_kill_and_ends_consistent(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env_tmp = {"TMPDIR": str(tmpdir)}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo_crash.py")], cwd=tmp_path,
        env={**_env(), **env_tmp}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "SIGKILL worker #1" in out
    assert "exit status -9" in out
    assert "checkpointed at the kill: reserve, withdraw" in out
    assert "consistent: money conserved, the transfer applied exactly once" in out
    assert "final balances: alice $350.00, bob $250.00; total $600.00 (was $600.00)" in out
    assert out.rstrip().endswith("OK: the workflow survived kill -9 and finished exactly once.")
    assert "FAILED" not in out
    # The scratch folder is gone and nothing landed in the working directory.
    assert not _tmp_leftovers(tmpdir)
    assert not any(tmp_path.glob("*.db*"))


def test_quickstart_runs_and_is_idempotent_by_id(tmp_path: Path) -> None:
    first = _run([str(EXAMPLES / "quickstart.py")], cwd=tmp_path, timeout=60)
    assert first.returncode == 0, first.stdout + first.stderr
    expected = "charged ada 400 cents (idempotency key checkout-ada-1:1)"
    assert first.stdout.strip() == expected
    assert (tmp_path / "durably.db").exists()
    # Same workflow id again: the recorded result comes back, nothing runs twice.
    again = _run([str(EXAMPLES / "quickstart.py")], cwd=tmp_path, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip() == expected


def test_readme_shows_the_quickstart_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = readme.split("```python\n")[1:]
    code = (EXAMPLES / "quickstart.py").read_text()
    assert any(block.split("```", 1)[0] == code for block in blocks)


def _positive_numbers(section: dict[str, object]) -> None:
    for key, value in section.items():
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert value > 0, (key, value)


@pytest.mark.parametrize("db_dir", [False, True], ids=["temp-dir", "db-dir"])
def test_bench_quick_writes_json(tmp_path: Path, db_dir: bool) -> None:
    out_json = tmp_path / "bench.json"
    args = [str(BENCH), "--quick", "--json", str(out_json)]
    dbs = tmp_path / "dbs"
    if db_dir:
        dbs.mkdir()
        args += ["--db-dir", str(dbs)]
    proc = _run(args, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "raw commit, 1 row per txn" in proc.stdout
    assert "sequential, 1 wf x 20 steps" in proc.stdout

    data = json.loads(out_json.read_text())
    assert {"environment", "params", "raw_commit", "raw_batch", "async_throughput",
            "sync_throughput", "async_backlog", "sequential"} <= set(data)  # fmt: skip
    assert data["params"]["workflows"] == 20
    assert set(data["raw_commit"]) >= {"commit_ms", "commits_per_s"}
    assert set(data["raw_batch"]) >= {"rows_per_s"}
    for key in ("async_throughput", "sync_throughput", "async_backlog"):
        assert set(data[key]) >= {"workflows_per_s", "steps_per_s", "seconds", "start_ms"}
        assert data[key]["workflows"] == 20
        assert data[key]["steps"] == 60
    assert set(data["sequential"]) >= {"step_ms", "ratio_to_raw_commit"}
    assert data["sequential"]["steps"] == 20
    for key in ("raw_commit", "raw_batch", "async_throughput", "sync_throughput", "async_backlog"):
        _positive_numbers(data[key])
    _positive_numbers(data["sequential"])
    if db_dir:  # the benchmark removes its database files from a folder it was given
        assert list(dbs.iterdir()) == []
