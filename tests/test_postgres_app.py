"""The same App, pointed at PostgreSQL: steps, replay, timers, events, children and cancel.

Each test uses its own schema. Without a reachable server these tests fail, unless
DURABLY_SKIP_POSTGRES=1 says to skip them; they are skipped when DURABLY_TEST_BACKENDS excludes
postgres.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import durably
from durably import WorkflowStatus

from .backends import postgres_schema, schema_url

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02, eviction_threshold=0.1)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema's URL; skipped when DURABLY_TEST_BACKENDS excludes postgres."""
    with postgres_schema() as schema:
        yield schema_url(schema)


def test_workflows_run_and_replay_on_postgres(pg_url: str) -> None:
    calls: list[str] = []
    lock = threading.Lock()

    def build() -> tuple[durably.App, Any]:
        app = durably.App(pg_url, worker_options=FAST)

        @app.step()
        async def add(a: int, b: int) -> int:
            with lock:
                calls.append(f"add {a}")
            return a + b

        @app.step()
        def slow(x: int) -> int:
            with lock:
                calls.append(f"slow {x}")
            time.sleep(0.3)
            return x * 2

        @app.workflow()
        async def chain(x: int) -> int:
            a = await add(x, 1)
            b = await durably.run(slow, a)
            return await add(b, 0)

        return app, chain

    first, chain = build()
    with first:
        h = first.start(chain, 4, id="pg-chain")
        deadline = time.monotonic() + 10
        while not any(c.startswith("slow") for c in calls) and time.monotonic() < deadline:
            time.sleep(0.01)
    first.close()  # stopped mid-step: released
    second, chain2 = build()
    with second:
        assert second.handle("pg-chain").result(timeout=20) == 10
        again = second.start(chain2, 99, id="pg-chain")  # idempotent
        assert again.result(timeout=5) == 10
    assert calls.count("add 4") == 1  # recorded before the stop: never re-run
    assert [e.name for e in h.history()] == ["add", "slow", "add"]
    second.close()


def test_timers_events_children_and_cancel_on_postgres(pg_url: str) -> None:
    app = durably.App(pg_url, worker_options=FAST)

    @app.step()
    async def note(what: str) -> str:
        return what

    @app.workflow()
    async def kid(n: int) -> int:
        await durably.sleep(0.2)
        return n * 10

    @app.workflow()
    async def parent(n: int) -> dict[str, Any]:
        durably.set_state("phase", "waiting")
        approved = await durably.wait_event("approve", timeout=timedelta(seconds=20))
        child = await kid(n)
        durably.set_state("phase", "done")
        return {"approved": approved, "child": child}

    @app.workflow()
    async def doomed() -> None:
        try:
            await durably.sleep(timedelta(days=1))
        except durably.Cancelled:
            await note("undo")
            raise

    with app:
        h = app.start(parent, 3, id="pg-parent")
        d = app.start(doomed, id="pg-doomed")
        assert app.send_event("pg-parent", "approve", {"by": "ada"}, dedup_key="a1")
        assert not app.send_event("pg-parent", "approve", "dup", dedup_key="a1")
        assert h.result(timeout=20) == {"approved": {"by": "ada"}, "child": 30}
        deadline = time.monotonic() + 10
        while d.info().wake_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
        app.cancel("pg-doomed")
        with pytest.raises(durably.WorkflowFailedError):
            d.result(timeout=20)
    assert h.state("phase") == "done"
    assert [c.id for c in h.children()] == ["pg-parent:2"]
    assert d.status() is WorkflowStatus.CANCELLED
    assert [e.name for e in d.history()] == ["sleep", "note"]
    app.close()


def test_many_workflows_complete_on_postgres(pg_url: str) -> None:
    app = durably.App(pg_url, worker_options=FAST)

    @app.step()
    async def inc(x: int) -> int:
        return x + 1

    @app.workflow()
    async def three(x: int) -> int:
        return await inc(await inc(await inc(x)))

    with app:
        handles = [app.start(three, i) for i in range(200)]
        assert [h.result(timeout=60) for h in handles] == [i + 3 for i in range(200)]
    assert len(app.list_workflows(status="completed", limit=500)) == 200
    app.close()


def test_synchronous_commit_off_is_an_opt_in_per_url(pg_url: str) -> None:
    from durably.storage import open_store

    full = open_store(pg_url)
    relaxed = open_store(pg_url + "&synchronous_commit=off")
    try:
        with full._read() as conn:  # type: ignore[attr-defined]
            assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"
        with relaxed._read() as conn:  # type: ignore[attr-defined]
            assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "off"
            assert (
                conn.execute("SHOW search_path").fetchone()[0].strip('"')
                == (pg_url.rsplit("schema=", 1)[1])
            )
        relaxed.migrate()
        app = durably.App(pg_url + "&synchronous_commit=off", worker_options=FAST)

        @app.workflow()
        async def hello(x: int) -> int:
            return x + 1

        with app:
            assert app.start(hello, 41).result(timeout=30) == 42
        app.close()
    finally:
        full.close()
        relaxed.close()
    with pytest.raises(durably.ConfigurationError, match="synchronous_commit must be 'on' or"):
        open_store(pg_url + "&synchronous_commit=maybe")
