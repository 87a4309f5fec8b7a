"""Auth, the body limit, and bad input of every kind: a clear 4xx in the API's error shape, never
a 500, and nothing written (the database's workflow count is unchanged)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx

import durably

from .conftest import (
    TOKEN,
    Server,
    count,
    free_port,
    server_command,
    server_env,
    start_server,
    wait_state,
)

ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
}  # fmt: skip


def assert_error(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    error = r.json()["error"]
    assert error["code"] == ERROR_CODES[status]
    assert isinstance(error["message"], str) and error["message"]
    for word in words:
        assert word in error["message"], error["message"]


def test_auth_on(secured: Server, worker: durably.App) -> None:
    bare = httpx.Client(base_url=secured.url, timeout=10)
    before = count(worker)
    for method, path in [("GET", "/v1/workflows"), ("POST", "/v1/workflows"),
                         ("GET", "/readyz"), ("GET", "/openapi.json"),
                         ("GET", "/v1.0/workflows/dapr/x"),
                         ("POST", "/v1.0-beta1/workflows/dapr/greet/start")]:  # fmt: skip
        r = bare.request(method, path, json={"name": "greet"})
        assert_error(r, 401, "Bearer")
        assert r.headers["www-authenticate"].startswith("Bearer")
        wrong = bare.request(method, path, headers={"Authorization": f"Bearer {TOKEN}x"})
        assert_error(wrong, 401)
    headers = [{"Authorization": "Basic abc"}, {"Authorization": "Bearer"},
               {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN[:-1]}"}]  # fmt: skip
    for header in headers:
        assert_error(bare.get("/v1/workflows", headers=header), 401)
    assert count(worker) == before
    # health needs no token; the right token (bearer, or Dapr's header) works
    assert bare.get("/healthz").json() == {"status": "ok"}
    assert secured.http.get("/v1/workflows").status_code == 200
    assert bare.get("/readyz", headers={"dapr-api-token": TOKEN}).status_code == 200
    assert bare.get("/readyz", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    r = secured.http.post("/v1/workflows", json={"name": "greet", "args": ["auth"]})
    assert r.status_code == 202
    bare.close()


def test_auth_off(server: Server) -> None:
    plain = httpx.Client(base_url=server.url, timeout=10)
    assert plain.get("/v1/workflows").status_code == 200
    plain.close()


def test_non_loopback_host_without_token_is_refused(tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path}/refuse.db"
    for host in ("0.0.0.0", "192.0.2.1", "example.com", "::"):
        done = subprocess.run(server_command(db, "--host", host, "--port", "1"), env=server_env(),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "without a token" in done.stderr and "--token" in done.stderr
    empty = subprocess.run(server_command(db, "--token", " "), env=server_env(),
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert empty.returncode == 2 and "empty" in empty.stderr
    bad_db = subprocess.run(server_command("mysql://nope"), env=server_env(),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad_db.returncode == 2 and "durably server: error" in bad_db.stderr


def test_malformed_bodies_write_nothing(server: Server, worker: durably.App) -> None:
    http = server.http
    before = count(worker)
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[Any, int, str]] = [
        (b"{", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b'{"name": NaN}', 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'"greet"', 400, "JSON object"),
        (b"", 400, "JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, 400, ""),
        (b'{"name": "greet", "args": [' + b"1" * 5000 + b"]}", 400, ""),
    ]
    for raw, status, words in cases:
        assert_error(http.post("/v1/workflows", content=raw, headers=json_type), status, words)
    form = http.post("/v1/workflows", content=b"name=greet",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert_error(form, 415, "application/json")
    wrong_types: list[tuple[dict[str, Any], str]] = [
        ({}, "'name'"),
        ({"name": 3}, "'name' must be a string"),
        ({"name": ""}, "non-empty"),
        ({"name": "greet", "args": "ada"}, "'args' must be an array"),
        ({"name": "greet", "kwargs": []}, "'kwargs' must be an object"),
        ({"name": "greet", "id": 7}, "'id' must be a string"),
        ({"name": "greet", "priority": "high"}, "'priority' must be an integer"),
        ({"name": "greet", "priority": True}, "'priority' must be an integer"),
        ({"name": "greet", "priority": 2**40}, "32-bit"),
        ({"name": "greet", "queue": "bad queue!"}, "queue name"),
        ({"name": "greet", "queue": 5}, "'queue'"),
        ({"name": "greet", "nmae": "x"}, "unknown field"),
        ({"name": "greet", "id": ""}, "invalid workflow id"),
        ({"name": "greet", "id": "../etc"}, "invalid workflow id"),
        ({"name": "greet", "id": "x" * 201}, "invalid workflow id"),
        ({"name": "greet", "id": "has space"}, "invalid workflow id"),
    ]
    for body, words in wrong_types:
        assert_error(http.post("/v1/workflows", json=body), 400, words)
    infinity = b'{"name": "greet", "args": [Infinity]}'
    assert_error(http.post("/v1/workflows", content=infinity, headers=json_type), 400, "JSON")
    # unknown workflow names: 404 that says what to do, no stuck row
    r = http.post("/v1/workflows", json={"name": "no.such.workflow", "id": "never-1"})
    assert_error(r, 404, "no worker has registered", "durably worker")
    assert http.get("/v1/workflows/never-1").status_code == 404
    assert count(worker) == before


def test_oversized_bodies_and_payloads_are_413(
    server: Server, worker: durably.App, tmp_path: Any
) -> None:
    before = count(worker)
    huge = {"name": "greet", "args": ["x" * 1_100_000]}
    assert_error(server.http.post("/v1/workflows", json=huge), 413, "--max-body-bytes")

    def chunks() -> Any:  # streamed without a Content-Length
        yield b'{"name": "greet", "args": ["'
        for _ in range(40):
            yield b"y" * 50_000
        yield b'"]}'

    r = server.http.post("/v1/workflows", content=chunks(),
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert_error(r, 413)
    assert count(worker) == before


def test_unknown_ids_and_bad_ids(server: Server, worker: durably.App) -> None:
    http = server.http
    before = count(worker)
    for method, suffix in [("GET", ""), ("DELETE", ""), ("GET", "/result"), ("GET", "/history"),
                           ("GET", "/state"), ("GET", "/children"), ("POST", "/cancel"),
                           ("POST", "/terminate"), ("POST", "/suspend"), ("POST", "/resume"),
                           ("POST", "/retry"), ("POST", "/events/go")]:  # fmt: skip
        assert_error(http.request(method, f"/v1/workflows/nope-{uuid.uuid4().hex}{suffix}"), 404)
        assert_error(http.request(method, f"/v1/workflows/-bad{suffix}"), 400, "invalid")
        assert_error(http.request(method, f"/v1/workflows/{'x' * 300}{suffix}"), 400)
    fork = http.post("/v1/workflows/nope-x/fork", json={"from_step": 0})
    assert_error(fork, 404)
    assert_error(http.post("/v1/workflows/-bad/fork", json={"from_step": 0}), 400)
    assert count(worker) == before


def test_bad_command_bodies_and_query_parameters(server: Server, worker: durably.App) -> None:
    http = server.http
    wid = f"waiter-{uuid.uuid4().hex[:8]}"
    http.post("/v1/workflows", json={"name": "waiter", "id": wid})
    wait_state(worker, wid, "stage", "waiting")
    before = count(worker)
    w = f"/v1/workflows/{wid}"
    assert_error(http.post(f"{w}/events/go", json={"data": 1, "dedup_key": 5}), 400, "dedup_key")
    assert_error(http.post(f"{w}/events/go", json={"data": 1, "dedup_key": ""}), 400)
    assert_error(http.post(f"{w}/events/go", json={"payload": 1}), 400, "unknown field")
    assert_error(http.post(f"{w}/events/go", json=[1]), 400)
    assert_error(http.post(f"{w}/events/{'e' * 201}", json={}), 400, "200")
    assert_error(http.post(f"{w}/terminate", json={"reason": 5}), 400, "'reason'")
    assert_error(http.post(f"{w}/cancel", json={"why": "x"}), 400, "unknown field")
    for body, words in [({}, "'from_step'"), ({"from_step": -1}, ">= 0"),
                        ({"from_step": "1"}, "integer"), ({"from_step": 1.5}, "integer"),
                        ({"from_step": 0, "new_id": "-x"}, "new_id"),
                        ({"from_step": 0, "extra": 1}, "unknown field")]:  # fmt: skip
        assert_error(http.post(f"{w}/fork", json=body), 400, words)
    for params in [{"status": "sleeping"}, {"limit": "0"}, {"limit": "1001"}, {"limit": "x"},
                   {"limit": "-1"}, {"created_after": "yesterday"}, {"created_before": "nan"},
                   {"cursor": "garbage"}, {"cursor": "WzEsMl0"}, {"sort": "asc"},
                   {"name": ["a", "b"]}]:  # fmt: skip
        assert_error(http.get("/v1/workflows", params=params), 400)
    for wait in ("-1", "61", "soon", "nan"):
        assert_error(http.get(f"{w}/result", params={"wait": wait}), 400, "wait")
    # the workflow got none of those events; nothing was forked
    assert http.get(f"{w}").json()["status"] in ("running", "pending")
    http.post(f"{w}/events/go", json={"data": "real"})
    assert http.get(f"{w}/result", params={"wait": 15}).json()["output"] == "real"
    assert count(worker) == before


def test_unknown_routes_and_methods(server: Server) -> None:
    assert_error(server.http.get("/v2/nothing"), 404, "openapi.json")
    r = server.http.put("/v1/workflows/abc")
    assert_error(r, 405, "DELETE", "GET")
    assert "DELETE" in r.headers["allow"]
    assert_error(server.http.delete("/v1/workflows"), 405)
    assert_error(server.http.get("/v1/workflows/abc/cancel"), 405)


def test_custom_body_limits(worker: durably.App, database: str) -> None:
    before = count(worker)
    small = start_server(database, None, "--max-body-bytes", "100")
    try:
        r = small.http.post("/v1/workflows", json={"name": "greet", "args": ["z" * 200]})
        assert_error(r, 413, "100 bytes")
        assert small.http.post("/v1/workflows", json={"name": "greet"}).status_code == 202
    finally:
        small.stop()
    # a body under the server's limit whose input is over the App's payload limit (1 MiB)
    large = start_server(database, None, "--max-body-bytes", "3000000")
    try:
        r = large.http.post("/v1/workflows", json={"name": "greet", "args": ["z" * 1_100_000]})
        assert_error(r, 413, "over the limit", "max_payload_bytes")
        event = large.http.post("/v1/workflows/nope/events/go", json={"data": "z" * 1_100_000})
        assert_error(event, 404)
    finally:
        large.stop()
    assert count(worker) == before + 1


def test_a_missing_sqlite_database_is_refused_not_created(tmp_path: Any) -> None:
    """A typo in --db / $DURABLY_DB must not serve a new empty database: exit 2, nothing made."""
    missing = tmp_path / "typo.db"
    done = subprocess.run(server_command(f"sqlite:///{missing}", "--port", "1"),
                          env=server_env(), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip()
    assert message.startswith("durably server: error: no database exists at "), message
    assert repr(str(missing)) in message and "(from --db)" in message
    assert f"durably migrate --db sqlite:///{missing}" in message and "worker" in message
    env = {**server_env(), "DURABLY_DB": "typo.db"}  # relative to the current directory
    command = [sys.executable, "-m", "durably.cli", "server", "--port", "1"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2 and "$DURABLY_DB" in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_durably_server_command_token_from_env_and_clean_stop(tmp_path: Any) -> None:
    port = free_port()
    env = {**server_env(), "DURABLY_TOKEN": "from-env", "DURABLY_DB": f"sqlite:///{tmp_path}/e.db"}
    migrate = [sys.executable, "-m", "durably.cli", "migrate"]  # the server creates no database
    assert subprocess.run(migrate, env=env, capture_output=True, timeout=60).returncode == 0
    command = [sys.executable, "-m", "durably.cli", "server", "--host", "0.0.0.0", "--port",
               str(port)]  # fmt: skip
    proc = subprocess.Popen(command, env=env)  # a token: any address is allowed
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        assert httpx.get(f"{url}/v1/workflows").status_code == 401
        auth = {"Authorization": "Bearer from-env"}
        assert httpx.get(f"{url}/v1/workflows", headers=auth).json()["workflows"] == []
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert proc.wait(15) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
