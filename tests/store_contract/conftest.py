"""The fixtures of the contract suite: an empty, migrated store on each selected backend, and
a way to open more stores on the same database (as other processes would)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durably.storage.base import Store
from durably.storage.sqlite import SqliteStore

from ..backends import BACKENDS, PG_URL, postgres_schema  # DURABLY_TEST_BACKENDS

Opener = Callable[[], Store]


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a new store on this test's database (a SQLite file in tmp_path, or a fresh
    PostgreSQL schema); every store it opened is closed afterwards."""
    opened: list[Store] = []
    if request.param == "sqlite":

        def sqlite() -> Store:
            opened.append(SqliteStore(tmp_path / "contract.db"))
            return opened[-1]

        yield sqlite
        for s in opened:
            s.close()
        return
    from durably.storage.postgres import PostgresStore

    with postgres_schema() as schema:

        def postgres() -> Store:
            opened.append(PostgresStore(PG_URL, schema=schema))
            return opened[-1]

        try:
            yield postgres
        finally:
            for s in opened:
                s.close()


@pytest.fixture
def store(open_store: Opener) -> Store:
    """A migrated store on this test's database."""
    s = open_store()
    s.migrate()
    return s
