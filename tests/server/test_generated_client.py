"""A client generated from the served ``/openapi.json`` by openapi-python-client works against a
real ``durably server`` process and worker: it starts, lists, reads and sends events to
workflows, and parses every answer into its typed models (so the document, generated from the
server's pydantic models, matches what the server sends)."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import durably

from .conftest import Server

GENERATOR = shutil.which("openapi-python-client") or str(
    Path(sys.executable).with_name("openapi-python-client")
)


@pytest.fixture
def generated(server: Server, tmp_path: Path) -> Iterator[ModuleType]:
    """The package openapi-python-client generates from the server's /openapi.json."""
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(server.http.get("/openapi.json").json()))
    out = tmp_path / "durably_api"
    command = ["generate", "--path", str(document), "--output-path", str(out), "--meta", "none"]
    proc = subprocess.run(
        [GENERATOR, *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and (out / "api").is_dir(), proc.stdout + proc.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("durably_api")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == "durably_api" or n.startswith("durably_api.")]:
            del sys.modules[name]


def _api(package: ModuleType, operation: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.default.{operation}")


def test_a_generated_client_starts_lists_reads_and_sends_events(
    generated: ModuleType, server: Server, worker: durably.App
) -> None:
    with generated.Client(base_url=server.url, raise_on_unexpected_status=True) as client:
        _exercise(generated, client, server)


def _exercise(generated: ModuleType, client: Any, server: Server) -> None:
    models = importlib.import_module("durably_api.models")

    started = _api(generated, "start_a_workflow").sync(
        client=client, body=models.StartRequest(name="steps", args=[5], id="gen-steps")
    )
    assert isinstance(started, models.Workflow)
    assert started.id == "gen-steps" and started.name == "steps"

    result = _api(generated, "get_a_workflow_s_result").sync("gen-steps", client=client, wait=30)
    assert isinstance(result, models.Result)
    assert result.done is True and result.output == 20
    assert result.status == models.WorkflowStatus.COMPLETED

    detail = _api(generated, "get_a_workflow").sync("gen-steps", client=client)
    assert isinstance(detail, models.Workflow)
    assert detail.status == models.WorkflowStatus.COMPLETED and detail.output == 20
    assert detail.finished_at is not None and detail.created_at_epoch > 0
    assert detail.input_ is not None
    assert detail.input_ == server.http.get("/v1/workflows/gen-steps").json()["input"]

    history = _api(generated, "get_a_workflow_s_history").sync("gen-steps", client=client)
    assert [(e.name, e.result) for e in history.entries] == [("double", 10), ("double", 20)]

    page = _api(generated, "list_workflows").sync(client=client, name="steps", limit=1000)
    assert isinstance(page, models.WorkflowList)
    listed = {w.id: w for w in page.workflows}
    assert listed["gen-steps"].summary is True
    assert listed["gen-steps"].status == models.WorkflowStatus.COMPLETED

    # an event wakes a waiting workflow: its data is the result
    _api(generated, "start_a_workflow").sync(
        client=client, body=models.StartRequest(name="waiter", id="gen-waiter")
    )
    # suspended while both are sent, so that it cannot finish in between (a duplicate sent to a
    # finished workflow is a 409, not delivered=False)
    assert server.http.post("/v1/workflows/gen-waiter/suspend").status_code == 202
    send = _api(generated, "send_an_event")
    event = models.EventRequest.from_dict({"data": {"ok": [1, 2]}, "dedup_key": "k1"})
    first = send.sync("gen-waiter", "go", client=client, body=event)
    again = send.sync("gen-waiter", "go", client=client, body=event)
    assert isinstance(first, models.Delivered) and first.delivered is True
    assert isinstance(again, models.Delivered)
    assert again.delivered is False  # the same dedup key: a duplicate
    assert server.http.post("/v1/workflows/gen-waiter/resume").status_code == 202
    waited = _api(generated, "get_a_workflow_s_result").sync("gen-waiter", client=client, wait=30)
    assert waited.done is True and waited.output == {"ok": [1, 2]}

    # an error answer parses into the document's Error model
    missing = _api(generated, "get_a_workflow").sync("no-such-workflow", client=client)
    assert isinstance(missing, models.Error) and missing.error.code == "not_found"
