"""The management commands of ``durably`` (start, ls, show, history, send, cancel...), run as real
subprocesses against a database on each backend, with a real worker process running the
workflows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import durably
from durably.cli.values import parse_call, parse_time

DURABLY = [sys.executable, "-m", "durably.cli"]

FLOWS = """
import durably
app = durably.App({db!r})

@app.step()
def double(x: int) -> int:
    return 2 * x

@app.workflow()
def twice(x: int) -> int:
    return double(double(x))

@app.workflow()
def greet(name: str, *, punctuation: str = "!") -> str:
    return "hello " + name + punctuation

@app.workflow()
def waiter(n: int) -> str:
    durably.set_state("stage", "waiting")
    got = durably.wait_event_sync("go")
    durably.set_state("stage", "done")
    return f"{{n}}:{{got['ok']}}"

@app.workflow()
def boom() -> None:
    raise ValueError("nope")
"""


@dataclass
class Cli:
    """Runs ``durably`` in a subprocess with the test's environment and database."""

    env: dict[str, str]
    cwd: Path
    db: str

    def run(
        self, *argv: str, db: bool = True, check: int | None = 0
    ) -> subprocess.CompletedProcess[str]:
        args = [*DURABLY, *argv, *(["--db", self.db] if db else [])]
        proc = subprocess.run(
            args, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60
        )
        if check is not None:
            assert proc.returncode == check, (argv, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def json(self, *argv: str, check: int = 0) -> Any:
        return json.loads(self.run(*argv, "--json", check=check).stdout)


def _env(tmp_path: Path) -> dict[str, str]:
    package_root = Path(durably.__file__).resolve().parents[1]  # the durably under test
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(package_root)])
    return env


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Iterator[Cli]:
    """The CLI on ``db_url``, with a worker process serving the FLOWS app on it."""
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS.format(db=db_url)))
    env = _env(tmp_path)
    worker = subprocess.Popen(
        [*DURABLY, "worker", "flows:app"], cwd=tmp_path, env=env, stderr=subprocess.PIPE
    )
    app = durably.App(db_url)
    try:
        deadline = time.monotonic() + 30
        while not app.list_workers() and time.monotonic() < deadline:
            assert worker.poll() is None, worker.communicate()[1]
            time.sleep(0.05)
        yield Cli(env, tmp_path, db_url)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        app.close()
    assert worker.returncode == 0, err


def test_start_wait_ls_show_history_send_purge(cli: Cli) -> None:
    assert cli.run("start", "twice", "--input", "21", "--wait").stdout.strip() == "84"
    greeting = cli.json(
        "start", "greet", "--input", '{"args": ["ana"], "kwargs": {"punctuation": "?"}}',
        "--wait",
    )  # fmt: skip
    assert greeting["status"] == "completed" and greeting["output"] == "hello ana?"
    assert cli.run("start", "waiter", "--input", "[3]", "--id", "w-1").stdout.strip() == "w-1"
    # the same id again starts nothing new
    assert cli.run("start", "waiter", "--input", "[4]", "--id", "w-1").stdout.strip() == "w-1"

    failed = cli.run("start", "boom", "--wait", check=1)
    assert "ValueError: nope" in failed.stderr

    listed = cli.json("ls")
    assert sorted(w["name"] for w in listed) == ["boom", "greet", "twice", "waiter"]
    assert [w["id"] for w in cli.json("ls", "--status", "failed,needs_attention")] == [
        w["id"] for w in listed if w["name"] == "boom"
    ]
    assert [w["id"] for w in cli.json("ls", "--id-prefix", "w-")] == ["w-1"]
    (twice,) = cli.json("ls", "--since", "1h", "--name", "twice")
    assert twice["summary"] is True and "output" not in twice and twice["output_preview"] == "84"
    assert cli.json("show", twice["id"])["workflow"]["output"] == 84
    assert cli.json("ls", "--until", "2000-01-01T00:00:00Z") == []
    table = cli.run("ls").stdout
    assert table.splitlines()[0].split()[:3] == ["ID", "NAME", "STATUS"] and "w-1" in table

    deadline = time.monotonic() + 30  # the worker reaches the wait for the event
    while cli.json("show", "w-1")["state"] != {"stage": "waiting"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    page = cli.run("show", "w-1").stdout
    assert "waiter" in page and "running" in page and "stage" in page

    sent = cli.json("send", "w-1", "go", "--data", '{"ok": true}')
    assert sent == {"id": "w-1", "event": "go", "delivered": True}
    watched = cli.run("show", "w-1", "--watch")
    assert "completed" in watched.stdout and "3:True" in watched.stdout
    shown = cli.json("show", "w-1")
    assert shown["workflow"]["output"] == "3:True"
    assert shown["state"] == {"stage": "done"}
    kinds = [(e["kind"], e["name"], e["status"]) for e in cli.json("history", "w-1")]
    assert ("event", "go", "completed") in kinds
    assert "event" in cli.run("history", "w-1").stdout

    workers = cli.json("workers")
    assert len(workers) == 1 and "waiter" in workers[0]["workflows"]
    assert "flows" not in cli.run("workers").stderr

    assert cli.run("resume", "w-1", check=4).stderr.startswith("durably: error: cannot resume")
    assert cli.json("purge", "w-1") == {"id": "w-1", "purged": True}
    assert "durably ls" in cli.run("show", "w-1", check=3).stderr
    assert "unknown workflow 'nosuch'" in cli.run("start", "nosuch", check=3).stderr


def test_watch_follows_a_running_workflow_live(cli: Cli) -> None:
    cli.run("start", "waiter", "--input", "7", "--id", "live")
    watcher = subprocess.Popen(
        [*DURABLY, "show", "live", "--watch", "--interval", "0.2", "--db", cli.db],
        cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert watcher.stdout is not None
    lines = []
    for line in watcher.stdout:  # one line per change while it runs
        lines.append(line)
        if "event go: waiting" in line:
            break
    assert watcher.poll() is None  # still following
    cli.run("send", "live", "go", "--data", '{"ok": "yes"}')
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "event go: completed" in out and "status   completed" in out and "7:yes" in out


def test_lifecycle_commands(cli: Cli) -> None:
    cli.run("start", "waiter", "--input", "1", "--id", "lc-1")
    assert cli.json("suspend", "lc-1") == {"id": "lc-1", "status": "suspended"}
    assert cli.json("suspend", "lc-1")["status"] == "suspended"  # again: no change, no error
    # an event it does not wait for stays in its inbox; the same dedup key again adds nothing
    assert cli.json("send", "lc-1", "note", "--data", "1", "--dedup-key", "k1")["delivered"]
    assert "not sent" in cli.run("send", "lc-1", "note", "--dedup-key", "k1").stdout
    assert cli.json("resume", "lc-1")["status"] in ("running", "pending")
    assert cli.json("cancel", "lc-1")["status"] in ("running", "pending", "cancelled")
    # --watch exits 1 when the workflow ends other than completed
    assert cli.json("show", "lc-1", "--watch", check=1)["workflow"]["status"] == "cancelled"
    assert "status   cancelled" in cli.run("show", "lc-1", "--watch", check=1).stdout
    assert cli.run("cancel", "nope-1", check=3).stderr
    assert cli.run("purge", "nope-1", check=3).stderr

    cli.run("start", "waiter", "--input", "2", "--id", "lc-2")
    cli.run("terminate", "lc-2", "--reason", "by the test")
    info = cli.json("show", "lc-2")["workflow"]
    assert info["status"] == "terminated" and info["error"]["message"] == "by the test"
    assert cli.run("terminate", "lc-2", check=4).stderr

    cli.run("start", "boom", "--id", "lc-3")
    assert cli.run("show", "lc-3", "--watch", check=1).stdout
    assert cli.json("retry", "lc-3")["status"] in ("running", "failed")  # it fails again
    assert cli.run("show", "lc-3", "--watch", check=1).stdout
    assert cli.run("retry", "lc-2", check=4).stderr  # terminated: nothing to retry

    cli.run("start", "twice", "--input", "5", "--id", "lc-4", "--wait")
    forked = cli.json("fork", "lc-4", "--from-step", "1", "--new-id", "lc-4b")
    assert forked["id"] == "lc-4b" and forked["name"] == "twice"
    assert cli.json("show", "lc-4b", "--watch")["workflow"]["output"] == 20
    assert cli.run("fork", "lc-4", "--from-step", "1", "--new-id", "lc-4b", check=4).stderr
    assert cli.run("fork", "lc-4", check=2).stderr  # --from-step is required
    past = cli.run("fork", "lc-4", "--from-step", "99", "--new-id", "lc-4c", check=2)
    assert "from step 99" in past.stderr and "entries 0 to 1" in past.stderr
    assert cli.run("show", "lc-4c", check=3).stderr


def test_bad_input_is_a_usage_error_and_writes_nothing(tmp_path: Path, db_url: str) -> None:
    cli = Cli(_env(tmp_path), tmp_path, db_url)
    cli.run("migrate")  # the commands below need an existing database (they never create one)
    bad = cli.run("start", "twice", "--input", "[1,", check=2)
    assert "--input is not valid JSON" in bad.stderr and "line 1 column" in bad.stderr
    kwargs = '{"kwargs": {"id": 1}}'
    assert "positionally" in cli.run("start", "twice", "--input", kwargs, check=2).stderr
    assert "--data" in cli.run("send", "x-1", "go", "--data", "{nope", check=2).stderr
    assert "invalid workflow id" in cli.run("start", "twice", "--id", "bad id!", check=2).stderr
    assert "unknown status" in cli.run("ls", "--status", "happy", check=2).stderr
    assert "--since" in cli.run("ls", "--since", "yesterday-ish", check=2).stderr
    assert "not both" in cli.run("ls", "--server", "http://127.0.0.1:9", check=2).stderr
    assert cli.run("ls", "--limit", "many", check=2).stderr
    assert cli.run("frobnicate", db=False, check=2).stderr
    assert cli.json("ls") == []


BAD_INPUT = (
    (("ls", "--status", "bogus"), "unknown status in ['bogus']; use one of: pending"),
    (("ls", "--status", "failed,happy"), "unknown status in ['failed', 'happy']"),
    (("ls", "--since", "yesterday-ish"), "--since takes an ISO-8601 time"),
    (("ls", "--until", "soon"), "--until takes an ISO-8601 time"),
    (("ls", "--limit", "0"), "argument --limit: expected a number >= 1"),
    (("start", "twice", "--input", "[1,"), "--input is not valid JSON"),
    (("start", "twice", "--input", '{"args": 1}'), '--input: "args" must be a JSON array'),
    (("start", "twice", "--input", "@no-such-file.json"), "cannot read that file"),
    (("start", "twice", "--input", '{"kwargs": {"id": "x"}}'), "keyword argument 'id' clashes"),
    (("start", "twice", "--input", '{"kwargs": {"priority": 1}}'),
     "keyword argument 'priority' clashes"),
    (("start", "twice", "--input", "[NaN]"), "NaN and infinity are not valid JSON"),
    (("start", "twice", "--input", "@big.json"), "over the limit of 1048576 bytes"),
    (("start", "twice", "--id", "bad id!"), "invalid workflow id 'bad id!'"),
    (("start", "twice", "--queue", "no queue!"), "invalid queue name 'no queue!'"),
    (("start", "twice", "--priority", str(2**31)), "priority must be a 32-bit whole number"),
    (("start", "twice", "--priority", "high"), "argument --priority: invalid int value"),
    (("start", "twice", "--wait", "--timeout", "0"), "argument --timeout: expected seconds > 0"),
    (("show", "bad id!"), "invalid workflow id 'bad id!'"),
    (("show", "x-1", "--watch", "--interval", "-1"), "argument --interval"),
    (("history", "bad id!"), "invalid workflow id"),
    (("send", "bad id!", "go"), "invalid workflow id"),
    (("send", "x-1", "go", "--data", "{nope"), "--data is not valid JSON"),
    (("send", "x-1", "go", "--data", "[Infinity]"),
     "Cannot serialize payload of event 'go' (workflow id 'x-1'): NaN and infinity"),
    (("send", "x-1", "go", "--data", "@big.json"), "over the limit of 1048576 bytes"),
    (("send", "x-1", "", "--data", "1"), "event name must be a non-empty string, got ''"),
    (("send", "x-1", "go", "--dedup-key", ""), "dedup_key must be a non-empty string, got ''"),
    *(((command, "bad id!"), "invalid workflow id")
      for command in ("cancel", "terminate", "suspend", "resume", "retry", "purge")),
    (("fork", "bad id!", "--from-step", "1"), "invalid workflow id 'bad id!'"),
    (("fork", "x-1", "--from-step", "1", "--new-id", "bad id!"), "invalid workflow id 'bad id!'"),
    (("fork", "x-1", "--from-step", "-1"), "argument --from-step: expected a number >= 0"),
    (("fork", "x-1", "--from-step", "one"), "argument --from-step"),
    (("fork", "x-1"), "the following arguments are required: --from-step"),
    # issue 12: depth, huge numbers, digits of other scripts, names (never a traceback)
    (("start", "twice", "--input", "[" * 5000 + "]" * 5000), "--input is nested too deeply"),
    (("start", "twice", "--input", "[" * 102 + "]" * 102),
     "arguments of workflow 'twice': it is nested too deeply"),
    (("start", "twice", "--input", "9" * 5000), "--input holds a value durably cannot take"),
    (("start", "twice", "--input", '["\\ud800"]'), "lone surrogate"),
    (("start", "a\x01" * 200), "workflow name is 400 characters long"),
    (("ls", "--limit", str(10**23)), "argument --limit: expected a number <= 2147483647"),
    (("ls", "--limit", "\u00b2"), "argument --limit: expected a whole number"),
    (("ls", "--limit", "\u0661\u0662"), "argument --limit: expected a whole number"),
    (("ls", "--since", "\u0661\u0662"), "--since takes an ISO-8601 time"),
    (("ls", "--id-prefix", "x" * 201), "id_prefix is 201 characters long"),
    (("fork", "x-1", "--from-step", str(10**23)), "argument --from-step: expected a number <="),
    (("send", "x-1", "a/b"), "invalid event name 'a/b'"),
    (("send", "x-1", "go", "--dedup-key", "k" * 513), "dedup_key is 513 characters long"),
    (("send", "x-1", "go", "--data", "[" * 975 + "]" * 975), "--data is nested too deeply"),
    (("terminate", "x-1", "--reason", "r" * 10_001), "reason is 10001 characters long"),
)  # fmt: skip


def test_bad_input_is_refused_before_the_target_is_opened(tmp_path: Path) -> None:
    """Bad input is a usage error (exit 2, with its own message) whatever the target: checked
    before a missing SQLite database would be reported (exit 5) or an unreachable server
    tried, and nothing is created."""
    (tmp_path / "big.json").write_text(json.dumps(["x" * (1 << 20)]))
    cli = Cli(_env(tmp_path), tmp_path, f"sqlite:///{tmp_path}/typo.db")
    for where in (("--db", cli.db), ("--server", "http://127.0.0.1:9")):
        for argv, message in BAD_INPUT:
            proc = cli.run(*argv, *where, "--json", db=False, check=None)
            assert (proc.returncode, proc.stdout) == (2, ""), (argv, where, proc.stderr)
            assert message in proc.stderr and "error: " in proc.stderr, (argv, proc.stderr)
            assert "no database exists" not in proc.stderr and "cannot reach" not in proc.stderr
            _no_database_files(tmp_path)
    # $DURABLY_DB naming a missing file, and no target at all (./durably.db, missing)
    for env in ({**cli.env, "DURABLY_DB": "typo2.db"}, cli.env):
        proc = subprocess.run([*DURABLY, "ls", "--status", "bogus"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 2 and "unknown status" in proc.stderr, proc.stderr
    _no_database_files(tmp_path)
    # a kwarg named queue is no clash (the queue is a start option given positionally)
    queue = cli.run("start", "twice", "--input", '{"kwargs": {"queue": 1}}', check=5)
    assert "no database exists" in queue.stderr


MISSING_DB_COMMANDS = (
    ("ls",), ("show", "x-1"), ("history", "x-1"), ("send", "x-1", "go"), ("cancel", "x-1"),
    ("terminate", "x-1"), ("suspend", "x-1"), ("resume", "x-1"), ("retry", "x-1"),
    ("fork", "x-1", "--from-step", "1"), ("purge", "x-1"), ("workers",), ("start", "twice"),
)  # fmt: skip


def _no_database_files(folder: Path) -> None:
    made = sorted(p.name for p in folder.iterdir() if ".db" in p.name or "memory" in p.name)
    assert made == [], made


def test_a_missing_sqlite_database_is_reported_and_not_created(tmp_path: Path) -> None:
    """A typo in --db / $DURABLY_DB must not create an empty database that lists nothing: every
    management command exits 5 naming the path, and only `migrate` (or a worker) creates it."""
    cli = Cli(_env(tmp_path), tmp_path, f"sqlite:///{tmp_path}/typo.db")
    for argv in MISSING_DB_COMMANDS:
        proc = cli.run(*argv, check=5)
        assert proc.stdout == "", (argv, proc.stdout)
        message = proc.stderr.strip()
        assert message.startswith("durably: error: no database exists at "), (argv, message)
        assert repr(str(tmp_path / "typo.db")) in message and "(from --db)" in message
        assert f"durably migrate --db sqlite:///{tmp_path}/typo.db" in message, message
        assert "start a worker" in message
        assert cli.run(*argv, "--json", check=5).stdout == ""
        _no_database_files(tmp_path)
    # $DURABLY_DB with a relative bare path (relative to the current directory), and the default
    env = {**cli.env, "DURABLY_DB": "typo2.db"}
    proc = subprocess.run([*DURABLY, "ls"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 5, proc.stderr
    assert repr(str(tmp_path / "typo2.db")) in proc.stderr and "$DURABLY_DB" in proc.stderr
    default = cli.run("ls", db=False, check=5).stderr
    assert repr(str(tmp_path / "durably.db")) in default and "neither --db nor" in default
    # a URL that names no file is a usage error, and creates nothing either
    assert "names no file" in cli.run("ls", "--db", "sqlite:///:memory:", db=False, check=2).stderr
    _no_database_files(tmp_path)
    # `durably migrate` creates it; then the commands work on it
    assert cli.run("migrate").returncode == 0
    assert (tmp_path / "typo.db").exists()
    assert cli.json("ls") == []
    assert cli.run("show", "x-1", check=3).stderr


def test_unreachable_database_or_server_exits_5(tmp_path: Path) -> None:
    cli = Cli(_env(tmp_path), tmp_path, "")
    proc = cli.run("ls", "--db", "postgresql://nobody@127.0.0.1:9/nothing", db=False, check=5)
    assert "127.0.0.1" in proc.stderr and "DURABLY_DB" in proc.stderr
    # a SQLite file in a folder that does not exist is a bad URL (usage), not an outage
    proc = cli.run("ls", "--db", f"sqlite:///{tmp_path}/no/such/x.db", db=False, check=2)
    assert "does not exist" in proc.stderr
    proc = cli.run("show", "x-1", "--server", "http://127.0.0.1:9", db=False, check=5)
    assert "cannot reach the durably server at http://127.0.0.1:9" in proc.stderr
    env = {**cli.env, "DURABLY_SERVER": "http://127.0.0.1:9"}
    proc = subprocess.run(
        [*DURABLY, "workers"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 5 and "DURABLY_SERVER" in proc.stderr


def test_help_everywhere_has_examples() -> None:
    for command in ("start", "ls", "show", "history", "send", "cancel", "fork", "workers"):
        proc = subprocess.run([*DURABLY, command, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "examples:" in proc.stdout, command
        assert "--db" in proc.stdout and "--server" in proc.stdout and "--json" in proc.stdout
    top = subprocess.run([*DURABLY, "--help"], capture_output=True, text=True)
    assert top.returncode == 0 and "exit codes" in top.stdout and "server" in top.stdout


def test_input_forms() -> None:
    assert parse_call(None) == ([], {})
    assert parse_call("[1, 2]") == ([1, 2], {})
    assert parse_call('{"args": [1], "kwargs": {"a": 2}}') == ([1], {"a": 2})
    assert parse_call('{"kwargs": {"a": 2}}') == ([], {"a": 2})
    assert parse_call('{"order": 5}') == ([{"order": 5}], {})  # any other object: one argument
    assert parse_call("7") == ([7], {}) and parse_call('"x"') == (["x"], {})
    assert parse_call("[[1, 2]]") == ([[1, 2]], {})
    with pytest.raises(durably.ConfigurationError, match='"args" must be a JSON array'):
        parse_call('{"args": 1}')


def test_time_forms() -> None:
    now = 1_700_000_000.0
    assert parse_time("90s", "--since", now) == now - 90
    assert parse_time("1h30m", "--since", now) == now - 5400
    assert parse_time("2d", "--since", now) == now - 2 * 86400
    assert parse_time("1700000000", "--since") == now
    assert parse_time("2023-11-14T22:13:20Z", "--since") == now
    assert parse_time("2023-11-14T22:13:20", "--since") == now  # UTC when no zone is given
    for bad in ("soon", "nan", "5 parsecs", ""):
        with pytest.raises(durably.ConfigurationError, match="--since"):
            parse_time(bad, "--since")


def test_start_conflict_exits_4_and_wait_timeout_exits_1(cli: Cli) -> None:
    cli.run("start", "twice", "--input", "1", "--id", "c-1", "--wait")
    taken = cli.run("start", "greet", "--input", '["x"]', "--id", "c-1", check=4)
    assert "'twice'" in taken.stderr and "'greet'" in taken.stderr
    assert cli.run("start", "twice", "--input", "2", "--id", "c-1").stdout.strip() == "c-1"
    waited = cli.run("start", "waiter", "--input", "1", "--wait", "--timeout", "1", check=1)
    assert "still running" in waited.stderr or "still pending" in waited.stderr
