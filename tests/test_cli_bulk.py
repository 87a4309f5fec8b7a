"""``durably bulk ACTION``: filters, --dry-run, progress, re-runs with skipped counts, bad
filters (exit 2, nothing done, no database opened), on a database and through a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import durably
from durably.cli import main
from durably.storage.base import WorkflowRecord, WorkflowStatus

from .server.conftest import start_server

DURABLY = [sys.executable, "-m", "durably.cli"]
T = 1_700_000_000.0


def _env() -> dict[str, str]:
    package_root = Path(durably.__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
    env["PYTHONPATH"] = str(package_root)
    return env


def bulk(*argv: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*DURABLY, "bulk", *argv], capture_output=True, text=True, timeout=60, env=_env(),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == code, (argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def seed(app: durably.App, n: int, status: WorkflowStatus = WorkflowStatus.PENDING) -> None:
    for i in range(n):
        finished = None if status is WorkflowStatus.PENDING else T + i
        app.store.create_workflow(WorkflowRecord(
            id=f"job-{i:03d}", name="job", status=status, input="[]", created_at=T + i,
            updated_at=T + i, finished_at=finished,
        ))  # fmt: skip


def test_bulk_on_a_database_dry_run_progress_and_rerun(db_url: str) -> None:
    app = durably.App(db_url)
    seed(app, 12)
    db = ["--db", db_url]
    dry = bulk("cancel", "--name", "job", "--dry-run", *db).stdout
    assert dry.startswith("would cancel 12 workflow(s): job-000, job-001,") and "..." in dry
    form = json.loads(bulk("cancel", "--name", "job", "--dry-run", "--json", *db).stdout)
    assert form["matched"] == 12 and form["processed"] == 0 and len(form["sample"]) == 10
    # --since/--until take the forms of `durably ls`
    half = bulk("cancel", "--since", str(T + 6), "--batch-size", "2", "--yes", *db)
    assert "cancel: 6 processed, 0 skipped" in half.stdout
    assert half.stderr.count("processed") == 3  # progress after each batch of 2
    again = json.loads(
        bulk("cancel", "--status", "pending,cancelled", "--yes", "--json", *db).stdout
    )
    assert (again["matched"], again["processed"], again["skipped"]) == (12, 6, 6)
    assert {w.status for w in app.list_workflows()} == {WorkflowStatus.CANCELLED}
    limited = bulk("purge", "--id-prefix", "job-", "--limit", "5", *db).stdout
    assert "purge: 5 processed" in limited and "run again" in limited
    assert len(app.list_workflows()) == 7
    assert len(app.list_workflows()) == 7
    app.close()


def test_bad_filters_exit_2_before_any_database_is_opened(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv, message in (
        ((), "at least one filter"),
        (("--status", "bogus"), "unknown status"),
        (("--since", "yesterday"), "--since takes an ISO-8601 time"),
        (("--finished-before", "soon"), "--finished-before takes"),
        (("--queue", "no way"), "invalid queue name"),
    ):
        code = main(["bulk", "purge", *argv, "--db", "sqlite:////nonexistent/dir/x.db"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, err
    with pytest.raises(SystemExit) as exit_:
        main(["bulk", "explode", "--all"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_bulk_through_a_server_pages_with_its_cursor(db_url: str) -> None:
    app = durably.App(db_url)
    seed(app, 9, WorkflowStatus.COMPLETED)
    server = start_server(db_url)
    try:
        where = ["--server", server.url]
        dry: Any = json.loads(bulk("purge", "--name", "job", "--dry-run", "--json", *where).stdout)
        assert dry["matched"] == 9
        done = bulk("purge", "--name", "job", "--batch-size", "4", "--yes", *where)
        assert "purge: 9 processed, 0 skipped" in done.stdout
        assert done.stderr.count("processed") == 3  # one request (and report) per 4
        assert app.list_workflows() == []
        bad = bulk("purge", "--status", "bogus", *where, code=2)
        assert "unknown status" in bad.stderr
    finally:
        server.stop()
        app.close()


class _Terminal:
    """Standard input of a person at a terminal who answers ``answer``."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer


def test_on_a_terminal_it_asks_first_unless_yes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path}/ask.db"
    app = durably.App(db)
    seed(app, 3)
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    assert main(["bulk", "cancel", "--name", "job", "--db", db]) == 0
    err = capsys.readouterr().err
    assert "cancel 3 workflow(s): job-000, job-001, job-002\nproceed? [y/N]" in err
    assert "nothing done" in err
    assert {w.status for w in app.list_workflows()} == {WorkflowStatus.PENDING}
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    assert main(["bulk", "cancel", "--name", "job", "--db", db]) == 0
    assert "cancel: 3 processed" in capsys.readouterr().out
    assert {w.status for w in app.list_workflows()} == {WorkflowStatus.CANCELLED}
    app.close()
