"""A rolling deploy on PostgreSQL with real worker processes: workers of version A run
workflows that wait; workers of version B start; new workflows run on B while old ones finish
on A; after ``move-version --only-if-replays`` the rest finish on B; workers are killed with
SIGKILL throughout. Nothing is lost: every workflow completes once, with the versions that ran
each of its steps in its result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import durably
from durably import WorkflowStatus
from durably.cli import main as cli_main

from ..backends import postgres_schema, schema_url

FLOWS = """
import durably

app = durably.App({db!r}, worker_options=durably.WorkerOptions(lease_seconds=2.0,
                                                              poll_interval=0.05))

@app.step(name="mark")
async def mark(n: int, at: str) -> str:
    return str(app.version)  # the version of the worker that ran it

@app.workflow(name="job")
async def job(n: int, wait: bool) -> list[str]:
    first = await mark(n, "first")
    if wait:
        await durably.wait_event("go")
    else:
        await durably.sleep(0.5)
    return [first, await mark(n, "second")]
"""


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as schema:
        yield schema_url(schema)


class Workers:
    """Worker processes of ``flows:app``, by version."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
        self.env["PYTHONPATH"] = os.pathsep.join([str(cwd), *sys.path])
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, version: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "durably.cli", "worker", "flows:app", "--version", version]
        proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _until(what: str, done: Callable[[], bool], seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_a_rolling_deploy_with_workers_killed(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "flows.py").write_text(FLOWS.format(db=pg_url))
    monkeypatch.syspath_prepend(str(tmp_path))
    old, new = durably.App(pg_url, version="A"), durably.App(pg_url, version="B")
    for app in (old, new):  # clients: they start workflows by name, run nothing
        app.workflow(name="job")(lambda n, wait: None)
    workers = Workers(tmp_path)
    try:
        a1, _a2 = workers.start("A"), workers.start("A")

        def parked(ids: list[str]) -> bool:
            return all(any(e.kind == "event" for e in old.handle(i).history()) for i in ids)

        def versions() -> list[str | None]:
            return sorted(str(w.version) for w in old.list_workers())

        # version A: some workflows that finish by themselves, some that wait for an event
        quick = [old.start("job", n, False).id for n in range(4)]
        waiting = [old.start("job", n, True).id for n in range(4, 10)]
        _until("the waiting ones wait", lambda: parked(waiting))
        workers.kill(a1)  # A's other worker takes over what it held
        # version B deploys: new workflows run on B only
        b1 = workers.start("B")
        _until("B's worker registers", lambda: "B" in versions())
        fresh = [new.start("job", n, False).id for n in range(10, 14)]
        for wid in quick:
            assert old.handle(wid).result(timeout=90) == ["A", "A"]
        workers.kill(b1)
        workers.start("B")
        for wid in fresh:
            assert new.handle(wid).result(timeout=90) == ["B", "B"]
        # the waiting ones move to B once they replay against B's code, and finish there
        argv = ["move-version", "flows:app", "--from", "A", "--to", "B", "--only-if-replays"]
        assert cli_main([*argv, "--db", pg_url]) == 0
        assert new.count_versions() == {"B": {WorkflowStatus.RUNNING: 6}}
        for wid in waiting:
            new.send_event(wid, "go")
        for wid in waiting:
            assert new.handle(wid).result(timeout=90) == ["A", "B"]
        # nothing lost, nothing run twice: each workflow once, each journal as its code made it
        for wid in quick + waiting + fresh:
            info = new.handle(wid).info()
            assert info.status is WorkflowStatus.COMPLETED
            kinds = [e.kind for e in new.handle(wid).history()]
            assert kinds in (["step", "sleep", "step"], ["step", "event", "step"]), kinds
        assert new.count_versions() == {}
    finally:
        workers.stop_all()
        old.close()
        new.close()
