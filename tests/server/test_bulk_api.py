"""``POST /v1/bulk/{action}``: counts processed and skipped, a cursor when it stops at its
limit, dry runs, bad filters as 400s in the API's error shape, and its place in OpenAPI."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

import durably
from durably.server import create_app
from durably.storage.base import WorkflowRecord, WorkflowStatus

T = 1_700_000_000.0


def _ask(app: durably.App, requests: list[tuple[str, str, Any]]) -> list[httpx.Response]:
    web = create_app(app)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [await http.request(m, p, **kw) for m, p, kw in requests]

    return asyncio.run(run())


def test_bulk_requests_count_page_and_refuse_bad_filters(db_url: str) -> None:
    app = durably.App(db_url)
    for i in range(5):
        app.store.create_workflow(WorkflowRecord(
            id=f"f-{i}", name="job", status=WorkflowStatus.FAILED, input="[]", created_at=T + i,
            updated_at=T + i, finished_at=T + i,
        ))  # fmt: skip
    flt = {"name": "job", "status": ["failed"]}
    ok = _ask(app, [
        ("POST", "/v1/bulk/purge", {"json": {"filter": flt, "dry_run": True}}),
        ("POST", "/v1/bulk/purge", {"json": {"filter": flt, "limit": 2}}),
        ("POST", "/v1/bulk/purge", {"json": {"filter": flt, "after": "f-1"}}),
        ("POST", "/v1/bulk/purge", {"json": {"filter": {"id_prefix": "f-"}}}),
    ])  # fmt: skip
    assert [r.status_code for r in ok] == [200] * 4, [r.text for r in ok]
    dry, first, rest, again = (r.json() for r in ok)
    assert (dry["dry_run"], dry["matched"], dry["sample"]) == (
        True,
        5,
        [f"f-{i}" for i in range(5)],
    )
    assert (first["processed"], first["skipped"], first["cursor"]) == (2, 0, "f-1")
    assert (rest["processed"], rest["cursor"]) == (3, None)
    assert (again["matched"], again["processed"]) == (0, 0)
    assert app.list_workflows() == []
    bad = _ask(app, [
        ("POST", "/v1/bulk/purge", {"json": {"filter": {}}}),
        ("POST", "/v1/bulk/purge", {"json": {"filter": {"status": "bogus"}}}),
        ("POST", "/v1/bulk/purge", {"json": {"filter": {"created_after": "yesterday"}}}),
        ("POST", "/v1/bulk/purge", {"json": {"filter": {"colour": "red"}}}),
        ("POST", "/v1/bulk/purge", {"json": {"filter": {"all": True}, "limit": 0}}),
        ("POST", "/v1/bulk/purge", {"json": {"filter": {"all": True}, "after": "bad id!"}}),
        ("POST", "/v1/bulk/purge", {"json": {"filter": {"all": True}, "extra": 1}}),
        ("POST", "/v1/bulk/purge", {"content": b"{not json"}),
        ("POST", "/v1/bulk/purge", {}),
        ("POST", "/v1/bulk/explode", {"json": {"filter": {"all": True}}}),
    ])  # fmt: skip
    for r in bad:
        assert r.status_code == 400, (r.request.url, r.text)
        assert r.json()["error"]["code"] == "bad_request", r.text
    messages = [r.json()["error"]["message"] for r in bad]
    assert "at least one filter" in messages[0]
    assert "unknown status" in messages[1]
    assert "ISO-8601" in messages[2]
    assert "unknown filter field" in messages[3]
    assert "unknown bulk action" in messages[9]
    spec = _ask(app, [("GET", "/openapi.json", {})])[0].json()
    op = spec["paths"]["/v1/bulk/{action}"]["post"]
    assert op["parameters"][0]["schema"]["enum"] == list(durably.bulk.BULK_ACTIONS)
    assert "200" in op["responses"] and "400" in op["responses"]
    app.close()


def test_a_client_runs_bulk_operations_through_the_server(db_url: str) -> None:
    app = durably.App(db_url)
    for i in range(3):
        app.store.create_workflow(WorkflowRecord(
            id=f"p-{i}", name="job", status=WorkflowStatus.PENDING, input="[]", created_at=T,
            updated_at=T,
        ))  # fmt: skip
    from .conftest import start_server

    server = start_server(db_url)
    try:
        with durably.Client(server.url) as client:
            seen: list[int] = []
            done = client.bulk(
                "terminate", durably.BulkFilter(name="job"), reason="cleanup", batch_size=2,
                progress=lambda r: seen.append(r.matched),
            )  # fmt: skip
            assert (done.matched, done.processed, done.skipped, done.cursor) == (3, 3, 0, None)
            assert seen == [2, 3]
            again = client.bulk("terminate", durably.BulkFilter(name="job"))
            assert (again.processed, again.skipped) == (0, 3)
    finally:
        server.stop()
    rec = app.store.get_workflow("p-0")
    assert (
        rec is not None
        and rec.status is WorkflowStatus.TERMINATED
        and "cleanup" in (rec.error or "")
    )
    app.close()
