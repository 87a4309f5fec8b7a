"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

import durably

from ..backends import BACKENDS, PG_URL, require_postgres
from . import crash_app, long_app, queue_app, scale_app
from .support import Database, Workers


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The test's database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards.

    The backends come from DURABLY_TEST_BACKENDS (tests/backends.py). The PostgreSQL variant
    fails when the server is unreachable, unless DURABLY_SKIP_POSTGRES=1 asks to skip it.
    """
    if request.param == "sqlite":
        yield Database.sqlite(tmp_path / "durably.db")
        return
    require_postgres()
    import psycopg

    schema = f"t_{uuid.uuid4().hex}"
    db = Database.postgres(PG_URL, schema)
    try:
        yield db
    finally:
        db.close()
        try:
            with psycopg.connect(PG_URL, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        except psycopg.OperationalError:
            setup = getattr(request.node, "rep_setup", None)
            if setup is not None and setup.passed:  # else keep the setup's error, not this one
                raise


def _pool(
    tmp_path: Path,
    database: Database,
    request: pytest.FixtureRequest,
    script: Path,
    tail: int = 60,
) -> Iterator[Workers]:
    pool = Workers(tmp_path, database, script)
    try:
        yield pool
    finally:
        pool.cleanup()
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            print(pool.report(tail=tail))


@pytest.fixture
def workers(
    tmp_path: Path, database: Database, request: pytest.FixtureRequest
) -> Iterator[Workers]:
    """Worker processes (crash_app.py) of the test, on each backend in turn; all reaped
    afterwards, their stderr printed on failure."""
    yield from _pool(tmp_path, database, request, Path(crash_app.__file__).resolve())


@pytest.fixture
def long_workers(
    tmp_path: Path, database: Database, request: pytest.FixtureRequest
) -> Iterator[Workers]:
    """Worker processes running long_app.py (timers, events, children, cancellation), on each
    backend in turn."""
    yield from _pool(tmp_path, database, request, Path(long_app.__file__).resolve())


@pytest.fixture
def client(workers: Workers) -> Iterator[durably.App]:
    """A client App on the workers' database: it starts and inspects, and runs no worker."""
    app = crash_app.make_app(workers.db.url, str(workers.log))
    app.store.migrate()  # the schema exists before any worker starts
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def queue_workers(
    tmp_path: Path, database: Database, request: pytest.FixtureRequest
) -> Iterator[Workers]:
    """Worker processes running queue_app.py (queues with limits), on each backend in turn."""
    yield from _pool(tmp_path, database, request, Path(queue_app.__file__).resolve())


@pytest.fixture
def scale_workers(
    tmp_path: Path, database: Database, request: pytest.FixtureRequest
) -> Iterator[Workers]:
    """Worker processes running scale_app.py (the 4-worker chaos test), on each backend."""
    yield from _pool(tmp_path, database, request, Path(scale_app.__file__).resolve(), tail=25)
