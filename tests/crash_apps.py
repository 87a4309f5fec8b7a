"""Workflows for the process tests of ``check_crash_safety(kill=True)``: a module the worker
processes import as ``tests.crash_apps:app`` (the check moves the App to a fresh SQLite file
for each run; the database named here is never opened by the tests)."""

from __future__ import annotations

import os
import tempfile

import durably

app = durably.App(f"sqlite:///{tempfile.gettempdir()}/durably-crash-apps-unused.db")


@app.step()
def double(x: int) -> int:
    return 2 * x


@app.step()
def add(x: int, y: int) -> int:
    return x + y


@app.workflow()
def compute(x: int) -> int:
    """Deterministic: passes every point."""
    doubled = double(x)
    return add(doubled, 1)


@app.step()
def whoami() -> int:
    return os.getpid()


@app.workflow()
def by_process() -> int:
    """Not deterministic: takes another path in a process other than the one whose pid it
    recorded (resumed after a crash), as code reading process state does."""
    pid = whoami()
    if pid == os.getpid():
        return add(pid - pid, 1)
    return double(1)
