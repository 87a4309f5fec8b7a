"""Connection loss: a worker process survives a PostgreSQL restart in the middle of a run.

The test starts its own throwaway PostgreSQL cluster (initdb/pg_ctl on a free port, run as the
``postgres`` OS user when the tests run as root), a worker subprocess on it, ~50 workflows, and
restarts the server while they run. Every workflow must complete with its result, each step
must be recorded once and never run again after it was recorded, and the worker must log that
it noticed the loss, recover, and exit cleanly on SIGTERM. Fails when the PostgreSQL server
binaries are missing (DURABLY_TEST_BACKENDS=sqlite leaves it out).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import durably
from durably import WorkflowStatus

from .pg_cluster import Cluster

APP_MODULE = """
import asyncio
import os
import time

import durably

LOG = os.environ["DURABLY_TEST_LOG"]
app = durably.App(
    os.environ["DURABLY_DB"],
    worker_options=durably.WorkerOptions(
        lease_seconds=3.0, poll_interval=0.05, max_concurrent=12, eviction_threshold=0.1
    ),
)


def _log(line: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)


@app.step()
async def work(wid: str, i: int, x: int) -> int:
    _log(f"start {wid} {i} {time.time():.6f}")
    await asyncio.sleep(0.15)
    return x + i


@app.workflow()
async def flow(wid: str, x: int) -> int:
    for i in range(STEPS):
        x = await work(wid, i, x)
    return x
"""

STEPS = 4
WORKFLOWS = 50


def _wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_worker_survives_a_postgres_restart(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "lossapp.py").write_text(textwrap.dedent(APP_MODULE).replace("STEPS", str(STEPS)))
    log_path = tmp_path / "steps.log"
    log_path.touch()
    src = str(Path(durably.__file__).resolve().parents[1])
    env = dict(os.environ, DURABLY_DB=cluster.url, DURABLY_TEST_LOG=str(log_path))
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), src, env.get("PYTHONPATH", "")])
    client = durably.App(cluster.url)
    client.store  # noqa: B018  (migrates before the worker starts)

    @client.workflow()
    async def flow(wid: str, x: int) -> int:  # only starts it: the worker process runs it
        raise AssertionError("not run here")

    stderr_path = tmp_path / "worker.err"
    with open(stderr_path, "wb") as err:
        worker = subprocess.Popen(
            [sys.executable, "-m", "durably.cli", "worker", "lossapp:app"],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        ids = [f"wf-{n:03d}" for n in range(WORKFLOWS)]
        for n, wid in enumerate(ids):
            client.start(flow, wid, n, id=wid)

        def executions() -> list[tuple[str, int, float]]:
            out: list[tuple[str, int, float]] = []
            for line in log_path.read_text().splitlines():
                _, wid, i, at = line.split()
                out.append((wid, int(i), float(at)))
            return out

        # restart the server in the middle of the run
        assert _wait_for(lambda: len(executions()) >= WORKFLOWS * STEPS // 3, 60), (
            stderr_path.read_text()
        )
        assert worker.poll() is None
        t0 = time.monotonic()
        cluster.stop()
        time.sleep(1.5)
        cluster.start()
        restart = time.monotonic() - t0
        assert len(executions()) < WORKFLOWS * STEPS  # still mid-run when it went down
        # the client's pooled connections died with the server: each is checked and replaced
        # when borrowed, so a direct call right after the restart succeeds, with no retry
        late = f"wf-{WORKFLOWS:03d}"
        client.start(flow, late, WORKFLOWS, id=late)
        ids.append(late)

        def statuses() -> dict[str, WorkflowStatus] | None:
            records = [client.store.get_workflow(wid) for wid in ids]
            return {r.id: r.status for r in records if r is not None}

        def all_done() -> bool:
            st = statuses()
            return st is not None and all(s is WorkflowStatus.COMPLETED for s in st.values())

        t1 = time.monotonic()
        assert _wait_for(all_done, 90), (statuses(), stderr_path.read_text())
        recovery = time.monotonic() - t1
        assert worker.poll() is None, stderr_path.read_text()  # did not crash

        for n, wid in enumerate(ids):
            assert client.handle(wid).result(timeout=10) == n + sum(range(STEPS))
        runs = executions()
        for wid in ids:
            journal = client.store.get_journal(wid)
            steps = [e for e in journal if e.kind == "step"]
            # each step recorded exactly once, in order
            assert [e.name.rsplit(".", 1)[-1] for e in steps] == ["work"] * STEPS, journal
            assert len({e.key for e in steps}) == STEPS
            assert all(e.status == "completed" for e in steps)
            for i, entry in enumerate(steps):
                mine = [at for w, j, at in runs if w == wid and j == i]
                assert mine, (wid, i)
                # never executed again after its result was recorded
                assert all(at <= entry.finished_at for at in mine), (wid, i, mine, entry)
        print(
            f"restart {restart:.2f}s, recovery {recovery:.2f}s, "
            f"{len(runs)} step runs for {WORKFLOWS * STEPS} steps"
        )
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        client.close()
    stderr = stderr_path.read_text()
    assert worker.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert "listener lost its connection" in stderr, stderr  # it noticed the loss
    assert "listener reconnected" in stderr, stderr  # ... and recovered
