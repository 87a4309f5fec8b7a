"""The schedule routes (``/v1/schedules``) on both backends, in process (ASGI): every action,
the OpenAPI document, the token, bad input as a 4xx in the API's error shape with nothing
written, and no secret of the database URL in any answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import durably
from durably.server import create_app

from ..test_secret_leaks import assert_no_secret, pg_secret_url  # noqa: F401 (a fixture)

Request = tuple[str, str, dict[str, Any]]


def make_app(url: str) -> durably.App:
    app = durably.App(url)

    @app.workflow(name="greet")
    def greet(name: str) -> str:
        return f"hello {name}"

    return app


def ask(
    app: durably.App, requests: list[Request], token: str | None = None
) -> list[httpx.Response]:
    web = create_app(app, token=token) if token else create_app(app)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [await http.request(m, p, **kw) for m, p, kw in requests]

    return asyncio.run(run())


@pytest.fixture
def app(db_url: str) -> Iterator[durably.App]:
    app = make_app(db_url)
    yield app
    app.close()


def one(app: durably.App, method: str, path: str, **kw: Any) -> httpx.Response:
    return ask(app, [(method, path, kw)])[0]


def test_every_action(app: durably.App) -> None:
    body = {"name": "nightly", "workflow": "greet", "cron": "0 3 * * *",
            "timezone": "Europe/Berlin", "args": ["ada"], "note": "team a"}  # fmt: skip
    created = one(app, "POST", "/v1/schedules", json=body)
    assert created.status_code == 200, created.text
    info = created.json()
    assert info["name"] == "nightly" and info["next_run_at"].endswith("T03:00:00+01:00")
    assert info["input"] == '{"args":["ada"],"kwargs":{}}' and not info["paused"]
    listed = one(app, "GET", "/v1/schedules").json()["schedules"]
    assert [s["name"] for s in listed] == ["nightly"]
    assert one(app, "GET", "/v1/schedules/nightly").json()["note"] == "team a"
    patched = one(
        app, "PATCH", "/v1/schedules/nightly", json={"every": 3600, "overlap": "allow_all"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["every"] == 3600 and patched.json()["cron"] is None
    paused = one(app, "POST", "/v1/schedules/nightly/pause", json={"reason": "move"}).json()
    assert paused["paused"] and paused["pause_reason"] == "move"
    assert one(app, "POST", "/v1/schedules/nightly/unpause").json()["paused"] is False
    trig = one(app, "POST", "/v1/schedules/nightly/trigger")
    assert trig.status_code == 202
    (tick,) = trig.json()["ticks"]
    assert tick["result"] == "started"
    assert one(app, "GET", f"/v1/workflows/{tick['workflow_id']}").json()["name"] == "greet"
    window = {"start": "2026-01-01T00:00:00+01:00", "end": "2026-01-01T02:00:00+01:00"}
    first = one(app, "POST", "/v1/schedules/nightly/backfill", json=window).json()["ticks"]
    assert [t["result"] for t in first] == ["started"] * 3
    assert first[0]["workflow_id"] == "nightly@2026-01-01T00:00:00+01:00"
    again = one(app, "POST", "/v1/schedules/nightly/backfill", json=window).json()["ticks"]
    assert [t["result"] for t in again] == ["exists"] * 3
    assert one(app, "DELETE", "/v1/schedules/nightly").status_code == 204
    gone = one(app, "GET", "/v1/schedules/nightly")
    assert gone.status_code == 404
    assert gone.json() == {
        "error": {"code": "not_found", "message": "no schedule named 'nightly'; GET "
                  "/v1/schedules lists them"}
    }  # fmt: skip


BAD: list[tuple[Request, int, str]] = [
    (("POST", "/v1/schedules", {"json": {"name": "n", "workflow": "greet", "cron": "0 3 * *"}}),
     400, "bad cron expression"),
    (("POST", "/v1/schedules", {"json": {"name": "n", "workflow": "greet", "every": 60,
                                         "timezone": "Nowhere/X"}}), 400, "unknown timezone"),
    (("POST", "/v1/schedules", {"json": {"name": "a@b", "workflow": "greet", "every": 60}}),
     400, "invalid schedule name"),
    (("POST", "/v1/schedules", {"json": {"name": "n", "workflow": "greet", "every": 60,
                                         "colour": 1}}), 400, "unknown field(s) 'colour'"),
    (("POST", "/v1/schedules", {"json": {"name": "n", "workflow": "greet", "every": 60,
                                         "overlap": "never"}}), 400, "overlap"),
    (("POST", "/v1/schedules", {"json": {"name": "n", "workflow": "greet", "every": "x"}}),
     400, "every"),
    (("POST", "/v1/schedules", {"json": {"name": "n", "workflow": "greet", "every": 60,
                                         "start_at": "soon"}}), 400, "start_at"),
    (("POST", "/v1/schedules", {"json": {"name": "n", "workflow": "nope", "every": 60}}),
     404, "no worker has registered a workflow named 'nope'"),
    (("POST", "/v1/schedules", {"content": b"{not json",
                                "headers": {"content-type": "application/json"}}), 400, "JSON"),
    (("POST", "/v1/schedules", {"content": b"x", "headers": {"content-type": "text/plain"}}),
     415, ""),
    (("GET", "/v1/schedules/a@b", {}), 400, "invalid schedule name"),
    (("GET", "/v1/schedules/ghost", {}), 404, "no schedule named 'ghost'"),
    (("PATCH", "/v1/schedules/ghost", {"json": {"note": "x"}}), 404, "no schedule named"),
    (("POST", "/v1/schedules/ghost/pause", {}), 404, "no schedule named"),
    (("POST", "/v1/schedules/ghost/unpause", {}), 404, "no schedule named"),
    (("POST", "/v1/schedules/ghost/trigger", {}), 404, "no schedule named"),
    (("DELETE", "/v1/schedules/ghost", {}), 404, "no schedule named"),
    (("POST", "/v1/schedules/ghost/backfill", {"json": {"start": 0, "end": 60}}), 404,
     "no schedule named"),
    (("POST", "/v1/schedules/s/trigger", {"json": {"overlap": "sometimes"}}), 400, "overlap"),
    (("POST", "/v1/schedules/s/backfill", {"json": {"start": 100.0, "end": 50.0}}), 400,
     "end is before its start"),
    (("POST", "/v1/schedules/s/backfill", {"json": {"start": "yesterday", "end": 5.0}}), 400,
     "start"),
    (("PATCH", "/v1/schedules/s", {"json": {"paused": True}}), 400, "unknown field(s) 'paused'"),
    (("PATCH", "/v1/schedules/s", {"json": {"cron": "nope"}}), 400, "bad cron expression"),
]  # fmt: skip


def test_bad_input_is_a_4xx_in_the_error_shape_and_writes_nothing(app: durably.App) -> None:
    assert one(app, "POST", "/v1/schedules",
               json={"name": "s", "workflow": "greet", "every": 60}).status_code == 200  # fmt: skip
    before = one(app, "GET", "/v1/schedules").json()
    answers = ask(app, [r for r, _, _ in BAD])
    for (request, status, says), answer in zip(BAD, answers, strict=True):
        assert answer.status_code == status, (request, answer.text)
        error = answer.json()["error"]
        assert says in error["message"] and error["code"], (request, error)
    assert one(app, "GET", "/v1/schedules").json() == before
    assert app.list_workflows() == []


def test_openapi_lists_the_schedule_routes_and_the_token_is_needed(app: durably.App) -> None:
    doc = one(app, "GET", "/openapi.json").json()
    paths = doc["paths"]
    assert set(paths["/v1/schedules"]) == {"get", "post"}
    assert set(paths["/v1/schedules/{name}"]) == {"get", "patch", "delete"}
    for action in ("pause", "unpause", "trigger", "backfill"):
        assert "post" in paths[f"/v1/schedules/{{name}}/{action}"]
    assert {"Schedule", "ScheduleRequest", "TickList"} <= set(doc["components"]["schemas"])
    answers = ask(app, [("GET", "/v1/schedules", {}), ("POST", "/v1/schedules/s/trigger", {})],
                  token="t0ken")  # fmt: skip
    assert [a.status_code for a in answers] == [401, 401]


def test_no_answer_shows_a_secret(pg_secret_url: str) -> None:  # noqa: F811
    app = make_app(pg_secret_url)
    try:
        requests: list[Request] = [r for r, _, _ in BAD]
        requests += [("GET", "/v1/schedules", {}),
                     ("POST", "/v1/schedules", {"json": {"name": "s", "workflow": "greet",
                                                         "every": 60}})]  # fmt: skip
        for answer in ask(app, requests):
            assert answer.status_code < 500, answer.text
            assert_no_secret(f"{answer.headers} {answer.text}", "a schedule route")
    finally:
        app.close()
