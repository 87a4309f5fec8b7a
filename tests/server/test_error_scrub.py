"""A driver's error text that reaches a 503 answer or the server's log carries no secret of the
server's database URL."""

from __future__ import annotations

import json
import logging

import psycopg
import pytest

from durably.errors import DatabaseUnavailableError
from durably.server.errors import from_exception

SECRET = "planted-503-s3cret"
URL = f"postgresql://app:{SECRET}@db.internal:5432/prod?sslpassword={SECRET}x"


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError(f"connection to {URL} failed: password {SECRET} refused"),
        DatabaseUnavailableError(f"cannot reach {URL}: password {SECRET}"),
    ],
)
def test_unavailable_answers_and_logs_scrub_the_database_url(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        error = from_exception(exc, URL)
        response = error.response()
    assert response.status_code == 503
    body = bytes(response.body).decode()
    assert SECRET not in body and SECRET not in caplog.text
    assert "***" in json.loads(body)["error"]["message"]
