"""Numbered migrations: a database made by an older schema upgrades in place, data intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from durably.storage.sqlite import SqliteStore
from durably.storage.sqlite_schema import MIGRATIONS


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
