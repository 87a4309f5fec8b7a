"""The ``store`` fixture of the contract suite: an empty, migrated store on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from durably.storage.base import Store
from durably.storage.sqlite import SqliteStore

from ..backends import BACKENDS, PG_URL, postgres_schema  # DURABLY_TEST_BACKENDS


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    s: Store
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "contract.db")
        s.migrate()
        yield s
        s.close()
        return
    from durably.storage.postgres import PostgresStore

    with postgres_schema() as schema:
        s = PostgresStore(PG_URL, schema=schema)
        try:
            s.migrate()
            yield s
        finally:
            s.close()
