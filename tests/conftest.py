"""Fixtures shared by every test: ``db_url``, the database of a test on each selected backend.

The backends come from DURABLY_TEST_BACKENDS (see tests/backends.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .backends import BACKENDS, BACKENDS_ERROR, postgres_schema, require_postgres, schema_url
from .pg_cluster import Cluster, pg_bin


def pytest_configure(config: pytest.Config) -> None:
    if BACKENDS_ERROR is not None:
        raise pytest.UsageError(BACKENDS_ERROR)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database for this test: a SQLite file in tmp_path, or a fresh
    PostgreSQL schema ``t_<uuid hex>`` dropped afterwards (fails when the server is unreachable,
    unless DURABLY_SKIP_POSTGRES=1, which skips)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/app.db"
        return
    with postgres_schema() as schema:
        yield schema_url(schema)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster, started (fails when the server binaries are missing)."""
    require_postgres()
    bindir = pg_bin()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed: install the "
            "postgresql package, or set DURABLY_TEST_BACKENDS=sqlite to leave PostgreSQL out"
        )
    c = Cluster(bindir)
    try:
        c.init()
        c.start()
        yield c
    finally:
        c.destroy()
