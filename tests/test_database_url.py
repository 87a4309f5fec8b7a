"""SQLite database URLs and bare paths: options after ``?`` are applied or refused, never part
of the file name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import durably
from durably.storage import open_store, sqlite_path
from durably.storage.sqlite import SqliteStore


def _synchronous(store: SqliteStore) -> int:
    row = store._writer.execute("PRAGMA synchronous").fetchone()
    return int(row[0])


@pytest.mark.parametrize("form", ["bare", "url"])
def test_options_of_a_bare_path_are_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    monkeypatch.chdir(tmp_path)
    url = "p4.db?synchronous=normal" if form == "bare" else "sqlite:///p4.db?synchronous=normal"
    assert sqlite_path(url) == "p4.db"
    store = open_store(url)
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == "p4.db"
        assert _synchronous(store) == 1  # NORMAL (FULL is 2)
    finally:
        store.close()
    assert (tmp_path / "p4.db").exists()
    assert not any("?" in p.name for p in tmp_path.iterdir())
    default = open_store("p5.db")
    try:
        assert isinstance(default, SqliteStore) and _synchronous(default) == 2
    finally:
        default.close()


@pytest.mark.parametrize(
    "url", ["p6.db?journal=off", "p6.db?synchronous", "p6.db?synchronous=", "p6.db?synchronous=off"]
)
def test_unknown_or_bad_options_are_refused_and_create_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(durably.ConfigurationError) as info:
        _ = durably.App(url).store
    message = str(info.value)
    assert "synchronous" in message and ("full" in message or "normal" in message)
    if "journal" in url:
        assert "unknown option(s) journal" in message
    assert list(tmp_path.iterdir()) == []


def test_cli_migrate_applies_the_options_of_a_bare_path(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DURABLY_DB"}
    done = subprocess.run(
        [sys.executable, "-m", "durably.cli", "migrate", "--db", "p7.db?synchronous=normal"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p7.db").exists()
    assert not any("?" in p.name for p in tmp_path.iterdir())
    refused = subprocess.run(
        [sys.executable, "-m", "durably.cli", "migrate", "--db", "p8.db?fsync=0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "fsync" in refused.stderr and "synchronous=full|normal" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "p8.db").exists()
