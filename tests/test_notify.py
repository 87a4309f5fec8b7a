"""Wake-ups without polling delay: PostgreSQL LISTEN/NOTIFY for new work, events and commands,
and the worker's own timer for due timers (SQLite too).

Workers here poll only every 5 s, so anything that happens well within that proves a push or
a scheduled wake-up. The bounds are generous: functional checks, not benchmarks. Each
PostgreSQL test uses its own schema; without a reachable server they fail, unless
DURABLY_SKIP_POSTGRES=1 says to skip them; they are skipped when DURABLY_TEST_BACKENDS excludes
postgres.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import durably
from durably.storage.base import WorkflowRecord, WorkflowStatus
from durably.storage.postgres import PostgresStore

from .backends import PG_URL, postgres_schema, schema_url

SLOW_POLL = 5.0


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema's URL; skipped when DURABLY_TEST_BACKENDS excludes postgres."""
    with postgres_schema() as schema:
        yield schema_url(schema)


def build(url: str, *, eviction_threshold: float = 5.0) -> tuple[durably.App, dict[str, Any]]:
    """An app with the test workflows; its worker (if started) polls only every 5 s."""
    opts = durably.WorkerOptions(
        lease_seconds=2.0, poll_interval=SLOW_POLL, eviction_threshold=eviction_threshold
    )
    app = durably.App(url, worker_options=opts)

    @app.step()
    async def clock() -> float:
        return time.time()

    @app.workflow()
    async def hello(name: str) -> str:
        return f"hello {name}"

    @app.workflow()
    async def approval() -> Any:
        durably.set_state("phase", "waiting")
        return await durably.wait_event("approve")

    @app.workflow()
    async def nap(seconds: float) -> float:
        before = await clock()
        await durably.sleep(seconds)
        after = await clock()
        return after - before

    return app, {"hello": hello, "approval": approval, "nap": nap}


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def parked(app: durably.App, workflow_id: str) -> bool:
    rec = app.store.get_workflow(workflow_id)
    return rec is not None and rec.wake_at is not None and rec.owner is None


def test_worker_listens_on_postgres(pg_url: str) -> None:
    app, _ = build(pg_url)
    with app:
        worker = app._worker
        assert worker is not None and worker.listening
        assert worker.poll_interval == SLOW_POLL
    app.close()


def test_new_work_from_another_app_starts_at_once(pg_url: str) -> None:
    server, _ = build(pg_url)
    client, wfs = build(pg_url)
    with server:
        time.sleep(0.5)  # the worker's first claim pass is over: it now waits on its poll
        for i in range(3):
            t0 = time.monotonic()
            h = client.start(wfs["hello"], f"n{i}")
            assert h.result(timeout=10) == f"hello n{i}"
            assert time.monotonic() - t0 < 2.0  # well under the 5 s poll
            time.sleep(0.3)
    server.close()
    client.close()


@pytest.mark.parametrize("eviction_threshold", [5.0, 0.0], ids=["in-memory", "parked"])
def test_event_from_another_app_wakes_the_workflow(pg_url: str, eviction_threshold: float) -> None:
    server, _ = build(pg_url, eviction_threshold=eviction_threshold)
    client, wfs = build(pg_url)
    with server:
        h = client.start(wfs["approval"])
        wait_until(lambda: h.state("phase") == "waiting")
        if eviction_threshold == 0:
            wait_until(lambda: parked(client, h.id))
        time.sleep(0.5)  # waiting: in the worker's memory, or parked in the database
        t0 = time.monotonic()
        assert client.send_event(h.id, "approve", {"by": "ada"})
        assert h.result(timeout=10) == {"by": "ada"}
        assert time.monotonic() - t0 < 2.0
    server.close()
    client.close()


def test_cancel_from_another_app_reaches_a_parked_workflow(pg_url: str) -> None:
    server, _ = build(pg_url, eviction_threshold=0.0)
    client, wfs = build(pg_url)
    with server:
        h = client.start(wfs["approval"])
        wait_until(lambda: parked(client, h.id))
        time.sleep(0.3)
        t0 = time.monotonic()
        client.cancel(h.id)
        with pytest.raises(durably.WorkflowFailedError):
            h.result(timeout=10)
        assert time.monotonic() - t0 < 2.0
        assert h.status() is WorkflowStatus.CANCELLED
    server.close()
    client.close()


def test_parked_timer_wakes_on_time_on_postgres(pg_url: str) -> None:
    server, _ = build(pg_url, eviction_threshold=0.0)
    client, wfs = build(pg_url)
    with server:
        time.sleep(0.3)
        h = client.start(wfs["nap"], 1.0)
        slept = h.result(timeout=10)
        assert 1.0 <= slept < 1.5  # woken by its own timer, not by the 5 s poll
        assert h.history()[1].name == "sleep"
    server.close()
    client.close()


def test_parked_timer_wakes_on_time_on_sqlite(tmp_path: Path) -> None:
    app, wfs = build(f"sqlite:///{tmp_path / 'db.sqlite'}", eviction_threshold=0.0)
    with app:
        worker = app._worker
        assert worker is not None and not worker.listening
        h = app.start(wfs["nap"], 1.0)
        assert 1.0 <= h.result(timeout=10) < 1.5
    app.close()


def test_listener_reconnects_after_its_backend_is_terminated(pg_url: str) -> None:
    import psycopg

    store = PostgresStore(pg_url)
    store.migrate()
    kinds: list[str] = []
    cond = threading.Condition()

    def woken(kind: str) -> None:
        with cond:
            kinds.append(kind)
            cond.notify_all()

    def expect(kind: str, timeout: float = 10.0) -> None:
        with cond:
            assert cond.wait_for(lambda: kind in kinds, timeout), f"no {kind!r} in {kinds}"
            kinds.clear()

    def create(wid: str) -> None:
        now = time.time()
        store.create_workflow(WorkflowRecord(wid, "hello", WorkflowStatus.PENDING, "[]", now, now))

    listener = store.listen(woken)
    try:
        first_pid = listener.backend_pid
        assert first_pid is not None
        create("w1")
        expect("new")
        url = PG_URL
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_terminate_backend(%s)", (first_pid,)).fetchone()
            assert row is not None and row[0] is True
        expect("reconnect")
        assert listener.reconnects >= 1
        assert listener.backend_pid not in (None, first_pid)
        create("w2")
        expect("new")
        # wake-ups of the same database in another schema are not ours
        other = PostgresStore(PG_URL, schema=f"t_{uuid.uuid4().hex[:12]}")
        try:
            other.migrate()
            now = time.time()
            other.create_workflow(
                WorkflowRecord("x", "hello", WorkflowStatus.PENDING, "[]", now, now)
            )
            time.sleep(0.5)
            with cond:
                assert kinds == []
        finally:
            assert other.schema is not None
            other.close()
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{other.schema}" CASCADE')
    finally:
        listener()
        store.close()
    assert listener.backend_pid is None


def test_sqlite_store_does_not_listen(tmp_path: Path) -> None:
    app, _ = build(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert app.store.listen(lambda kind: None) is None
    app.close()
