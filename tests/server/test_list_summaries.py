"""Lists carry summaries, not payloads: 40 workflows of about 1 MiB each (inputs, outputs and
errors) list in a response of a few kilobytes, through the store, the HTTP API (a real server
process), the remote Client and ``durably ls``; each workflow's own route still has it whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import durably
from durably.storage.base import PREVIEW_CHARS

from .conftest import FAST, Server, start_server

BIG = 1_000_000  # characters: the encoded input stays under the default 1 MiB payload limit
PENDING = 34
BOUND = 100_000  # bytes of a whole list of the 40


def _big(tag: str) -> str:
    return tag + "x" * (BIG - len(tag))


@pytest.fixture(scope="module")
def filled(database: str) -> Iterator[durably.App]:
    """40 workflows: 4 completed (1 MB input and output), 2 failed (1 MB error message) and 34
    pending (1 MB input each)."""
    app = durably.App(database, worker_options=FAST)

    @app.workflow(name="echo")
    async def echo(text: str) -> str:
        return text

    @app.workflow(name="boom")
    async def boom(text: str) -> None:
        raise ValueError(text)

    with app:
        done = [app.start(echo, _big(f"done{i}-"), id=f"done-{i}") for i in range(4)]
        failed = [app.start(boom, _big(f"boom{i}-"), id=f"boom-{i}") for i in range(2)]
        for h in done:
            h.result(timeout=60)
        for h in failed:
            with pytest.raises(durably.WorkflowFailedError):
                h.result(timeout=60)
    for i in range(PENDING):  # no worker now: they stay pending
        app.start(echo, _big(f"wait{i}-"), id=f"wait-{i}")
    yield app
    app.close()


@pytest.fixture(scope="module")
def listing(database: str, filled: durably.App) -> Iterator[Server]:
    s = start_server(database)
    yield s
    s.stop()


def _peak_rss(pid: int) -> int:
    """The peak resident memory of a process so far, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def _check_summary(item: dict[str, Any]) -> None:
    assert item["summary"] is True
    assert not {"input", "output", "error"} & set(item), sorted(item)
    for key in ("input_preview", "output_preview", "error_preview"):
        assert item[key] is None or len(item[key]) <= PREVIEW_CHARS
    assert item["input_preview"].startswith('{"args":') and item["input_preview"].endswith("…")


def test_store_lists_read_only_previews(filled: durably.App) -> None:
    records = filled.store.list_workflows(limit=1000)
    assert len(records) == 40
    for rec in records:
        for text in (rec.input, rec.output, rec.error):
            assert text is None or len(text) <= PREVIEW_CHARS + 1
    whole = filled.store.get_workflow("done-0")
    assert whole is not None and len(whole.input) > BIG and whole.output is not None
    assert len(whole.output) > BIG


def test_app_lists_summaries_and_details_stay_whole(filled: durably.App) -> None:
    infos = filled.list_workflows(limit=1000)
    assert len(infos) == 40 and all(i.summary for i in infos)
    assert all(i.input is None and i.output is None and i.error is None for i in infos)
    by_id = {i.id: i for i in infos}
    assert by_id["done-1"].output_preview is not None
    assert by_id["done-1"].output_preview.startswith('"done1-xx')
    assert (
        by_id["boom-0"].error_preview is not None and "ValueError" in by_id["boom-0"].error_preview
    )
    assert by_id["wait-3"].output_preview is None and by_id["wait-3"].error_preview is None
    detail = filled.handle("done-1").info()
    assert not detail.summary and detail.output == _big("done1-")
    assert detail.input == {"args": [_big("done1-")], "kwargs": {}}
    assert detail.input_preview == by_id["done-1"].input_preview


def test_http_list_is_bounded_and_the_server_does_not_balloon(listing: Server) -> None:
    http = listing.http
    assert http.get("/v1/workflows", params={"limit": 1}).status_code == 200  # warm up
    before = _peak_rss(listing.proc.pid)
    for _ in range(4):
        r = http.get("/v1/workflows", params={"limit": 1000})
        assert r.status_code == 200
        assert len(r.content) < BOUND, len(r.content)
    grown = _peak_rss(listing.proc.pid) - before
    assert grown < 64 * 2**20, f"the server's peak memory grew by {grown} bytes"
    body = r.json()
    assert len(body["workflows"]) == 40 and body["next_cursor"] is None
    for item in body["workflows"]:
        _check_summary(item)
    detail = http.get("/v1/workflows/done-2").json()
    assert detail["summary"] is False
    assert detail["input"] == {"args": [_big("done2-")], "kwargs": {}}
    assert detail["output"] == _big("done2-")
    failed = http.get("/v1/workflows/boom-1").json()
    assert failed["error"]["type"] == "ValueError" and failed["error"]["message"] == _big("boom1-")


def test_client_lists_summaries(listing: Server) -> None:
    with durably.Client(listing.url) as client:
        page = client.list_workflows(limit=1000)
        walked = list(client.iter_workflows(page_size=7))
        detail = client.handle("wait-5").info()
    assert [w.id for w in walked] == [w.id for w in page] and len(page) == 40
    assert all(w.summary and w.input is None and w.output is None for w in walked)
    assert all(w.input_preview and len(w.input_preview) <= PREVIEW_CHARS for w in walked)
    assert not detail.summary and detail.input == {"args": [_big("wait5-")], "kwargs": {}}


@pytest.mark.parametrize("where", ["server", "db"])
def test_cli_ls_json_is_bounded(listing: Server, database: str, where: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
    target = ["--server", listing.url] if where == "server" else ["--db", database]
    done = subprocess.run(
        [sys.executable, "-m", "durably.cli", "ls", "--json", "--limit", "1000", *target],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) < BOUND, len(done.stdout)
    listed = json.loads(done.stdout)
    assert len(listed) == 40
    for item in listed:
        _check_summary(item)
    shown = httpx.get(f"{listing.url}/v1/workflows/wait-0").json()
    assert shown["input"] == {"args": [_big("wait0-")], "kwargs": {}}
