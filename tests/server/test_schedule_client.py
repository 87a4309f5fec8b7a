"""``client.schedules`` and ``durably schedules --server`` through a real ``durably server``
(both backends): the App's schedule operations over HTTP, the same errors, and no token in any
output."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

import durably
from durably.cli import main

from .conftest import TOKEN, Server


def test_client_schedules(server: Server) -> None:
    with durably.Client(server.url) as client:
        ops = client.schedules
        info = ops.create("c-nightly", "greet", cron="0 3 * * *", timezone="Europe/Berlin",
                          args=("bob",), note="remote")  # fmt: skip
        assert isinstance(info, durably.ScheduleInfo)
        assert info.next_run_at is not None and info.next_run_at.hour == 3
        assert info.next_run_at.utcoffset() == timedelta(hours=1)
        assert [s.name for s in ops.list()] == ["c-nightly"]
        changed = ops.update("c-nightly", every=timedelta(hours=1), overlap="allow_all")
        assert changed.every == timedelta(hours=1) and changed.cron is None
        assert changed.input == '{"args":["bob"],"kwargs":{}}'
        assert ops.pause("c-nightly", reason="move").pause_reason == "move"
        assert not ops.unpause("c-nightly").paused
        tick = ops.trigger("c-nightly")
        assert tick.result == "started" and tick.workflow_id.startswith("c-nightly@")
        assert client.handle(tick.workflow_id).result(timeout=30) == "hello bob"
        start = datetime(2026, 1, 1, tzinfo=UTC)
        first = ops.backfill("c-nightly", start, start + timedelta(hours=1))
        again = ops.backfill("c-nightly", start, start + timedelta(hours=1))
        assert [t.result for t in first] == ["started", "started"]
        assert [t.result for t in again] == ["exists", "exists"]
        assert first[0].workflow_id == "c-nightly@2026-01-01T01:00:00+01:00"
        ops.delete("c-nightly")
        with pytest.raises(durably.ScheduleNotFoundError, match="no schedule named 'c-nightly'"):
            ops.get("c-nightly")
        with pytest.raises(durably.ConfigurationError, match="bad cron expression"):
            ops.create("x", "greet", cron="* *")
        with pytest.raises(durably.ConfigurationError, match="cannot update paused"):
            ops.update("x", paused=True)
        with pytest.raises(durably.UnknownWorkflowError):
            ops.create("x", "no-such-workflow", every=60)
        assert ops.list() == []


def test_cli_over_a_server(secured: Server, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--server", secured.url, "--token", TOKEN]
    code = main(["schedules", "create", "cli-s", "greet", "--every", "60", *where, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["every"] == 60
    assert main(["schedules", "ls", *where]) == 0
    assert "cli-s" in capsys.readouterr().out
    assert main(["schedules", "show", "ghost", *where]) == 3
    assert "no schedule named 'ghost'" in capsys.readouterr().err
    assert main(["schedules", "delete", "cli-s", *where]) == 0
    capsys.readouterr()
    code = main(["schedules", "ls", "--server", secured.url, "--token", "wrong-" + TOKEN])
    out, err = capsys.readouterr()
    assert code == 6 and TOKEN not in out + err
