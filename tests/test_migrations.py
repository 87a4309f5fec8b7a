"""Numbered migrations: a database made by an older schema upgrades in place, data intact."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from durably.storage.sqlite import SqliteStore
from durably.storage.sqlite_schema import MIGRATIONS
from tests.backends import PG_URL, postgres_schema


def test_a_version_2_database_upgrades_with_its_journal_keys_backfilled(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE durably_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    for version in (1, 2):
        for statement in MIGRATIONS[version].split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO durably_migrations VALUES (?, 0)", (version,))
    conn.execute(
        "INSERT INTO workflows (id, name, status, input, created_at, updated_at) "
        "VALUES ('w', 'n', 'running', '{}', 1, 1)"
    )
    conn.execute(
        "INSERT INTO journal (workflow_id, seq, kind, name, status, result, error, attempts, "
        "owner, epoch, started_at, finished_at) VALUES ('w', 4, 'step', 's', 'completed', '1', "
        "NULL, 1, 'o', 1, 1, 1)"
    )
    conn.close()

    store = SqliteStore(path)
    store.migrate()
    store.migrate()  # idempotent
    assert store.schema_version() == max(MIGRATIONS)
    (entry,) = store.get_journal("w")
    assert (entry.seq, entry.key, entry.result) == (4, "4", "1")
    rec = store.get_workflow("w")
    assert rec is not None and rec.cancel_key is None and rec.run == 1
    store.close()


def test_postgres_migrate_twice_is_idempotent() -> None:
    from durably.storage.postgres import PostgresStore
    from durably.storage.postgres_schema import MIGRATIONS as PG_MIGRATIONS

    assert sorted(PG_MIGRATIONS) == sorted(MIGRATIONS)  # the backends stay version for version
    with postgres_schema() as schema:
        store = PostgresStore(f"{PG_URL}?schema={schema}")  # the schema may come in the URL
        try:
            store.migrate()
            store.migrate()
            assert store.schema_version() == max(PG_MIGRATIONS)
            assert store.list_workflows() == []
        finally:
            store.close()


def test_postgres_concurrent_migrate_is_safe() -> None:
    from durably.storage.postgres import PostgresStore
    from durably.storage.postgres_schema import MIGRATIONS as PG_MIGRATIONS

    with postgres_schema() as schema:
        stores = [PostgresStore(PG_URL, schema=schema) for _ in range(2)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(stores))

        def migrate(store: PostgresStore) -> None:
            try:
                barrier.wait()
                store.migrate()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert errors == []
            for store in stores:
                assert store.schema_version() == max(PG_MIGRATIONS)
        finally:
            for store in stores:
                store.close()


def test_an_unreachable_postgres_server_is_a_configuration_error() -> None:
    from durably.errors import ConfigurationError
    from durably.storage import open_store

    with pytest.raises(ConfigurationError, match=r"127\.0\.0\.1:1/nodb"):
        open_store("postgresql://postgres@127.0.0.1:1/nodb?connect_timeout=2")


def test_a_database_from_before_retention_gets_its_finished_index_and_purges(
    tmp_path: Path,
) -> None:
    from durably.storage.base import WorkflowSelection

    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE durably_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    for version in sorted(v for v in MIGRATIONS if v < 7):
        for statement in MIGRATIONS[version].split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO durably_migrations VALUES (?, 0)", (version,))
    conn.execute(
        "INSERT INTO workflows (id, name, status, input, created_at, updated_at, finished_at) "
        "VALUES ('old', 'n', 'completed', '{}', 1, 1, 2)"
    )
    conn.close()
    store = SqliteStore(path)
    store.migrate()
    indexes = {row[0] for row in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'")}  # fmt: skip
    assert "workflows_finished" in indexes
    # the retention read names that index (INDEXED BY): it fails on a database without it
    assert store.expired_workflows(WorkflowSelection(), after=None, limit=5) == [(2.0, "old")]
    assert store.purge_workflows(["old"]) == ["old"]
    store.close()
