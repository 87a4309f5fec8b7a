"""No database password, secret URL option or server token reaches a person: not in an HTTP
answer of any route, not in a log line of the server or of a worker (at their most verbose), not
in the CLI's output, not in a Python exception, not in the benchmark's report.

The secrets are planted in real URLs: PostgreSQL runs with trust authentication, so a URL with
any password connects, and libpq ignores ``sslpassword`` when no client key is used.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

import durably
from durably.errors import ConfigurationError, DatabaseUnavailableError, DurablyError

from .backends import BACKENDS, PG_URL, postgres_schema, require_postgres
from .ports import free_port

PASSWORD = f"planted-pw-{uuid.uuid4().hex[:8]}"
OPTION = f"planted-opt-{uuid.uuid4().hex[:8]}"
TOKEN = f"planted-token-{uuid.uuid4().hex[:8]}"
HEAD = f"head{uuid.uuid4().hex[:6]}"
TAIL = f"tail{uuid.uuid4().hex[:6]}"
"""Two halves of a password that libpq would split (and echo the half it takes for a host)."""
SECRETS = (PASSWORD, OPTION, TOKEN, HEAD, TAIL)
DURABLY = [sys.executable, "-m", "durably.cli"]

APP_MODULE = """\
import durably

app = durably.App()  # $DURABLY_DB


@app.workflow(name="greet")
async def greet(name: str) -> str:
    return f"hello {name}"


@app.workflow(name="waiter")
async def waiter() -> object:
    return await durably.wait_event("go")


@app.workflow(name="boom")
async def boom() -> None:
    raise ValueError("boom")
"""


def with_password(url: str, password: str = PASSWORD) -> str:
    """``url`` (a PostgreSQL URL) with ``password`` and a secret ``sslpassword`` option."""
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.netloc.rpartition('@')[2]}"
    query = "&".join(q for q in (parts.query, f"sslpassword={OPTION}") if q)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} holds a secret: {text[:2000]}"


@pytest.fixture(params=BACKENDS)
def secret_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL holding secrets where the backend has a place for them."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/leaks.db"
        return
    with postgres_schema() as schema:
        yield with_password(f"{PG_URL}?schema={schema}")


@pytest.fixture
def pg_secret_url() -> Iterator[str]:
    require_postgres()
    with postgres_schema() as schema:
        yield with_password(f"{PG_URL}?schema={schema}")


def client_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process ``pid`` holds (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def kill_sessions(pid: int) -> int:
    """Terminate the PostgreSQL sessions of process ``pid`` (its pool and its listener)."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY(%s)",
            (sorted(client_ports(pid)),),
        ).fetchall()
    return len(rows)


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def stop(self) -> str:
        """Stop it (SIGTERM) and return everything it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.output()

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")


def spawn(command: list[str], folder: Path, name: str, env: dict[str, str]) -> Process:
    out, err = folder / f"{name}.out", folder / f"{name}.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(command, stdout=o, stderr=e, env=env, cwd=folder)
    return Process(proc, out, err)


def base_env() -> dict[str, str]:
    keep = ("DURABLY_DB", "DURABLY_TOKEN", "DURABLY_SERVER")
    return {k: v for k, v in os.environ.items() if k not in keep}


def wait_for(predicate: object, what: str, seconds: float = 60.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def requests_of_every_route() -> list[tuple[str, str, dict[str, object]]]:
    """(method, path, httpx keyword arguments): every route, with ids that do not exist and
    bad input."""
    nope = "/v1/workflows/nope"
    calls: list[tuple[str, str, dict[str, object]]] = [
        ("GET", "/openapi.json", {}),
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/v1/workflows", {}),
        ("GET", "/v1/workflows?status=bogus", {}),
        ("GET", "/v1/workflows?limit=abc", {}),
        ("POST", "/v1/workflows", {"json": {"name": "no-such-workflow"}}),
        ("POST", "/v1/workflows", {"content": b"{not json"}),
        ("POST", "/v1/workflows", {"json": {"name": "greet", "id": "bad id!"}}),
        ("GET", nope, {}),
        ("DELETE", nope, {}),
        ("GET", f"{nope}/result", {}),
        ("GET", f"{nope}/history", {}),
        ("GET", f"{nope}/state", {}),
        ("GET", f"{nope}/runs", {}),
        ("GET", f"{nope}/children", {}),
        ("POST", f"{nope}/events/go", {"json": {"x": 1}}),
        ("POST", f"{nope}/cancel", {}),
        ("POST", f"{nope}/terminate", {}),
        ("POST", f"{nope}/suspend", {}),
        ("POST", f"{nope}/resume", {}),
        ("POST", f"{nope}/retry", {}),
        ("POST", f"{nope}/fork", {"json": {"from_step": 0}}),
        ("POST", f"{nope}/fork", {"json": {"from_step": "x"}}),
        ("GET", "/v1/workers", {}),
        ("GET", "/v1/versions", {}),
        ("GET", "/v1/workers?include_stale=bogus", {}),
        ("POST", "/v1/bulk/cancel", {"json": {"filter": {"id_prefix": "nope"}, "dry_run": True}}),
        ("POST", "/v1/bulk/purge", {"json": {"filter": {"id_prefix": "nope"}}}),
        ("POST", "/v1/bulk/retry", {"json": {"filter": {"status": "bogus"}}}),
        ("POST", "/v1/bulk/resume", {"json": {"filter": {}}}),
        ("GET", "/no/such/route", {}),
        ("PUT", "/v1/workflows", {}),
        ("GET", "/v1/schedules", {}),
        ("POST", "/v1/schedules", {"json": {"name": "s", "workflow": "nope", "every": 60}}),
        ("POST", "/v1/schedules", {"json": {"name": "s", "workflow": "greet", "cron": "bad"}}),
        ("GET", "/v1/schedules/nope", {}),
        ("PATCH", "/v1/schedules/nope", {"json": {"note": "x"}}),
        ("DELETE", "/v1/schedules/nope", {}),
        ("POST", "/v1/schedules/nope/pause", {"json": {"reason": "x"}}),
        ("POST", "/v1/schedules/nope/unpause", {}),
        ("POST", "/v1/schedules/nope/trigger", {}),
        ("POST", "/v1/schedules/nope/backfill", {"json": {"start": 0, "end": 60}}),
    ]
    for prefix in ("/v1.0/workflows/dapr", "/v1.0-beta1/workflows/dapr"):
        calls += [
            ("POST", f"{prefix}/no-such-workflow/start", {"json": {"a": 1}}),
            ("POST", f"{prefix}/greet/start?instanceID=bad%20id", {}),
            ("GET", f"{prefix}/nope", {}),
            ("POST", f"{prefix}/nope/terminate", {}),
            ("POST", f"{prefix}/nope/raiseEvent/go", {"json": 1}),
            ("POST", f"{prefix}/nope/pause", {}),
            ("POST", f"{prefix}/nope/resume", {}),
            ("POST", f"{prefix}/nope/purge", {}),
        ]
    return calls


def test_no_route_and_no_log_line_shows_a_secret(secret_db: str, tmp_path: Path) -> None:
    (tmp_path / "leak_app.py").write_text(APP_MODULE)
    env = {**base_env(), "DURABLY_DB": secret_db, "PYTHONPATH": str(tmp_path)}
    worker = spawn([*DURABLY, "worker", "leak_app:app", "-v"], tmp_path, "worker", env)
    port = free_port()
    server = spawn(
        [*DURABLY, "server", "--db", secret_db, "--port", str(port), "--token", TOKEN, "-v"],
        tmp_path,
        "server",
        base_env(),
    )
    base = f"http://127.0.0.1:{port}"
    bodies: list[str] = []
    try:

        def up() -> bool:
            assert server.proc.poll() is None, server.output()
            try:
                return httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, "the server")
        http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30.0
        )
        # a real run through the worker first: its logs are part of what is searched
        started = http.post("/v1/workflows", json={"name": "greet", "args": ["x"], "id": "g1"})
        assert started.status_code == 202, started.text
        done = http.get("/v1/workflows/g1/result", params={"wait": 30})
        assert done.json()["output"] == "hello x", done.text
        http.post("/v1/workflows", json={"name": "boom", "id": "b1"})
        http.post("/v1/workflows", json={"name": "waiter", "id": "w1"})
        http.get("/v1/workflows/b1/result", params={"wait": 30})
        assert http.post("/v1/workflows/w1/cancel").status_code == 202
        assert http.get("/v1/workflows/w1/result", params={"wait": 30}).json()["done"]
        if secret_db.startswith("postgresql://"):
            # the connections drop: the listener and the pool reconnect, and say so in logs
            assert kill_sessions(worker.proc.pid) > 0
            assert kill_sessions(server.proc.pid) > 0
            wait_for(lambda: "listener reconnected" in worker.output(), "the listener")
            again = http.post("/v1/workflows", json={"name": "greet", "args": ["y"]})
            assert again.status_code == 202, again.text
            wid = again.json()["id"]
            assert http.get(f"/v1/workflows/{wid}/result", params={"wait": 30}).json()["done"]
        for method, path, kwargs in requests_of_every_route():
            answer = http.request(method, path, **kwargs)  # type: ignore[arg-type]
            assert answer.status_code < 500, (method, path, answer.text)
            bodies.append(f"{method} {path} -> {answer.status_code} {answer.headers} {answer.text}")
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = httpx.post(f"{base}/v1/workflows/nope/cancel", headers=headers)
            assert answer.status_code == 401
            bodies.append(answer.text)
        not_found = http.post("/v1/workflows/nope/cancel").json()["error"]["message"]
        http.close()
        # the CLI through the server, and on the database itself
        for where in (["--server", base, "--token", TOKEN], ["--db", secret_db]):
            for command in (["workers", "--all"], ["workers", "--json"], ["cancel", "nope"]):
                proc = subprocess.run(
                    [*DURABLY, *command, *where], capture_output=True, text=True, env=base_env()
                )
                assert proc.returncode in (0, 3), proc.stdout + proc.stderr
                bodies.append(proc.stdout + proc.stderr)
    finally:
        server_log = server.stop()
        worker_log = worker.stop()
    for body in bodies:
        assert_no_secret(body, body[:80])
    assert_no_secret(server_log, "the server's output")
    assert_no_secret(worker_log, "the worker's output")
    # not vacuous: the messages name the database, the logs hold the requests
    assert "GET /v1/workflows/nope/history" in server_log
    assert "durably server: serving" in server_log
    if secret_db.startswith("postgresql://"):
        assert "postgres:***@127.0.0.1" in not_found
        assert "sslpassword=***" in not_found
        assert "durably server: serving postgresql://postgres:***@" in server_log
        assert "listener lost its connection" in worker_log


@pytest.mark.parametrize(
    "command",
    [
        ["show", "nope"],
        ["history", "nope"],
        ["cancel", "nope"],
        ["terminate", "nope"],
        ["suspend", "nope"],
        ["resume", "nope"],
        ["retry", "nope"],
        ["purge", "nope"],
        ["fork", "nope", "--from-step", "0"],
        ["send", "nope", "go"],
        ["start", "no-such-workflow"],
        ["ls"],
        ["migrate"],
        ["versions"],
        ["versions", "--json"],
        ["bulk", "cancel", "--id-prefix", "nope", "--dry-run"],
        ["bulk", "purge", "--id-prefix", "nope", "--yes", "--json"],
    ],
)
def test_cli_never_prints_a_secret(command: list[str], pg_secret_url: str) -> None:
    proc = subprocess.run(
        [*DURABLY, *command, "--db", pg_secret_url], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    assert_no_secret(proc.stdout + proc.stderr, f"durably {command[0]}")
    if proc.returncode == 3:
        assert "Traceback" not in proc.stderr and "error" in proc.stderr
    if command == ["migrate"]:
        assert "postgresql://postgres:***@127.0.0.1" in proc.stdout


def test_python_errors_never_show_a_secret(pg_secret_url: str) -> None:
    app = durably.App(pg_secret_url)
    try:
        calls = [
            lambda: app.cancel("nope"),
            lambda: app.terminate("nope"),
            lambda: app.suspend("nope"),
            lambda: app.resume("nope"),
            lambda: app.retry("nope"),
            lambda: app.fork("nope", from_step=0),
            lambda: app.purge("nope"),
            lambda: app.send_event("nope", "go"),
            lambda: app.handle("nope").status(),
            lambda: app.handle("nope").history(),
            lambda: app.handle("nope").result(timeout=1),
            lambda: app.start("no-such-workflow"),
        ]
        for call in calls:
            with pytest.raises(DurablyError) as caught:
                call()
            for text in (str(caught.value), repr(caught.value), caught.value.message):
                assert_no_secret(text, "an error")
            assert "postgres:***@127.0.0.1" in str(caught.value)
        assert_no_secret(repr(app), "repr(App)")
    finally:
        app.close()


@pytest.mark.parametrize(
    ("password", "error"),
    [
        (PASSWORD, DatabaseUnavailableError),  # nothing listens on port 1
        (f"{HEAD}@{TAIL}", ConfigurationError),  # libpq would read TAIL as part of the host
        (f"{HEAD}/{TAIL}", ConfigurationError),  # ... HEAD as the port, TAIL in the database
        (f"%zz{HEAD}", ConfigurationError),  # libpq's parse error quotes the password
    ],
)
def test_unreachable_or_misread_database_errors_show_no_secret(
    password: str, error: type[DurablyError], tmp_path: Path
) -> None:
    require_postgres()
    netloc = urlsplit(PG_URL).netloc.rpartition("@")[2]
    port = "1" if error is DatabaseUnavailableError else netloc.rpartition(":")[2]
    url = with_password(f"postgresql://postgres@127.0.0.1:{port}/test", password)
    app = durably.App(url)
    with pytest.raises(error) as caught:
        app.list_workflows()
    for text in (str(caught.value), repr(caught.value)):
        assert_no_secret(text, "an unreachable database's error")
    assert "postgresql://postgres:***@127.0.0.1" in str(caught.value)
    proc = subprocess.run(
        [*DURABLY, "ls", "--db", url], capture_output=True, text=True, timeout=60, env=base_env()
    )
    assert proc.returncode in (2, 5), proc.stderr
    assert "Traceback" not in proc.stderr
    assert_no_secret(proc.stdout + proc.stderr, "durably ls")
    with pytest.raises(error) as caught:
        app.bulk("purge", durably.BulkFilter(all=True))
    assert_no_secret(str(caught.value), "a bulk operation's error")
    proc = subprocess.run(
        [*DURABLY, "bulk", "purge", "--all", "--yes", "--db", url],
        capture_output=True, text=True, timeout=60, env=base_env(),
    )  # fmt: skip
    assert proc.returncode in (2, 5) and "Traceback" not in proc.stderr, proc.stderr
    assert_no_secret(proc.stdout + proc.stderr, "durably bulk")
    server = subprocess.run(
        [*DURABLY, "server", "--db", url, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=base_env(),
    )
    assert server.returncode != 0
    assert_no_secret(server.stdout + server.stderr, "durably server")
    (tmp_path / "leak_app.py").write_text(APP_MODULE)
    for processes in ("1", "2"):  # a worker, and a supervisor with its worker processes
        worker = subprocess.run(
            [*DURABLY, "worker", "leak_app:app", "-v", "-p", processes],
            capture_output=True,
            text=True,
            timeout=60,
            env={**base_env(), "DURABLY_DB": url},
            cwd=tmp_path,
        )
        assert "durably: error: " in worker.stderr and "Traceback" not in worker.stderr
        assert_no_secret(worker.stdout + worker.stderr, "durably worker")


def test_bench_report_shows_no_secret(tmp_path: Path) -> None:
    require_postgres()
    out_json = tmp_path / "bench.json"
    url = with_password(PG_URL)
    args = ["--quick", "--only", "latency", "--samples", "3", "--db", url, "--json", str(out_json)]
    proc = subprocess.run(
        [sys.executable, "-m", "durably.bench", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=base_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_no_secret(proc.stdout + proc.stderr, "the bench's output")
    report = out_json.read_text()
    assert_no_secret(report, "the bench's JSON")
    assert json.loads(report)["machine"]["server"].startswith("127.0.0.1:")


def test_bench_errors_show_no_secret() -> None:
    from durably.bench.options import Params
    from durably.bench.run import measure

    url = with_password("postgresql://postgres@db.invalid/test")

    class Failing:
        backend = "postgres"

        def info(self) -> dict[str, str]:
            return {"backend": "postgres"}

        def fresh(self, label: str) -> object:
            raise AssertionError("not reached")

    def floor(target: object, params: Params) -> dict[str, float]:
        return {"commit_ms": 1.0, "commits_per_s": 1000.0, "rows_per_s": 1000.0}

    def failing(target: object, params: Params) -> dict[str, float]:
        raise RuntimeError(f"worker exited: cannot use {url} (password {PASSWORD})")

    import durably.bench.run as run

    saved = run.MEASUREMENTS
    run.MEASUREMENTS = [
        (None, "floor_commit", "floor", floor),
        (None, "floor_batch", "floor", floor),
        ("latency", "latency", "latency", failing),
    ]
    try:
        results = measure(Failing(), Params(), ["latency"], url=url)  # type: ignore[arg-type]
    finally:
        run.MEASUREMENTS = saved
    assert "worker exited" in results["errors"]["latency"]
    assert_no_secret(json.dumps(results), "the bench's results")


def test_deploy_gate_and_export_never_print_a_secret(pg_secret_url: str, tmp_path: Path) -> None:
    """replay-check (text and JSON, matching and diverging code), export and move-version on
    a database whose URL holds secrets, with a parked workflow to report on."""
    (tmp_path / "leak_app.py").write_text(APP_MODULE)
    changed = APP_MODULE.replace(
        'return await durably.wait_event("go")',
        "durably.now()  # a new durable call before the wait: the journal diverges\n"
        '    return await durably.wait_event("go")',
    )
    (tmp_path / "leak_changed.py").write_text(changed)
    env = {**base_env(), "DURABLY_DB": pg_secret_url, "PYTHONPATH": str(tmp_path)}
    worker = spawn([*DURABLY, "worker", "leak_app:app"], tmp_path, "worker", env)
    try:
        app = durably.App(pg_secret_url)
        try:
            wait_for(lambda: app.list_workers() != [], "the worker to register")
            handle = app.start("waiter", id="leak-waiter")
            wait_for(lambda: handle.history() != [], "the waiter to park")
        finally:
            app.close()
    finally:
        assert_no_secret(worker.stop(), "the worker's output")
    runs = [
        (["replay-check", "leak_app:app"], 0),
        (["replay-check", "leak_app:app", "--json"], 0),
        (["replay-check", "leak_changed:app"], 1),
        (["replay-check", "leak_changed:app", "--json"], 1),
        (["export", "leak-waiter"], 0),
        (["move-version", "leak_app:app", "--from", "a", "--to", "b", "--only-if-replays"], 0),
        (["replay-check", "no_such_module:app"], 2),
    ]
    for command, code in runs:
        proc = subprocess.run(
            [*DURABLY, *command, "--db", pg_secret_url],
            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == code, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert_no_secret(proc.stdout + proc.stderr, f"durably {' '.join(command)}")


@pytest.mark.parametrize(
    "command",
    [["move-version", "--from", "a", "--to", "b"], ["export", "nope"]],
)
def test_commands_that_never_migrate_refuse_a_schema_less_database_without_a_secret(
    command: list[str], pg_secret_url: str
) -> None:
    """The deploy gate's commands open the database as it is: one with no durably schema yet
    (a fresh PostgreSQL schema) is a clear error (exit 5), not the driver's, with no secret."""
    proc = subprocess.run(
        [*DURABLY, *command, "--db", pg_secret_url], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "holds no durably schema" in proc.stderr and "Traceback" not in proc.stderr
    assert "postgresql://postgres:***@127.0.0.1" in proc.stderr
    assert_no_secret(proc.stdout + proc.stderr, f"durably {command[0]}")
