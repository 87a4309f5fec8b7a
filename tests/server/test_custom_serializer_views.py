"""A server started with only ``--db`` on a database whose values a custom serializer wrote: every
read answers 200 with the stored text marked undecodable (no 500); a server embedding the App
(``create_app(app)``) answers the decoded values."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import durably
from durably.server import create_app

from ..marking import MARK, WHEN, Item, PickleMarker, register, wait_until
from .conftest import FAST, Server, start_server


def _undecodable(value: Any) -> str:
    text: str = value["$undecodable"]["text"]
    return text


@pytest.fixture(scope="module")
def written(database: str) -> Iterator[str]:
    """The module's database, with a finished and a waiting workflow of a PickleMarker app."""
    app = durably.App(database, serializer=PickleMarker(), worker_options=FAST)
    wfs = register(app)
    try:
        with app:
            handle = app.start(wfs["main"], Item("ada", 2), when=WHEN, id="pm-main")
            app.send_event("pm-main", "go", {"by": 3})
            wait_until(lambda: handle.status().value == "completed", "pm-main completes")
            app.start(wfs["broken"], "no luck", id="pm-broken")
            wait_until(lambda: app.handle("pm-broken").status().value == "failed", "it fails")
    finally:
        app.close()
    yield database


@pytest.fixture(scope="module")
def plain_server(written: str) -> Iterator[Server]:
    s = start_server(written)
    yield s
    s.stop()


def test_a_server_without_the_serializer_answers_every_read(plain_server: Server) -> None:
    http = plain_server.http
    one = http.get("/v1/workflows/pm-main")
    assert one.status_code == 200, one.text
    assert _undecodable(one.json()["input"]).startswith(MARK)
    listed = http.get("/v1/workflows", params={"id_prefix": "pm-"})
    assert listed.status_code == 200, listed.text
    for path in ("history", "state", "runs", "children", "result"):
        r = http.get(f"/v1/workflows/pm-main/{path}")
        assert r.status_code == 200, (path, r.text)
    assert _undecodable(http.get("/v1/workflows/pm-main/state").json()["state"]["progress"])
    failed = http.get("/v1/workflows/pm-broken/result").json()
    assert failed["error"]["type"] == "durably.Undecodable" and failed["error"]["text"]
    dapr = http.get("/v1.0/workflows/dapr/pm-main")
    assert dapr.status_code == 200, dapr.text


def test_a_server_embedding_the_app_decodes_its_values(written: str) -> None:
    app = durably.App(written, serializer=PickleMarker())

    async def read() -> tuple[Any, Any, Any]:
        transport = httpx.ASGITransport(app=create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://durably") as http:
            one = (await http.get("/v1/workflows/pm-main")).json()
            state = (await http.get("/v1/workflows/pm-main/state")).json()["state"]
            result = (await http.get("/v1/workflows/pm-broken/result")).json()
            return one, state, result

    try:
        body, state, result = asyncio.run(read())
    finally:
        app.close()
    assert body["input"]["args"] == [{"name": "ada", "qty": 2}]
    assert body["input"]["kwargs"]["when"] == {"$datetime": WHEN.isoformat()}
    assert state["progress"]["when"] == {"$datetime": WHEN.isoformat()}
    assert result["error"]["message"] == "no luck"


def test_tagged_values_sent_over_http_reach_a_custom_serializer_as_python_values(
    tmp_path: Any,
) -> None:
    app = durably.App(f"sqlite:///{tmp_path}/h.db", serializer=PickleMarker(), worker_options=FAST)

    @app.workflow(name="kinds")
    async def kinds(when: Any) -> str:
        got = await durably.wait_event("e")
        return f"{type(when).__name__} {type(got['at']).__name__}"

    async def send() -> list[int]:
        transport = httpx.ASGITransport(app=create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://durably") as http:
            started = await http.post(
                "/v1/workflows",
                json={"name": "kinds", "args": [{"$datetime": WHEN.isoformat()}], "id": "k1"},
            )
            event = {"data": {"at": {"$uuid": "12345678-1234-5678-1234-567812345678"}}}
            sent = await http.post("/v1/workflows/k1/events/e", json=event)
            return [started.status_code, sent.status_code]

    try:
        with app:
            assert asyncio.run(send()) == [202, 202]
            assert app.handle("k1").result(timeout=30) == "datetime UUID"
    finally:
        app.close()
