"""The server while its PostgreSQL server is down, and after it is back: 503 ``unavailable``
with ``Retry-After`` (never a 4xx or 500, nothing half-written), then normal answers again
within seconds, however long the outage lasted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from durably.storage.postgres import RECONNECT_SECONDS

from ..pg_cluster import Cluster
from .conftest import start_server


@pytest.fixture
def served(cluster: Cluster) -> Iterator[tuple[Cluster, str]]:
    server = start_server(cluster.url)
    try:
        yield cluster, server.url
    finally:
        server.stop()


def test_503_while_postgres_is_down_and_back_after_it_restarts(
    served: tuple[Cluster, str],
) -> None:
    import httpx

    cluster, url = served
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.get("/readyz").status_code == 200
        assert http.get("/v1/workflows").json() == {"workflows": [], "next_cursor": None}
        cluster.stop()
        down_since = time.monotonic()
        for path in ("/readyz", "/v1/workflows/some-id"):  # each waits connect_timeout (10 s)
            r = http.get(path)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "unavailable"
            assert "retry later" in r.json()["error"]["message"]
            assert r.headers["retry-after"] == "1"
        # the pool's reconnection attempts gave up by now: it must start over on demand
        assert time.monotonic() - down_since > RECONNECT_SECONDS
        cluster.start()
        back = time.monotonic()
        while http.get("/readyz").status_code != 200:
            assert time.monotonic() - back < 15, "the server did not notice PostgreSQL is back"
            time.sleep(0.1)
        assert http.get("/v1/workflows").status_code == 200
