"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

import durably

from . import crash_app, long_app
from .support import Workers


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _pool(tmp_path: Path, request: pytest.FixtureRequest, script: Path) -> Iterator[Workers]:
    pool = Workers(tmp_path, script)
    try:
        yield pool
    finally:
        pool.cleanup()
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            print(pool.report())


@pytest.fixture
def workers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    """Worker processes (crash_app.py) of the test; all reaped afterwards, their stderr printed
    on failure."""
    yield from _pool(tmp_path, request, Path(crash_app.__file__).resolve())


@pytest.fixture
def long_workers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    """Worker processes running long_app.py (timers, events, children, cancellation)."""
    yield from _pool(tmp_path, request, Path(long_app.__file__).resolve())


@pytest.fixture
def client(workers: Workers) -> Iterator[durably.App]:
    """A client App on the workers' database: it starts and inspects, and runs no worker."""
    app = crash_app.make_app(str(workers.db), str(workers.log))
    app.store.migrate()  # the schema exists before any worker starts
    try:
        yield app
    finally:
        app.close()
