"""The server goes through the App's workflow operations and handles, never its store: no module
of ``durably.server`` reads ``.store``; a missing workflow is told in the API's words as before;
a result wait is the App's own (``handle.result_async``); and a value the App cannot
decode answers the same on every route that shows it."""

from __future__ import annotations

import ast
import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import durably
import durably.server
from durably.handle import WorkflowHandle
from durably.server import create_app
from durably.storage.base import WorkflowRecord, WorkflowStatus

SERVER = Path(durably.server.__file__).parent


def _store_reads(source: str) -> list[int]:
    """The lines of ``source`` that read an attribute named ``store`` (``x.store``,
    ``getattr(x, "store")``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr == "store") or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and any(isinstance(a, ast.Constant) and a.value == "store" for a in node.args)
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_check_finds_store_reads() -> None:
    assert _store_reads("app.store.get_workflow('x')\ngetattr(app, 'store')\n") == [1, 2]
    assert _store_reads("app.handle('x').info()\nstore = 1\n") == []


def test_no_server_module_reads_the_apps_store() -> None:
    modules = sorted(SERVER.glob("*.py"))
    assert len(modules) > 10
    found = {p.name: _store_reads(p.read_text()) for p in modules}
    assert {name: lines for name, lines in found.items() if lines} == {}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    app = durably.App(url)
    now = time.time()
    written = [  # NaN: written by another writer (durably refuses it); no worker runs "pending"
        ("done", WorkflowStatus.COMPLETED, '"ok"'),
        ("nan", WorkflowStatus.COMPLETED, "NaN"),
        ("pending", WorkflowStatus.PENDING, None),
    ]
    for wid, status, output in written:
        app.store.create_workflow(
            WorkflowRecord(
                id=wid,
                name="echo",
                status=status,
                input='{"args":[],"kwargs":{}}',
                created_at=now,
                updated_at=now,
                output=output,
                finished_at=None if output is None else now,
            )
        )
    app.close()
    yield url


def _ask(url: str, requests: list[tuple[str, str]]) -> list[httpx.Response]:
    app = durably.App(url)
    web = create_app(app)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [await http.request(method, path) for method, path in requests]

    try:
        return asyncio.run(run())
    finally:
        app.close()


# the routes that read the workflow before anything else (history, runs and the commands answer
# the App's words, which name the database, its secrets hidden: tests/test_secret_leaks.py)
NATIVE = [("GET", ""), ("GET", "/result"), ("GET", "/state"), ("GET", "/children"),
          ("POST", "/events/go")]  # fmt: skip
DAPR = [("GET", ""), ("POST", "/terminate"), ("POST", "/pause"), ("POST", "/resume"),
        ("POST", "/purge"), ("POST", "/raiseEvent/go")]  # fmt: skip


def test_a_missing_workflow_is_told_in_the_apis_words(db: str) -> None:
    native = _ask(db, [(m, f"/v1/workflows/nope{p}") for m, p in NATIVE])
    for (method, path), r in zip(NATIVE, native, strict=True):
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["message"] == (
            "no workflow with id 'nope'; check the id (GET /v1/workflows lists them)"
        ), (method, path)
    dapr = _ask(db, [(m, f"/v1.0/workflows/dapr/nope{p}") for m, p in DAPR])
    for (method, path), r in zip(DAPR, dapr, strict=True):
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["message"] == "no workflow instance with ID 'nope'", (method, path)


def test_a_result_wait_is_the_apps_own(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[tuple[str, float | None]] = []
    original = WorkflowHandle.result_async

    async def spy(self: WorkflowHandle[Any], timeout: float | None = None) -> Any:
        waits.append((self.id, timeout))
        return await original(self, timeout)

    monkeypatch.setattr(WorkflowHandle, "result_async", spy)
    pending, done, now = _ask(
        db,
        [
            ("GET", "/v1/workflows/pending/result?wait=0.2"),
            ("GET", "/v1/workflows/done/result?wait=5"),  # ended: no wait
            ("GET", "/v1/workflows/pending/result"),  # wait=0: no wait
        ],
    )
    assert waits == [("pending", 0.2)]
    assert pending.status_code == 202 and pending.json() == {
        "id": "pending", "status": "pending", "done": False,
    }  # fmt: skip
    assert pending.headers["retry-after"] == "1"
    assert pending.headers["location"] == "/v1/workflows/pending/result"
    assert done.status_code == 200 and done.json() == {
        "id": "done", "status": "completed", "done": True, "output": "ok", "error": None,
    }  # fmt: skip
    assert now.status_code == 202


def test_a_value_the_app_cannot_decode_answers_alike_on_every_route(db: str) -> None:
    """An output the codec refuses (NaN: not JSON, written by another writer) once made the
    result route answer 500; now each route shows the workflow route's ``$undecodable``."""
    whole, result, dapr = _ask(
        db,
        [
            ("GET", "/v1/workflows/nan"),
            ("GET", "/v1/workflows/nan/result"),
            ("GET", "/v1.0/workflows/dapr/nan"),
        ],
    )
    assert whole.status_code == result.status_code == dapr.status_code == 200, result.text
    shown = whole.json()["output"]
    assert shown["$undecodable"]["text"] == "NaN"
    assert result.json()["output"] == shown
    assert json.loads(dapr.json()["properties"]["dapr.workflow.output"]) == shown
