"""The pydantic models the OpenAPI document is generated from describe the JSON forms
``durably.jsonforms`` makes, and validate request bodies with durably's own messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

import durably
from durably import jsonforms
from durably.server import models
from durably.server.errors import ApiError
from durably.server.inputs import model_body
from durably.server.openapi import openapi


def test_the_forms_validate_against_the_response_models(tmp_path: Path) -> None:
    app = durably.App(f"sqlite:///{tmp_path / 'forms.db'}")

    @app.step(name="double")
    def double(x: int) -> int:
        return 2 * x

    @app.workflow(name="twice")
    async def twice(x: int) -> int:
        return await durably.run(double, await durably.run(double, x))

    app.start_worker()
    try:
        handle = app.start(twice, 3)
        assert handle.result(timeout=30) == 12
        full = jsonforms.workflow_json(handle.info())
        listed = [jsonforms.workflow_json(w) for w in app.list_workflows()]
        history = [jsonforms.history_json(e) for e in handle.history()]
        workers = [jsonforms.worker_json(w) for w in app.list_workers()]
    finally:
        app.close()
    assert models.Workflow.model_validate(full).output == 12
    assert set(full) == set(models.Workflow.model_fields)
    for summary in listed:
        assert set(summary) == set(models.WorkflowSummary.model_fields)
        models.WorkflowSummary.model_validate(summary)
    assert [models.HistoryEntry.model_validate(e).result for e in history] == [6, 12]
    assert workers and all(models.Worker.model_validate(w).pid > 0 for w in workers)
    # and back: the remote client's reading of the form gives the same workflow
    assert jsonforms.workflow_json(jsonforms.workflow_info(full)) == full


def test_the_document_schemas_are_the_models() -> None:
    schemas = openapi()["components"]["schemas"]
    for model in (models.StartRequest, models.EventRequest, *models.RESPONSE_MODELS):
        assert set(schemas[model.__name__]["properties"]) == set(model.model_fields)
    start = schemas["StartRequest"]
    assert start["additionalProperties"] is False and start["required"] == ["name"]
    assert start["properties"]["id"]["nullable"] is True


@pytest.mark.parametrize(
    ("model", "body", "words"),
    [
        (models.StartRequest, {}, "the body needs the field 'name'"),
        (models.StartRequest, {"name": 3}, "field 'name' must be a string, got an integer"),
        (models.StartRequest, {"name": "a", "id": 7}, "'id' must be a string or null"),
        (models.StartRequest, {"name": "a", "priority": True}, "must be an integer, got true"),
        (models.StartRequest, {"name": "a", "id": "-x"}, "workflow id: "),
        (models.StartRequest, {"name": "a", "nmae": 1}, "unknown field(s) 'nmae'; allowed: name"),
        (models.ForkRequest, {"from_step": -1}, ">= 0"),
        (models.EventRequest, {"dedup_key": ""}, "dedup_key must be a non-empty string"),
    ],
)
def test_request_bodies_are_validated_by_their_models(
    model: type[BaseModel], body: dict[str, object], words: str
) -> None:
    with pytest.raises(ApiError) as caught:
        model_body(body, model)
    assert caught.value.code == "bad_request" and words in caught.value.message


def test_a_valid_body_gets_its_defaults() -> None:
    req = model_body({"name": "greet", "id": "a-1"}, models.StartRequest)
    assert (req.args, req.kwargs, req.id, req.queue, req.priority) == ([], {}, "a-1", None, 0)


def test_every_served_route_is_in_the_document_and_only_those(tmp_path: Path) -> None:
    from starlette.routing import Route

    from durably.server import create_app

    app = durably.App(f"sqlite:///{tmp_path / 'routes.db'}")
    try:
        served = {
            (route.path, method.lower())
            for route in create_app(app).routes
            if isinstance(route, Route)
            for method in route.methods or ()
            if method != "HEAD"
        }
    finally:
        app.close()
    documented = {(path, method) for path, ops in openapi()["paths"].items() for method in ops}
    assert served == documented
