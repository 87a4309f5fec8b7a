"""Values that once broke reads or answered 500 (issue 12), against a real server process on
each backend: refused with a 400 before anything is written, the same on SQLite and PostgreSQL,
and every read of what was accepted keeps working."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest

import durably
from durably.errors import ConfigurationError, SerializationError
from durably.server import create_app
from durably.storage.base import WorkflowRecord, WorkflowStatus

from .conftest import Server, count, server_env, wait_state, wait_status
from .test_guard import assert_error

JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain"}


def deep(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def deep_text(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def reads_work(http: httpx.Client, wid: str) -> None:
    """Every read of ``wid`` and every list answers (no 500)."""
    for path in ("", "/result", "/history", "/state", "/runs", "/children"):
        r = http.get(f"/v1/workflows/{wid}{path}")
        assert r.status_code in (200, 202), (path, r.status_code, r.text)
    for query in ("", "?limit=1000", f"?id_prefix={wid}", "?status=completed&status=failed"):
        assert http.get(f"/v1/workflows{query}").status_code == 200, query
    assert http.get(f"/v1.0/workflows/dapr/{wid}").status_code == 200


def test_a_lone_surrogate_is_refused_and_writes_nothing(
    server: Server, worker: durably.App
) -> None:
    http = server.http
    before = count(worker)
    bodies = [
        b'{"name": "echo", "id": "sur1", "args": ["\\ud800"]}',
        b'{"name": "echo", "id": "sur1", "kwargs": {"k": "a\\udfffb"}}',
        b'{"name": "echo", "id": "sur1", "args": [{"\\udc00": 1}]}',
        b'{"name": "\\ud800"}',
        b'{"name": "a\\u0000b"}',
    ]
    for raw in bodies:
        r = http.post("/v1/workflows", content=raw, headers=JSON)
        assert_error(r, 400)
        assert "surrogate" in r.json()["error"]["message"] or "NUL" in r.json()["error"]["message"]
    assert http.get("/v1/workflows/sur1").status_code == 404
    assert count(worker) == before
    assert http.get("/v1/workflows?limit=1000").status_code == 200
    # events: data, dedup key and name
    http.post("/v1/workflows", json={"name": "waiter", "id": "sur-wait"})
    wait_state(worker, "sur-wait", "stage", "waiting")
    for raw in (b'{"data": "\\ud800"}', b'{"data": 1, "dedup_key": "\\ud800"}'):
        r = http.post("/v1/workflows/sur-wait/events/go", content=raw, headers=JSON)
        assert_error(r, 400, "lone surrogate")
    for name in ("a%00b", "a%2Fb", "a%0Ab"):  # a NUL, a slash, a newline
        r = http.post(f"/v1/workflows/sur-wait/events/{name}", json={"data": 1})
        assert r.status_code in (400, 404), r.text
        assert r.status_code == 404 or "event name" in r.json()["error"]["message"]
    # nothing was queued: the first event sent after the refusals is the one consumed
    assert http.post("/v1/workflows/sur-wait/events/go", json={"data": "ok"}).status_code == 202
    assert http.get("/v1/workflows/sur-wait/result?wait=20").json()["output"] == "ok"
    reads_work(http, "sur-wait")


def test_dedup_keys_names_and_filters_have_the_same_limits_on_both_backends(
    server: Server, worker: durably.App
) -> None:
    http = server.http
    http.post("/v1/workflows", json={"name": "waiter", "id": "keys"})
    wait_state(worker, "keys", "stage", "waiting")
    for key, status in (("k" * 513, 400), ("k" * 3000, 400), ("a\x00b", 400), ("é" * 512, 202)):
        r = http.post("/v1/workflows/keys/events/note", json={"data": 1, "dedup_key": key})
        assert r.status_code == status, (len(key), r.text)
    assert_error(http.post(f"/v1/workflows/keys/events/{'e' * 201}", json={}), 400, "200")
    for param in ("name", "id_prefix"):
        for value in ("a\x00", "x" * 201):
            r = http.get("/v1/workflows", params={param: value})
            assert_error(r, 400, param.replace("name", "name filter"))
    http.post("/v1/workflows/keys/events/go", json={"data": 2})
    wait_status(worker, "keys", "completed")
    reads_work(http, "keys")


def test_depth_is_limited_on_every_input(server: Server, worker: durably.App) -> None:
    http = server.http
    before = count(worker)
    for depth in (101, 980, 10_000):
        body = f'{{"name": "echo", "id": "deep", "args": [{deep_text(depth)}]}}'
        assert_error(http.post("/v1/workflows", content=body, headers=JSON), 400, "nested")
        for prefix in ("/v1.0", "/v1.0-beta1"):
            for headers in (TEXT, JSON, {}):
                r = http.post(
                    f"{prefix}/workflows/dapr/echo/start?instanceID=deep",
                    content=deep_text(depth),
                    headers=headers,
                )
                assert_error(r, 400, "nested")
    assert count(worker) == before
    # the deepest accepted event comes back whole through /history and /result
    http.post("/v1/workflows", json={"name": "waiter", "id": "deep-ok"})
    wait_state(worker, "deep-ok", "stage", "waiting")
    for depth in (975, 101):
        r = http.post(
            "/v1/workflows/deep-ok/events/go", content=f'{{"data": {deep_text(depth)}}}',
            headers=JSON,
        )  # fmt: skip
        assert_error(r, 400, "nested")
        for headers in (TEXT, {}):
            r = http.post(
                "/v1.0/workflows/dapr/deep-ok/raiseEvent/go",
                content=deep_text(10_000 if headers else depth),
                headers=headers,
            )
            assert_error(r, 400, "nested")
    r = http.post("/v1/workflows/deep-ok/events/go", content=f'{{"data": {deep_text(100)}}}',
                  headers=JSON)  # fmt: skip
    assert r.status_code == 202, r.text
    result = http.get("/v1/workflows/deep-ok/result?wait=20")
    assert result.status_code == 200 and result.json()["status"] == "completed"
    assert result.text.count("[") == 100
    history = http.get("/v1/workflows/deep-ok/history")
    assert history.status_code == 200
    reads_work(http, "deep-ok")


def test_query_counts_take_ascii_digits_in_range(server: Server, worker: durably.App) -> None:
    http = server.http
    for limit in ("²", "9" * 5000, "١٢", "\uff11\uff12", "-1", "0", "1001", "1e3", " 5", ""):
        assert_error(http.get("/v1/workflows", params={"limit": limit}), 400, "limit")
    assert http.get("/v1/workflows", params={"limit": "1000"}).status_code == 200
    for param in ("created_after", "created_before"):
        for value in ("١٢", "1e400", "nan"):
            assert_error(http.get("/v1/workflows", params={param: value}), 400, param)
    huge = "WzFlNDAwLCAiYSJd"  # base64 of [1e400, "a"]; and of [10**400, "a"] below
    cursor = base64.urlsafe_b64encode(f'[{10**400}, "a"]'.encode()).decode()
    for value in (huge, cursor.rstrip("=")):
        assert_error(http.get("/v1/workflows", params={"cursor": value}), 400, "cursor")


def test_fork_refuses_steps_out_of_range(server: Server, worker: durably.App) -> None:
    http = server.http
    http.post("/v1/workflows", json={"name": "greet", "args": ["f"], "id": "fork-src"})
    wait_status(worker, "fork-src", "completed")
    before = count(worker)
    body: dict[str, Any]
    for body in ({"from_step": 2**63}, {"from_step": 10**23}, {"from_step": -1}):
        assert_error(http.post("/v1/workflows/fork-src/fork", json=body), 400, "from_step")
    assert count(worker) == before


def test_odd_content_lengths_and_wait_digits_are_400_in_process(tmp_path: Any) -> None:
    """Through the ASGI app itself (uvicorn refuses a non-ASCII Content-Length before the app,
    other ASGI servers may not): ``"²".isdigit()`` is true but ``int("²")`` fails."""
    web = create_app(durably.App(f"sqlite:///{tmp_path}/cl.db"))

    async def post(length: str) -> int:
        sent: list[dict[str, Any]] = []
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/v1/workflows", "raw_path": b"/v1/workflows",
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "headers": [(b"content-length", length.encode("latin-1")),
                        (b"content-type", b"application/json")],
        }  # fmt: skip

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await web(scope, receive, send)
        return int(sent[0]["status"])

    assert asyncio.run(post("\u00b2")) == 400
    assert asyncio.run(post("9" * 5000)) == 413
    transport = httpx.ASGITransport(app=web)

    async def wait(value: str) -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.get(f"/v1/workflows/nope/result?wait={value}")
            return r.status_code

    assert asyncio.run(wait("%D9%A1")) == 400  # Arabic-Indic 1
    web.state.durably.close()


def test_the_client_refuses_what_the_server_would(server: Server, worker: durably.App) -> None:
    """durably.Client checks input as the App does: a clear durably error before any request
    (an event name with '/' once reached the server as a wrong route: 'no such workflow')."""
    server.http.post("/v1/workflows", json={"name": "waiter", "id": "client-w"})
    before = count(worker)
    with durably.Client(server.url) as client:
        cases: list[tuple[Any, type[Exception], str]] = [
            (lambda: client.send_event("client-w", "a/b"), ConfigurationError, "event name"),
            (lambda: client.send_event("client-w", "go", dedup_key="k" * 600), ConfigurationError,
             "512"),
            (lambda: client.send_event("client-w", "go", "\ud800"), SerializationError,
             "surrogate"),
            (lambda: client.start("echo", ["\ud800"]), SerializationError, "surrogate"),
            (lambda: client.start("echo", deep(120)), SerializationError, "nested too deeply"),
            (lambda: client.start("a\x00b"), ConfigurationError, "NUL"),
            (lambda: client.list_workflows(limit=10**30), ConfigurationError, "limit"),
            (lambda: client.list_workflows(before=(10**400, "a")), ConfigurationError, "finite"),
            (lambda: client.list_workflows(id_prefix="\udc00"), ConfigurationError, "surrogate"),
            (lambda: client.list_workflows(created_after=float("nan")), ConfigurationError,
             "finite"),
            (lambda: client.fork("client-w", from_step=2**63), ConfigurationError, "from_step"),
            (lambda: client.terminate("client-w", "\ud800"), ConfigurationError, "reason"),
        ]  # fmt: skip
        for call, error, words in cases:
            with pytest.raises(error, match=words):
                call()
        assert client.handle("client-w").status().value in ("pending", "running")
    assert count(worker) == before


def test_surrogates_stored_before_they_were_refused_still_read(
    database: str, worker: durably.App, tmp_path: Any
) -> None:
    """A database written by an older durably may hold \\u-escaped lone surrogates: no route
    answers 500 (the raw ones send the text \\u-escaped) and the CLI prints no traceback."""
    now = time.time()
    wid = f"legacy-{uuid.uuid4().hex[:6]}"
    record = WorkflowRecord(
        id=wid, name="echo", status=WorkflowStatus.TERMINATED,
        input='{"args":["\\ud800"],"kwargs":{"k":{"\\udc00":1}}}', created_at=now, updated_at=now,
        error='{"type":"T","message":"bad \\udfff"}', finished_at=now,
    )  # fmt: skip
    worker.store.create_workflow(record)
    web = create_app(durably.App(database))
    transport = httpx.ASGITransport(app=web)

    async def reads() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            paths = ["", "/result", "/history", "/state", "/runs", "/children"]
            got = [await client.get(f"/v1/workflows/{wid}{p}") for p in paths]
            got.append(await client.get(f"/v1/workflows?id_prefix={wid}"))
            got.append(await client.get(f"/v1.0/workflows/dapr/{wid}"))
            return got

    answers = asyncio.run(reads())
    for r in answers[1:6] + answers[7:]:
        assert r.status_code == 200, (r.request.url, r.text)
    assert answers[1].json()["error"]["message"] == "bad \udfff"
    # the workflow and its list re-encode decoded values (server/views.py): a clear 400, no 500
    for r in (answers[0], answers[6]):
        assert r.status_code in (200, 400), (r.request.url, r.text)
    web.state.durably.close()
    env = {**server_env(), "PYTHONIOENCODING": "utf-8"}
    for argv in (("ls", "--json"), ("show", wid), ("show", wid, "--json")):
        done = subprocess.run(
            [sys.executable, "-m", "durably.cli", *argv, "--db", database],
            capture_output=True, text=True, env=env, timeout=60, errors="replace",
        )  # fmt: skip
        assert done.returncode in (0, 2) and "Traceback" not in done.stderr, (argv, done.stderr)
        assert wid in done.stdout or "lone surrogate" in done.stderr
