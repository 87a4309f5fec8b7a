"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis): for
generated requests, no 500s, and every answer conforms to the document (status code, content
type, headers and body schema). Bounded: a few examples per operation, SQLite only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

import durably
from durably.server.openapi import EXAMPLE_ID, openapi

from .conftest import FAST, TOKEN, Server, register, start_server

schema = schemathesis.openapi.from_dict(openapi())
# valid requests and invalid ones (wrong types, missing fields, out-of-range values...)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    with_security_parameters=False,
)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a token on a fresh SQLite database with a worker, and a finished workflow
    under the document's example id (so the example requests get real answers)."""
    db = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    worker = durably.App(db, worker_options=FAST)
    register(worker)
    worker.start_worker()
    worker.start("steps", 2, id=EXAMPLE_ID).result(timeout=30)
    s = start_server(db, TOKEN)
    yield s
    s.stop()
    worker.close()


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case, fuzzed: Server) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    case.call_and_validate(base_url=fuzzed.url, checks=CHECKS, timeout=30)
