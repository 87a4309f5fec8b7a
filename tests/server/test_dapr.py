"""Dapr workflow HTTP API compatibility, written from Dapr's public API reference (workflow_api):
plain HTTP requests as a Dapr client sends them, under /v1.0 and /v1.0-beta1.

Reference shapes: ``POST /v1.0/workflows/<component>/<workflowName>/start[?instanceID=<id>]``
with any request content as the workflow's input -> 202 ``{"instanceID": "..."}``;
``GET .../<component>/<instanceID>`` -> ``instanceID``, ``workflowName``, ``createdAt``,
``lastUpdatedAt``, ``runtimeStatus``, ``properties`` (string values such as
``dapr.workflow.input`` / ``dapr.workflow.output``); ``terminate``, ``raiseEvent/<eventName>``,
``pause``, ``resume``, ``purge`` -> 202. Instance ids: letters, digits, ``_`` and ``-``.
"""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import pytest

import durably

from .conftest import TOKEN, Server, count, wait_state, wait_status

VERSIONS = ["v1.0", "v1.0-beta1"]


def iid() -> str:
    return f"dapr_{uuid.uuid4().hex[:12]}"


def base(version: str) -> str:
    return f"/{version}/workflows/dapr"


@pytest.mark.parametrize("version", VERSIONS)
def test_start_get_and_output(server: Server, worker: durably.App, version: str) -> None:
    instance = iid()
    r = server.http.post(f"{base(version)}/greet/start", params={"instanceID": instance},
                         json="ada")  # fmt: skip
    assert r.status_code == 202 and r.json() == {"instanceID": instance}
    wait_status(worker, instance, "completed")
    got = server.http.get(f"{base(version)}/{instance}")
    assert got.status_code == 200
    body = got.json()
    assert body["instanceID"] == instance and body["workflowName"] == "greet"
    assert body["runtimeStatus"] == "COMPLETED"
    assert datetime.fromisoformat(body["createdAt"]) <= datetime.fromisoformat(
        body["lastUpdatedAt"]
    )
    props = body["properties"]
    assert all(isinstance(v, str) for v in props.values())
    assert json.loads(props["dapr.workflow.input"]) == "ada"
    assert json.loads(props["dapr.workflow.output"]) == "hello ada"
    # starting an existing instance id is a conflict
    again = server.http.post(f"{base(version)}/greet/start", params={"instanceID": instance},
                             json="bob")  # fmt: skip
    assert again.status_code == 409
    assert again.json()["errorCode"] and again.json()["message"]


def test_racing_starts_of_one_instance_id_start_it_once(server: Server) -> None:
    instance = iid()
    barrier = threading.Barrier(6)

    def post(n: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            barrier.wait()
            url = f"{base('v1.0')}/greet/start"
            return http.post(url, params={"instanceID": instance}, json=f"n{n}").status_code

    with ThreadPoolExecutor(6) as pool:
        assert sorted(pool.map(post, range(6))) == [202] + [409] * 5


def test_start_body_is_the_single_input(server: Server, worker: durably.App) -> None:
    # an object body is one argument; an empty body is no argument; no id: one is made
    r = server.http.post(f"{base('v1.0')}/echo/start", json={"item": "paperclips", "qty": 3})
    instance = r.json()["instanceID"]
    assert r.status_code == 202 and instance
    wait_status(worker, instance, "completed")
    out = json.loads(server.http.get(f"{base('v1.0')}/{instance}").json()["properties"][
        "dapr.workflow.output"])  # fmt: skip
    assert out == {"args": [{"item": "paperclips", "qty": 3}], "kwargs": {}}
    empty = server.http.post(f"{base('v1.0')}/echo/start").json()["instanceID"]
    wait_status(worker, empty, "completed")
    props = server.http.get(f"{base('v1.0')}/{empty}").json()["properties"]
    assert "dapr.workflow.input" not in props
    assert json.loads(props["dapr.workflow.output"]) == {"args": [], "kwargs": {}}
    # Dapr passes content as-is: plain text is a string input
    plain = {"Content-Type": "text/plain"}
    r = server.http.post(f"{base('v1.0')}/greet/start", content=b"world", headers=plain)
    text = r.json()["instanceID"]
    wait_status(worker, text, "completed")
    out = server.http.get(f"{base('v1.0')}/{text}").json()["properties"]["dapr.workflow.output"]
    assert json.loads(out) == "hello world"


@pytest.mark.parametrize("version", VERSIONS)
def test_raise_event_pause_resume(server: Server, worker: durably.App, version: str) -> None:
    instance = iid()
    server.http.post(f"{base(version)}/waiter/start", params={"instanceID": instance})
    wait_state(worker, instance, "stage", "waiting")
    assert server.http.get(f"{base(version)}/{instance}").json()["runtimeStatus"] == "RUNNING"
    r = server.http.post(f"{base(version)}/{instance}/pause")
    assert r.status_code == 202
    assert server.http.get(f"{base(version)}/{instance}").json()["runtimeStatus"] == "SUSPENDED"
    assert server.http.post(f"{base(version)}/{instance}/resume").status_code == 202
    assert server.http.get(f"{base(version)}/{instance}").json()["runtimeStatus"] == "RUNNING"
    r = server.http.post(f"{base(version)}/{instance}/raiseEvent/go", json={"approved": True})
    assert r.status_code == 202
    wait_status(worker, instance, "completed")
    props = server.http.get(f"{base(version)}/{instance}").json()["properties"]
    assert json.loads(props["dapr.workflow.output"]) == {"approved": True}


@pytest.mark.parametrize("version", VERSIONS)
def test_terminate_purge_and_failure(server: Server, worker: durably.App, version: str) -> None:
    instance = iid()
    server.http.post(f"{base(version)}/sleepy/start", params={"instanceID": instance})
    assert server.http.post(f"{base(version)}/{instance}/purge").status_code == 409  # running
    assert server.http.post(f"{base(version)}/{instance}/terminate").status_code == 202
    got = server.http.get(f"{base(version)}/{instance}").json()
    assert got["runtimeStatus"] == "TERMINATED"
    assert got["properties"]["dapr.workflow.failure.error_type"] == "Terminated"
    assert server.http.post(f"{base(version)}/{instance}/terminate").status_code == 202  # again
    assert server.http.post(f"{base(version)}/{instance}/purge").status_code == 202
    assert server.http.get(f"{base(version)}/{instance}").status_code == 404

    failed = iid()
    server.http.post(f"{base(version)}/boom/start", params={"instanceID": failed})
    wait_status(worker, failed, "failed")
    got = server.http.get(f"{base(version)}/{failed}").json()
    assert got["runtimeStatus"] == "FAILED"
    assert got["properties"]["dapr.workflow.failure.error_type"].endswith("ValueError")
    assert got["properties"]["dapr.workflow.failure.error_message"] == "boom"
    assert "dapr.workflow.output" not in got["properties"]


def test_cancelled_maps_to_canceled(server: Server, worker: durably.App) -> None:
    instance = iid()
    server.http.post(f"{base('v1.0')}/sleepy/start", params={"instanceID": instance})
    server.http.post(f"/v1/workflows/{instance}/cancel")
    wait_status(worker, instance, "cancelled")
    assert server.http.get(f"{base('v1.0')}/{instance}").json()["runtimeStatus"] == "CANCELED"


def test_dapr_bad_input_writes_nothing(server: Server, worker: durably.App) -> None:
    http = server.http
    before = count(worker)
    b = base("v1.0")
    for bad_id in ("has.dot", "a:b", "x" * 201, "with%20space"):
        r = http.post(f"{b}/greet/start", params={"instanceID": bad_id}, json="x")
        assert r.status_code == 400, bad_id
        assert r.json()["errorCode"] and "letters, digits" in r.json()["message"]
    unknown = http.post(f"{b}/no_such_workflow/start", json="x")
    assert unknown.status_code == 404 and "no worker has registered" in unknown.json()["message"]
    json_type = {"Content-Type": "application/json"}
    assert http.post(f"{b}/greet/start", content=b"{", headers=json_type).status_code == 400
    binary = {"Content-Type": "application/octet-stream"}
    assert http.post(f"{b}/greet/start", content=b"\xff\xfe", headers=binary).status_code == 400
    assert http.post("/v1.0/workflows/bad.component/greet/start", json="x").status_code == 400
    for suffix, method in [("", "GET"), ("/terminate", "POST"), ("/pause", "POST"),
                           ("/resume", "POST"), ("/purge", "POST"),
                           ("/raiseEvent/go", "POST")]:  # fmt: skip
        assert http.request(method, f"{b}/missing_{uuid.uuid4().hex}{suffix}").status_code == 404
        assert http.request(method, f"{b}/bad.id{suffix}").status_code == 400
    assert count(worker) == before


def test_dapr_routes_need_the_token(secured: Server, worker: durably.App) -> None:
    import httpx

    with httpx.Client(base_url=secured.url, timeout=10) as bare:
        r = bare.post(f"{base('v1.0')}/greet/start", json="x")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        ok = bare.post(f"{base('v1.0')}/greet/start", json="x",
                       headers={"dapr-api-token": TOKEN})  # fmt: skip
        assert ok.status_code == 202


def test_start_of_an_instance_id_taken_by_another_name_is_a_409(
    server: Server, worker: durably.App
) -> None:
    instance = iid()
    server.http.post(f"{base('v1.0')}/greet/start", params={"instanceID": instance}, json="ada")
    wait_status(worker, instance, "completed")
    r = server.http.post(f"{base('v1.0')}/echo/start", params={"instanceID": instance}, json=1)
    assert r.status_code == 409
    body = r.json()
    assert body["errorCode"] == "ERR_INSTANCE_ID_CONFLICT"
    assert "'greet'" in body["message"] and "'echo'" in body["message"]
    assert server.http.get(f"{base('v1.0')}/{instance}").json()["workflowName"] == "greet"
