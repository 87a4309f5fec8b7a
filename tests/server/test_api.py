"""The native HTTP API (/v1) against a real server process, on SQLite and PostgreSQL: every
route, with an embedded worker running what the server starts."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

import durably
import durably.errors

from .conftest import Server, count, wait_state, wait_status


def uid(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_health_readiness_and_openapi(server: Server) -> None:
    assert server.http.get("/healthz").json() == {"status": "ok"}
    assert server.http.get("/readyz").json() == {"status": "ready"}
    doc = server.http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/v1/workflows/{id}/result" in doc["paths"]
    assert "/v1.0/workflows/{component}/{name}/start" in doc["paths"]
    assert "/v1.0-beta1/workflows/{component}/{id}/raiseEvent/{event}" in doc["paths"]


def test_start_poll_result_and_get(server: Server, worker: durably.App) -> None:
    wid = uid("greet")
    r = server.http.post("/v1/workflows", json={"name": "greet", "args": ["ada"], "id": wid})
    assert r.status_code == 202
    assert r.headers["location"] == f"/v1/workflows/{wid}"
    body = r.json()
    assert body["id"] == wid and body["name"] == "greet" and body["status"] == "pending"
    assert body["input"] == {"args": ["ada"], "kwargs": {}}
    # async request-reply: poll the Location's result until done
    done = server.http.get(f"{r.headers['location']}/result", params={"wait": 15}).json()
    assert done == {"id": wid, "status": "completed", "done": True, "output": "hello ada",
                    "error": None}  # fmt: skip
    got = server.http.get(f"/v1/workflows/{wid}").json()
    assert got["status"] == "completed" and got["output"] == "hello ada"
    assert got["finished_at"] is not None and got["unserved"] is False
    assert datetime.fromisoformat(got["created_at"]).tzinfo is not None
    # starting the same id again: 200 with the existing workflow, nothing runs again
    before = count(worker)
    again = server.http.post("/v1/workflows", json={"name": "greet", "args": ["bob"], "id": wid})
    assert again.status_code == 200 and again.json()["output"] == "hello ada"
    assert count(worker) == before


def test_start_without_id_with_kwargs_queue_and_priority(
    server: Server, worker: durably.App
) -> None:
    r = server.http.post("/v1/workflows", json={"name": "echo", "args": [1], "kwargs": {"k": "v"}})
    assert r.status_code == 202
    wid = r.json()["id"]
    result = server.http.get(f"/v1/workflows/{wid}/result", params={"wait": 15}).json()
    assert result["output"] == {"args": [1], "kwargs": {"k": "v"}}
    r = server.http.post("/v1/workflows", json={"name": "greet", "args": ["q"], "queue": "default",
                                                "priority": 5})  # fmt: skip
    assert r.status_code == 202 and r.json()["queue"] == "default" and r.json()["priority"] == 5


def test_kwargs_named_like_start_options_reach_the_workflow(server: Server) -> None:
    body = {"name": "echo", "kwargs": {"id": 7, "priority": "x", "queue": None}}
    r = server.http.post("/v1/workflows", json=body)
    assert r.status_code == 202
    result = server.http.get(f"/v1/workflows/{r.json()['id']}/result", params={"wait": 15})
    assert result.json()["output"] == {"args": [], "kwargs": body["kwargs"]}


def test_concurrent_starts_of_one_new_id_create_it_once(server: Server) -> None:
    wid = uid("race")
    barrier = threading.Barrier(8)

    def post(n: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            barrier.wait()
            body = {"name": "greet", "args": [f"n{n}"], "id": wid}
            return http.post("/v1/workflows", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(post, range(8)))
    assert codes == [200] * 7 + [202]
    result = server.http.get(f"/v1/workflows/{wid}/result", params={"wait": 15}).json()
    winner = result["output"].removeprefix("hello ")
    assert winner in {f"n{n}" for n in range(8)}


def test_result_not_yet_is_202_with_retry_after(server: Server, worker: durably.App) -> None:
    wid = uid("sleepy")
    server.http.post("/v1/workflows", json={"name": "sleepy", "id": wid})
    r = server.http.get(f"/v1/workflows/{wid}/result")
    assert r.status_code == 202
    assert r.json() == {"id": wid, "status": r.json()["status"], "done": False}
    assert r.headers["retry-after"] == "1"
    assert r.headers["location"] == f"/v1/workflows/{wid}/result"
    started = time.monotonic()
    r = server.http.get(f"/v1/workflows/{wid}/result", params={"wait": 0.3})
    assert r.status_code == 202 and time.monotonic() - started >= 0.25
    assert server.http.post(f"/v1/workflows/{wid}/cancel").status_code == 202


def test_failed_workflow_result_carries_the_error(server: Server) -> None:
    r = server.http.post("/v1/workflows", json={"name": "boom"})
    wid = r.json()["id"]
    result = server.http.get(f"/v1/workflows/{wid}/result", params={"wait": 15}).json()
    assert result["done"] is True and result["status"] == "failed" and result["output"] is None
    assert result["error"]["type"].endswith("ValueError") and result["error"]["message"] == "boom"
    info = server.http.get(f"/v1/workflows/{wid}").json()
    assert info["error"]["message"] == "boom"


def test_history_state_and_children(server: Server, worker: durably.App) -> None:
    wid = uid("steps")
    server.http.post("/v1/workflows", json={"name": "steps", "args": [3], "id": wid})
    assert server.http.get(f"/v1/workflows/{wid}/result?wait=15").json()["output"] == 12
    entries = server.http.get(f"/v1/workflows/{wid}/history").json()["entries"]
    assert [(e["kind"], e["name"], e["result"]) for e in entries] == [
        ("step", "double", 6), ("step", "double", 12),
    ]  # fmt: skip
    assert {"seq", "status", "attempts", "started_at", "finished_at", "owner", "epoch",
            "error", "failed_attempts"} <= set(entries[0])  # fmt: skip
    datetime.fromisoformat(entries[0]["started_at"])

    pid = uid("parent")
    server.http.post("/v1/workflows", json={"name": "parent", "args": ["kid"], "id": pid})
    assert server.http.get(f"/v1/workflows/{pid}/result?wait=15").json()["output"] == "hello kid"
    children = server.http.get(f"/v1/workflows/{pid}/children").json()["workflows"]
    assert [(c["id"], c["parent_id"], c["output"]) for c in children] == [
        (f"{pid}-child", pid, "hello kid")
    ]
    assert server.http.get(f"/v1/workflows/{wid}/children").json() == {"workflows": []}

    waiter = uid("waiter")
    server.http.post("/v1/workflows", json={"name": "waiter", "id": waiter})
    wait_state(worker, waiter, "stage", "waiting")
    assert server.http.get(f"/v1/workflows/{waiter}/state").json() == {
        "state": {"stage": "waiting"}
    }
    server.http.post(f"/v1/workflows/{waiter}/cancel")


def test_events_with_dedup(server: Server, worker: durably.App) -> None:
    wid = uid("waiter")
    server.http.post("/v1/workflows", json={"name": "waiter", "id": wid})
    # the duplicate goes to an event the workflow does not wait for, so it is still running
    # when the duplicate arrives (after "go" it may have ended: then events get 409)
    note = {"data": "first", "dedup_key": "k1"}
    r = server.http.post(f"/v1/workflows/{wid}/events/note", json=note)
    assert r.status_code == 202 and r.json() == {"delivered": True}
    again = server.http.post(f"/v1/workflows/{wid}/events/note", json={**note, "data": "dup"})
    assert again.status_code == 202 and again.json() == {"delivered": False}
    r = server.http.post(f"/v1/workflows/{wid}/events/go", json={"data": {"ok": [1, 2]}})
    assert r.status_code == 202 and r.json() == {"delivered": True}
    result = server.http.get(f"/v1/workflows/{wid}/result?wait=15").json()
    assert result["output"] == {"ok": [1, 2]}
    late = server.http.post(f"/v1/workflows/{wid}/events/go", json={"data": 3})
    assert late.status_code == 409 and late.json()["error"]["code"] == "conflict"
    # an empty body sends a null payload
    other = uid("waiter")
    server.http.post("/v1/workflows", json={"name": "waiter", "id": other})
    assert server.http.post(f"/v1/workflows/{other}/events/go").json() == {"delivered": True}
    assert server.http.get(f"/v1/workflows/{other}/result?wait=15").json()["output"] is None


def test_suspend_resume_cancel_terminate(server: Server, worker: durably.App) -> None:
    wid = uid("waiter")
    server.http.post("/v1/workflows", json={"name": "waiter", "id": wid})
    wait_state(worker, wid, "stage", "waiting")
    r = server.http.post(f"/v1/workflows/{wid}/suspend")
    assert r.status_code == 202 and r.json() == {"id": wid, "status": "suspended"}
    assert server.http.post(f"/v1/workflows/{wid}/suspend").status_code == 202  # idempotent
    r = server.http.post(f"/v1/workflows/{wid}/resume")
    assert r.status_code == 202 and r.json()["status"] != "suspended"
    assert server.http.post(f"/v1/workflows/{wid}/resume").status_code == 409
    assert server.http.post(f"/v1/workflows/{wid}/cancel").status_code == 202
    assert wait_status(worker, wid, "cancelled") == "cancelled"

    other = uid("sleepy")
    server.http.post("/v1/workflows", json={"name": "sleepy", "id": other})
    r = server.http.post(f"/v1/workflows/{other}/terminate", json={"reason": "ops said so"})
    assert r.status_code == 202 and r.json() == {"id": other, "status": "terminated"}
    info = server.http.get(f"/v1/workflows/{other}").json()
    assert info["status"] == "terminated" and info["error"]["message"] == "ops said so"
    again = server.http.post(f"/v1/workflows/{other}/terminate")
    assert again.status_code == 409 and "terminated" in again.json()["error"]["message"]


def test_retry_fork_and_purge(server: Server, worker: durably.App) -> None:
    failed = server.http.post("/v1/workflows", json={"name": "boom"}).json()["id"]
    wait_status(worker, failed, "failed")
    r = server.http.post(f"/v1/workflows/{failed}/retry")
    assert r.status_code == 202 and r.json()["id"] == failed
    wait_status(worker, failed, "failed")

    wid = uid("steps")
    server.http.post("/v1/workflows", json={"name": "steps", "args": [1], "id": wid})
    server.http.get(f"/v1/workflows/{wid}/result?wait=15")
    assert server.http.post(f"/v1/workflows/{wid}/retry").status_code == 409
    forked = uid("fork")
    r = server.http.post(f"/v1/workflows/{wid}/fork", json={"from_step": 1, "new_id": forked})
    assert r.status_code == 201 and r.headers["location"] == f"/v1/workflows/{forked}"
    assert r.json()["id"] == forked and r.json()["input"] == {"args": [1], "kwargs": {}}
    assert server.http.get(f"/v1/workflows/{forked}/result?wait=15").json()["output"] == 4
    taken = server.http.post(f"/v1/workflows/{wid}/fork", json={"from_step": 0, "new_id": forked})
    assert taken.status_code == 409
    anonymous = server.http.post(f"/v1/workflows/{wid}/fork", json={"from_step": 0})
    assert anonymous.status_code == 201 and anonymous.json()["id"] != wid
    past = server.http.post(f"/v1/workflows/{wid}/fork", json={"from_step": 99, "new_id": "p-1"})
    assert past.status_code == 400 and "entries 0 to 1" in past.json()["error"]["message"]
    assert server.http.get("/v1/workflows/p-1").status_code == 404

    running = uid("sleepy")
    server.http.post("/v1/workflows", json={"name": "sleepy", "id": running})
    assert server.http.delete(f"/v1/workflows/{running}").status_code == 409
    r = server.http.delete(f"/v1/workflows/{wid}")
    assert r.status_code == 204 and r.content == b""
    assert server.http.get(f"/v1/workflows/{wid}").status_code == 404
    assert server.http.delete(f"/v1/workflows/{wid}").status_code == 404
    server.http.post(f"/v1/workflows/{running}/terminate")


def test_list_filters_and_cursor_pages(server: Server, worker: durably.App) -> None:
    prefix = uid("batch")
    ids = [f"{prefix}-{i}" for i in range(5)]
    t0 = time.time()
    for wid in ids:
        assert (
            server.http.post("/v1/workflows", json={"name": "sleepy", "id": wid}).status_code == 202
        )
    listed = server.http.get("/v1/workflows", params={"id_prefix": prefix}).json()
    assert [w["id"] for w in listed["workflows"]] == ids[::-1]  # newest first
    assert listed["next_cursor"] is None
    # pages of 2 through the cursor
    seen: list[str] = []
    params: dict[str, str | int] = {"id_prefix": prefix, "limit": 2}
    while True:
        page = server.http.get("/v1/workflows", params=params).json()
        seen += [w["id"] for w in page["workflows"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ids[::-1]
    # status, name and time filters
    for wid in ids[:2]:
        server.http.post(f"/v1/workflows/{wid}/terminate")
    terminated = server.http.get(
        "/v1/workflows", params={"id_prefix": prefix, "status": "terminated"}
    ).json()["workflows"]
    assert sorted(w["id"] for w in terminated) == sorted(ids[:2])
    both = server.http.get(
        "/v1/workflows",
        params=[("id_prefix", prefix), ("status", "terminated"), ("status", "pending"),
                ("status", "running")],
    ).json()["workflows"]  # fmt: skip
    assert len(both) == 5
    assert (
        server.http.get("/v1/workflows", params={"id_prefix": prefix, "name": "greet"}).json()[
            "workflows"
        ]
        == []
    )
    iso_before = datetime.fromtimestamp(t0 - 60, UTC).isoformat()
    after = server.http.get(
        "/v1/workflows", params={"id_prefix": prefix, "created_after": iso_before}
    ).json()["workflows"]
    assert len(after) == 5
    future = server.http.get(
        "/v1/workflows", params={"id_prefix": prefix, "created_after": str(time.time() + 60)}
    ).json()["workflows"]
    assert future == []
    old = server.http.get(
        "/v1/workflows", params={"id_prefix": prefix, "created_before": "2000-01-01T00:00:00Z"}
    ).json()["workflows"]
    assert old == []
    for wid in ids[2:]:
        server.http.post(f"/v1/workflows/{wid}/terminate")


def test_workers(server: Server, worker: durably.App) -> None:
    workers = server.http.get("/v1/workers").json()["workers"]
    assert len(workers) >= 1
    mine = next(w for w in workers if "greet" in w["workflows"])
    assert {"id", "hostname", "pid", "started_at", "heartbeat_at", "queues"} <= set(mine)
    assert "default" in mine["queues"]
    stale = server.http.get("/v1/workers", params={"include_stale": "true"}).json()["workers"]
    assert len(stale) >= len(workers)
    assert server.http.get("/v1/workers", params={"include_stale": "maybe"}).status_code == 400


def test_start_of_an_id_taken_by_another_name_is_a_409(server: Server, worker: durably.App) -> None:
    wid = uid("taken")
    first = server.http.post("/v1/workflows", json={"name": "greet", "args": ["a"], "id": wid})
    assert first.status_code == 202
    wait_status(worker, wid, "completed")
    r = server.http.post("/v1/workflows", json={"name": "echo", "args": [1], "id": wid})
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "id_conflict"
    assert wid in error["message"] and "'greet'" in error["message"]
    assert "'echo'" in error["message"]
    # nothing was written: the workflow is still greet's, and the same name stays idempotent
    assert server.http.get(f"/v1/workflows/{wid}").json()["name"] == "greet"
    again = server.http.post("/v1/workflows", json={"name": "greet", "args": ["b"], "id": wid})
    assert again.status_code == 200 and again.json()["output"] == "hello a"


def test_create_app_refuses_a_missing_sqlite_file_as_the_cli_does(tmp_path: Path) -> None:
    from durably.server import create_app

    missing = tmp_path / "typo.db"
    with pytest.raises(durably.errors.DatabaseUnavailableError) as info:
        create_app(f"sqlite:///{missing}")
    assert str(missing) in info.value.message and "durably migrate" in info.value.message
    assert not missing.exists()  # nothing was created
    durably.App(f"sqlite:///{tmp_path}/made.db").store.migrate()
    assert create_app(f"sqlite:///{tmp_path}/made.db") is not None


def test_versions_count_unfinished_workflows_per_version(
    server: Server, worker: durably.App, database: str
) -> None:
    versioned = durably.App(database, version="sv.1")
    name = f"sv-only-{uuid.uuid4().hex[:8]}"  # no worker serves it: it stays pending
    versioned.workflow(name=name)(lambda: None)
    try:
        handle = versioned.start(name)
        assert handle.info().version == "sv.1"
        got = server.http.get(f"/v1/workflows/{handle.id}").json()
        assert got["version"] == "sv.1" and got["unserved"] is True
        rows = server.http.get("/v1/versions").json()["versions"]
        mine = next(r for r in rows if r["version"] == "sv.1")
        assert mine == {"version": "sv.1", "unfinished": 1, "statuses": {"pending": 1}}
        with durably.Client(server.url) as client:
            counts = client.count_versions()
            assert counts["sv.1"] == {durably.WorkflowStatus.PENDING: 1}
            assert client.handle(handle.id).info().version == "sv.1"
        workers = server.http.get("/v1/workers").json()["workers"]
        assert all(w["version"] is None for w in workers)
        versioned.terminate(handle.id)
    finally:
        versioned.close()
