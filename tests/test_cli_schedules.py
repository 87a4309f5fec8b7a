"""``durably schedules ...`` on a database: every action, --json, the exit codes of bad input
(nothing written) and of an unknown schedule, and no secret of the database URL in any output."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import durably
from durably.cli import main
from durably.storage.base import WorkerInfo

from .test_secret_leaks import assert_no_secret, pg_secret_url  # noqa: F401 (a fixture)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database where a live worker serves the workflow ``report``."""
    url = f"sqlite:///{tmp_path}/cli.db"
    app = durably.App(url)
    now = time.time()
    app.store.register_worker(
        WorkerInfo("w1", "host", os.getpid(), now, now, ["report"], ["default"])
    )
    app.close()
    return url


def test_every_action(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "schedules", "create", "nightly", "report", "--cron", "0 3 * * *",
        "--timezone", "Europe/Berlin", "--input", '["eu"]', "--note", "data team", "--db", db,
        "--json",
    )  # fmt: skip
    assert code == 0, err
    info = json.loads(out)
    assert info["name"] == "nightly" and info["cron"] == "0 3 * * *"
    assert info["next_run_at"].endswith("T03:00:00+01:00") and info["note"] == "data team"
    code, out, _ = run(capsys, "schedules", "ls", "--db", db)
    assert code == 0 and "nightly" in out and "0 3 * * *" in out and "active" in out
    code, out, _ = run(capsys, "schedules", "pause", "nightly", "--reason", "db move", "--db", db)
    assert code == 0 and "db move" in out
    code, out, _ = run(capsys, "schedules", "ls", "--json", "--db", db)
    (listed,) = json.loads(out)
    assert listed["paused"] and listed["pause_reason"] == "db move"
    code, out, _ = run(capsys, "schedules", "unpause", "nightly", "--json", "--db", db)
    assert code == 0 and json.loads(out)["paused"] is False
    code, out, _ = run(
        capsys, "schedules", "update", "nightly", "--every", "60", "--overlap", "allow_all",
        "--json", "--db", db,
    )  # fmt: skip
    updated = json.loads(out)
    assert code == 0 and updated["every"] == 60 and updated["cron"] is None
    assert updated["input"] == '{"args":["eu"],"kwargs":{}}'  # kept
    code, out, _ = run(capsys, "schedules", "trigger", "nightly", "--json", "--db", db)
    (triggered,) = json.loads(out)
    assert code == 0 and triggered["result"] == "started"
    assert triggered["workflow_id"].startswith("nightly@")
    backfill = ("schedules", "backfill", "nightly", "--from", "2026-01-01T00:00:00Z",
                "--to", "2026-01-01T00:02:00Z", "--json", "--db", db)  # fmt: skip
    code, out, _ = run(capsys, *backfill)
    first = json.loads(out)
    assert [t["result"] for t in first] == ["started"] * 3
    assert first[0]["workflow_id"] == "nightly@2026-01-01T01:00:00+01:00"
    code, out, _ = run(capsys, *backfill)
    assert [t["result"] for t in json.loads(out)] == ["exists"] * 3
    code, out, _ = run(capsys, "schedules", "show", "nightly", "--db", db)
    assert code == 0 and "allow_all" in out
    code, out, _ = run(capsys, "schedules", "delete", "nightly", "--db", db)
    assert code == 0 and "deleted nightly" in out
    code, _, err = run(capsys, "schedules", "show", "nightly", "--db", db)
    assert code == 3 and "no schedule named 'nightly'" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["create", "n", "report", "--cron", "0 3 * *"], "bad cron expression"),
        (["create", "n", "report", "--cron", "0 3 * * *", "--timezone", "Nowhere/X"],
         "unknown timezone"),
        (["create", "a@b", "report", "--every", "60"], "invalid schedule name"),
        (["create", "n", "report", "--every", "0.5"], "every must be at least 1 second"),
        (["create", "n", "report", "--every", "60", "--input", "{bad"], "--input"),
        (["create", "n", "report", "--every", "60", "--start-at", "soon"], "--start-at"),
        (["create", "n", "report", "--every", "60", "--note", "a\x00b"], "NUL"),
        (["update", "n", "--cron", "nope"], "bad cron expression"),
        (["backfill", "n", "--from", "1d", "--to", "2d"], "--to is before --from"),
        (["backfill", "n", "--from", "yesterday", "--to", "1d"], "--from"),
    ],
)  # fmt: skip
def test_bad_input_is_exit_2_and_writes_nothing(
    db: str, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, _, err = run(capsys, "schedules", *argv, "--db", db)
    assert code == 2 and says in err and "Traceback" not in err
    code, out, _ = run(capsys, "schedules", "ls", "--json", "--db", db)
    assert json.loads(out) == []


def test_unknown_workflow_or_schedule_is_exit_3(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "schedules", "create", "n", "nope", "--every", "60", "--db", db)
    assert code == 3 and "unknown workflow 'nope'" in err
    for action in ("show", "pause", "unpause", "trigger", "delete"):
        code, _, err = run(capsys, "schedules", action, "ghost", "--db", db)
        assert code == 3 and "no schedule named 'ghost'" in err, action


@pytest.mark.parametrize(
    "argv",
    [
        ["ls"], ["ls", "--json"], ["show", "ghost"], ["pause", "ghost"], ["trigger", "ghost"],
        ["create", "n", "nope", "--every", "60"], ["delete", "ghost"],
        ["backfill", "ghost", "--from", "2d", "--to", "1d"],
    ],
)  # fmt: skip
def test_no_secret_in_any_output(
    argv: list[str],
    pg_secret_url: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "schedules", *argv, "--db", pg_secret_url)
    assert code in (0, 3), err
    assert_no_secret(out + err, f"durably schedules {argv[0]}")
