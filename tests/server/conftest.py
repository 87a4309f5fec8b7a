"""Fixtures of the HTTP API tests: a real ``durably server`` process on a loopback port, on each
backend, and an embedded worker (in the test process, on the same database) that registers and
runs the workflows the tests start through the server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import durably

from ..backends import BACKENDS, postgres_schema, schema_url
from ..ports import free_port

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)
TOKEN = "s3cret-token"


@dataclass
class Server:
    """A running server process and an HTTP client for it (with the token, if it has one)."""

    url: str
    proc: subprocess.Popen[bytes]
    token: str | None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def server_command(db: str, *extra: str) -> list[str]:
    """The command line of ``durably server`` (``python -m durably.server``)."""
    return [sys.executable, "-m", "durably.server", "--db", db, *extra]


def server_env() -> dict[str, str]:
    """The environment of a server process: without DURABLY_TOKEN/DURABLY_DB from outside."""
    return {k: v for k, v in os.environ.items() if k not in ("DURABLY_TOKEN", "DURABLY_DB")}


def start_server(db: str, token: str | None = None, *extra: str) -> Server:
    """Start a server on a free loopback port and wait until /healthz answers."""
    port = free_port()
    args = ["--port", str(port), *extra]
    if token is not None:
        args += ["--token", token]
    # its stderr is the test's (pytest shows it when a test fails)
    proc = subprocess.Popen(server_command(db, *args), env=server_env())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} (see its stderr above)")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return Server(url, proc, token)
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not answer /healthz within 30 s")


@pytest.fixture(scope="module", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database shared by one test module, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('server')}/api.db"
        return
    with postgres_schema() as schema:
        yield schema_url(schema)


def register(app: durably.App) -> None:
    """The workflows the tests run."""

    @app.step(name="double", retry=durably.Retry(attempts=1))
    def double(x: int) -> int:
        return 2 * x

    @app.workflow(name="greet")
    async def greet(name: str) -> str:
        return f"hello {name}"

    @app.workflow(name="echo")
    async def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"args": list(args), "kwargs": kwargs}

    @app.workflow(name="waiter")
    async def waiter() -> Any:
        durably.set_state("stage", "waiting")
        value = await durably.wait_event("go")
        durably.set_state("stage", "done")
        return value

    @app.workflow(name="boom")
    async def boom() -> None:
        raise ValueError("boom")

    @app.workflow(name="sleepy")
    async def sleepy() -> None:
        await durably.sleep(3600)

    @app.workflow(name="steps")
    async def steps(x: int) -> int:
        a = await durably.run(double, x)
        b = await durably.run(double, a)
        return b

    @app.workflow(name="parent")
    async def parent(name: str) -> str:
        child = durably.start_child(greet, name, id=f"{durably.workflow_id()}-child")
        result: str = await child
        return result


@pytest.fixture(scope="module")
def worker(database: str) -> Iterator[durably.App]:
    """An embedded worker on the module's database serving the test workflows."""
    app = durably.App(database, worker_options=FAST)
    register(app)
    app.start_worker()
    deadline = time.monotonic() + 10
    while not app.list_workers() and time.monotonic() < deadline:
        time.sleep(0.02)
    yield app
    app.close()


@pytest.fixture(scope="module")
def server(database: str, worker: durably.App) -> Iterator[Server]:
    """A server without auth on the module's database."""
    s = start_server(database)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def secured(database: str, worker: durably.App) -> Iterator[Server]:
    """A server that needs the bearer token TOKEN."""
    s = start_server(database, TOKEN)
    yield s
    s.stop()


def count(app: durably.App) -> int:
    """How many workflows the database holds."""
    return len(app.store.list_workflows(limit=1_000_000))


def wait_status(app: durably.App, wid: str, *statuses: str, timeout: float = 15.0) -> str:
    """Poll until workflow ``wid`` has one of ``statuses``; return it."""
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        rec = app.store.get_workflow(wid)
        status = "" if rec is None else rec.status.value
        if status in statuses:
            return status
        time.sleep(0.02)
    raise AssertionError(f"{wid} is {status!r}, not one of {statuses} after {timeout}s")


def wait_state(app: durably.App, wid: str, key: str, value: Any, timeout: float = 15.0) -> None:
    """Poll until workflow ``wid`` published ``key = value``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.handle(wid).state(key) == value:
            return
        time.sleep(0.02)
    raise AssertionError(f"{wid} never published {key}={value!r}")
