"""Migration 6 (schedules): a version 5 database, with a row in its (then unused) schedules
table, upgrades in place; the row reads back with the new columns' defaults."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from durably.storage.sqlite import SqliteStore
from durably.storage.sqlite_schema import MIGRATIONS


def test_a_version_5_database_upgrades_to_schedules(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE durably_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    for version in range(1, 6):
        for statement in MIGRATIONS[version].split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO durably_migrations VALUES (?, 0)", (version,))
    conn.execute(
        "INSERT INTO schedules (id, workflow_name, spec, input, next_run_at, enabled, "
        "created_at, updated_at) VALUES ('old', 'w', '{\"every\": 60.0, \"timezone\": \"UTC\"}', "
        '\'{"args":[],"kwargs":{}}\', 120, 1, 1, 1)'
    )
    conn.close()
    store = SqliteStore(path)
    try:
        store.migrate()
        assert store.schema_version() == max(MIGRATIONS) >= 6
        rec = store.get_schedule("old")
        assert rec is not None
        assert (rec.overlap, rec.queue, rec.jitter, rec.missed, rec.revision) == (
            "skip", "default", 0, 0, 0,
        )  # fmt: skip
        assert rec.next_run_at == 120 == rec.due_at and not rec.paused
    finally:
        store.close()
