"""A real ``kill -9`` of worker processes during a step's retry backoff (SQLite and PostgreSQL:
``db_url``): the attempt count survives, each resumed worker runs the next attempt (not attempt
1) once it is due, and no more attempts run than the step's policy allows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import durably

FLOWS = """
import time
import durably

app = durably.App({db!r}, worker_options=durably.WorkerOptions(
    poll_interval=0.05, eviction_threshold={threshold}, lease_seconds=2.0))

@app.step(retry=durably.Retry(attempts=3, initial=2.0, backoff=1.0))
async def flaky() -> str:
    attempt = durably.step_context().attempt
    with open({log!r}, "a") as f:
        f.write(f"{{attempt}} {{time.time()}}\\n")
    if attempt < 3:
        raise ConnectionError(f"attempt {{attempt}} failed")
    return f"ok on attempt {{attempt}}"

@app.workflow
async def calls_flaky() -> str:
    return await flaky()
"""


def until(what: str, done: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("threshold", [0.5, 30.0], ids=["parked", "in-memory"])
def test_kill_9_during_the_backoff_keeps_the_attempt_count(
    db_url: str, tmp_path: Path, threshold: float
) -> None:
    """Parked: the 2 s backoff is longer than the eviction threshold; in memory: shorter (the
    worker holds the lease, and the next one takes the dead one's leases over at its start)."""
    log = tmp_path / "attempts.log"
    (tmp_path / "flows.py").write_text(FLOWS.format(db=db_url, log=str(log), threshold=threshold))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    client = durably.App(db_url)  # starts and reads; runs nothing
    client.workflow(name="calls_flaky")(lambda: None)
    procs: list[subprocess.Popen[bytes]] = []

    def worker() -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "durably.cli", "worker", "flows:app"]
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    def kill(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL

    def retrying(attempts: int) -> float | None:
        """The retry time of the step if its journal records ``attempts`` failed attempts."""
        journal = client.store.get_journal("kill-1")
        step = next((e for e in journal if e.kind == "step"), None)
        if step is None or step.status != "waiting" or step.attempts != attempts:
            return None
        return float(json.loads(step.result or "{}")["retry_at"])

    try:
        handle = client.start("calls_flaky", id="kill-1")
        first = worker()
        until("attempt 1 failed", lambda: retrying(1) is not None)
        retry_1 = retrying(1)
        kill(first)  # during the 2 s backoff
        second = worker()
        until("attempt 2 failed", lambda: retrying(2) is not None)
        retry_2 = retrying(2)
        kill(second)  # during the next backoff
        worker()
        assert handle.result(timeout=60) == "ok on attempt 3"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    runs = [line.split() for line in log.read_text().splitlines()]
    # each resumed worker went on with the next attempt, once due; three in all, as allowed
    assert [int(n) for n, _ in runs] == [1, 2, 3]
    assert retry_1 is not None and retry_2 is not None
    assert float(runs[1][1]) >= retry_1 and float(runs[2][1]) >= retry_2
    (step,) = client.store.get_journal("kill-1")
    assert (step.status, step.attempts) == ("completed", 3)
    assert [a.attempt for a in client.store.get_attempts("kill-1")] == [1, 2]
