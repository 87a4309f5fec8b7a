"""The examples run end to end, as a user runs them (in subprocesses).

The benchmark's smoke test is tests/test_bench.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


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
