"""One set of JSON forms: the CLI's ``--json`` shows a workflow, its history and the workers with
the same fields as the HTTP API (both come from :mod:`durably.jsonforms`)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import durably

from .conftest import Server, server_env


def _cli_json(database: str, *argv: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "durably.cli", *argv, "--db", database, "--json"],
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cli_json_and_server_json_have_the_same_fields(
    server: Server, worker: durably.App, database: str
) -> None:
    started = server.http.post("/v1/workflows", json={"name": "steps", "args": [3]})
    assert started.status_code == 202, started.text
    wid = started.json()["id"]
    result = server.http.get(f"/v1/workflows/{wid}/result", params={"wait": 30}).json()
    assert result["done"] and result["output"] == 12

    full = server.http.get(f"/v1/workflows/{wid}").json()
    listed = next(
        w
        for w in server.http.get("/v1/workflows", params={"name": "steps"}).json()["workflows"]
        if w["id"] == wid
    )
    history = server.http.get(f"/v1/workflows/{wid}/history").json()["entries"]
    workers = server.http.get("/v1/workers").json()["workers"]

    shown = _cli_json(database, "show", wid)
    cli_listed = next(w for w in _cli_json(database, "ls", "--name", "steps") if w["id"] == wid)
    cli_workers = _cli_json(database, "workers")

    assert set(shown["workflow"]) == set(full)
    assert "created_at_epoch" in shown["workflow"]  # render.workflow_json once lacked it
    assert shown["workflow"]["created_at_epoch"] == full["created_at_epoch"]
    assert {k: v for k, v in shown["workflow"].items() if k != "unserved"} == {
        k: v for k, v in full.items() if k != "unserved"
    }
    assert set(cli_listed) == set(listed) and cli_listed["summary"] is True
    assert [set(e) for e in shown["history"]] == [set(e) for e in history]
    assert [e["result"] for e in shown["history"]] == [e["result"] for e in history] == [6, 12]
    assert cli_workers and workers and set(cli_workers[0]) == set(workers[0])
