"""The deploy gate, end to end: ``durably replay-check`` and ``durably export`` as real
subprocesses on a database where a v1 app left workflows parked, then
``durably.testing.replay`` on the exported histories."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import durably
import durably.testing
from durably.replay import ReplayDivergenceError

DURABLY = [str(Path(sys.executable).with_name("durably"))]
PACKAGE_ROOT = Path(durably.__file__).resolve().parents[1]

V1 = """\
y = await a(x)
y = await b(y)
await durably.wait_event("go")
return await c(y)
"""
REORDERED = """\
y = await b(x)
y = await a(y)
await durably.wait_event("go")
return await c(y)
"""
REMOVED = """\
y = await a(x)
await durably.wait_event("go")
return await c(y)
"""
GUARDED = """\
y = await a(x)
if durably.patched("fraud-check"):
    y = await c(y)
y = await b(y)
await durably.wait_event("go")
return await c(y)
"""
CHANGED_PAST_THE_PARK = """\
y = await a(x)
y = await b(y)
await durably.wait_event("go")
y = await c(y)
return await a(y)
"""


def write_app(folder: Path, module: str, db: str, body: str, version: str | None = None) -> Path:
    """A module ``module`` in ``folder`` defining ``app`` (on ``db``, of ``version``) whose
    workflow ``order`` runs ``body``; steps a, b, c count their runs in ``<module>.runs``."""
    runs = folder / f"{module}.runs"
    source = f"""\
import durably

app = durably.App({db!r}, version={version!r})


def ran(name: str) -> None:
    with open({str(runs)!r}, "a") as f:
        f.write(name + "\\n")


@app.step()
async def a(x: int) -> int:
    ran("a")
    return x + 1


@app.step()
async def b(x: int) -> int:
    ran("b")
    return x * 2


@app.step()
async def c(x: int) -> int:
    ran("c")
    return x - 3


@app.workflow()
async def order(x: int) -> int:
{textwrap.indent(body, "    ")}
"""
    path = folder / f"{module}.py"
    path.write_text(source)
    return path


def load(path: Path) -> ModuleType:
    name = f"replay_app_{path.stem}_{time.monotonic_ns()}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def park(folder: Path, db: str, ids: list[str], version: str | None = None) -> None:
    """Run v1 (of ``version``) until each workflow ``ids`` waits for its event (3 journal
    entries), then stop."""
    module = "flows_v1" if version is None else f"flows_v1_{version}"
    app: durably.App = load(write_app(folder, module, db, V1, version)).app
    with app:
        for n, workflow_id in enumerate(ids):
            app.start("order", n, id=workflow_id)
        deadline = time.monotonic() + 30
        while any(len(app.store.get_journal(i)) < 3 for i in ids):
            assert time.monotonic() < deadline, "v1 did not reach its wait"
            time.sleep(0.02)
    app.close()


def durably_cli(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(PACKAGE_ROOT)])}
    env.pop("DURABLY_DB", None)
    return subprocess.run(
        [*DURABLY, *argv], capture_output=True, text=True, cwd=folder, env=env, timeout=120
    )


@pytest.fixture
def parked(tmp_path: Path) -> tuple[Path, str]:
    db = f"sqlite:///{tmp_path}/app.db"
    park(tmp_path, db, ["order-1", "order-2"])
    return tmp_path, db


def runs_of(folder: Path, module: str) -> list[str]:
    path = folder / f"{module}.runs"
    return path.read_text().split() if path.exists() else []


def test_the_gate_catches_a_reordered_step(tmp_path: Path, db_url: str) -> None:
    park(tmp_path, db_url, ["order-1", "order-2"])
    write_app(tmp_path, "flows_v2", db_url, REORDERED)
    proc = durably_cli(tmp_path, "replay-check", "flows_v2:app", "--db", db_url)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    diverged = [line for line in lines if line.startswith("DIVERGES")]
    assert len(diverged) == 2
    assert "order-1" in proc.stdout and "order-2" in proc.stdout
    assert "at seq 0" in diverged[0]
    assert "the journal recorded step 'a' but the code now calls step 'b'" in diverged[0]
    assert lines[-1].endswith("2 would diverge")
    assert runs_of(tmp_path, "flows_v2") == []  # no step ran


def test_the_gate_catches_a_removed_step(parked: tuple[Path, str]) -> None:
    folder, db = parked
    write_app(folder, "flows_v2", db, REMOVED)
    proc = durably_cli(folder, "replay-check", "flows_v2:app", "--db", db, "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["checked"] == 2 and report["diverged"] == 2
    first = report["workflows"][0]
    assert first["divergence"]["seq"] == 1 and first["divergence"]["key"] == "1"
    assert first["divergence"]["journal"] == {"kind": "step", "name": "b"}
    assert first["divergence"]["code"] == {"kind": "event", "name": "go"}
    assert runs_of(folder, "flows_v2") == []


def test_the_gate_passes_unchanged_code_patched_changes_and_changes_past_the_journal(
    parked: tuple[Path, str],
) -> None:
    folder, db = parked
    for module, body in (("same", V1), ("guarded", GUARDED), ("later", CHANGED_PAST_THE_PARK)):
        write_app(folder, module, db, body)
        proc = durably_cli(folder, "replay-check", f"{module}:app", "--db", db)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "2 workflows (6 journal entries) checked" in proc.stdout
        assert "all replay" in proc.stdout
        assert runs_of(folder, module) == []


def test_json_shape(parked: tuple[Path, str]) -> None:
    folder, db = parked
    write_app(folder, "same", db, V1)
    proc = durably_cli(folder, "replay-check", "same:app", "--db", db, "--json", "--id", "order-2")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"ok", "checked", "diverged", "entries", "seconds", "workflows"}
    assert report["ok"] is True and report["checked"] == 1 and report["entries"] == 3
    assert report["workflows"] == [
        {"id": "order-2", "name": "order", "status": "running", "entries": 3, "replayed": 3,
         "ok": True, "divergence": None},
    ]  # fmt: skip
    client = durably.App(db)
    client.suspend("order-1")
    client.close()
    write_app(folder, "flows_v2", db, REMOVED)
    proc = durably_cli(folder, "replay-check", "flows_v2:app", "--db", db, "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    statuses = {w["id"]: (w["status"], w["ok"]) for w in report["workflows"]}
    assert statuses == {"order-1": ("suspended", False), "order-2": ("running", False)}


@pytest.fixture
def two_versions(tmp_path: Path) -> tuple[Path, str]:
    """Workflows of versions "a" (a-1, a-2) and "b" (b-1) parked in one database, each run by
    its own version's embedded worker."""
    db = f"sqlite:///{tmp_path}/app.db"
    park(tmp_path, db, ["a-1", "a-2"], version="a")
    park(tmp_path, db, ["b-1"], version="b")
    write_app(tmp_path, "flows_v2", db, REORDERED)  # diverges for both versions
    return tmp_path, db


def test_version_checks_only_that_versions_workflows(two_versions: tuple[Path, str]) -> None:
    folder, db = two_versions
    every = durably_cli(folder, "replay-check", "flows_v2:app", "--db", db)
    assert every.returncode == 1 and every.stdout.splitlines()[-1].endswith("3 would diverge")
    proc = durably_cli(folder, "replay-check", "flows_v2:app", "--db", db, "--version", "a")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    diverged = sorted(line.split()[1] for line in proc.stdout.splitlines() if "DIVERGES" in line)
    assert diverged == ["a-1", "a-2"]
    assert "2 workflows of version a (6 journal entries) checked" in proc.stdout
    assert proc.stdout.splitlines()[-1].endswith("2 would diverge")
    proc = durably_cli(folder, "replay-check", "flows_v2:app", "--db", db, "--version", "a",
                       "--json")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["version"] == "a" and report["skipped"] == []
    assert report["checked"] == 2 and report["diverged"] == 2
    assert sorted(w["id"] for w in report["workflows"]) == ["a-1", "a-2"]
    assert runs_of(folder, "flows_v2") == []


def test_version_with_ids_checks_the_ids_of_that_version(two_versions: tuple[Path, str]) -> None:
    folder, db = two_versions
    argv = ["replay-check", "flows_v2:app", "--db", db, "--id", "a-1", "--id", "b-1"]
    proc = durably_cli(folder, *argv, "--version", "b", "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["version"] == "b" and report["skipped"] == ["a-1"]
    assert [(w["id"], w["ok"]) for w in report["workflows"]] == [("b-1", False)]
    proc = durably_cli(folder, *argv, "--version", "b")
    assert "SKIPPED  a-1: not started under version b" in proc.stdout
    assert "DIVERGES b-1" in proc.stdout and "DIVERGES a-1" not in proc.stdout


def test_a_version_with_no_workflow_passes(two_versions: tuple[Path, str]) -> None:
    folder, db = two_versions
    proc = durably_cli(folder, "replay-check", "flows_v2:app", "--db", db, "--version", "c")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 workflows of version c (0 journal entries) checked" in proc.stdout
    assert "all replay" in proc.stdout and "DIVERGES" not in proc.stdout
    proc = durably_cli(folder, "replay-check", "flows_v2:app", "--db", db, "--version", "c",
                       "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["version"], report["checked"], report["ok"]) == ("c", 0, True)


def test_a_bad_version_is_refused(two_versions: tuple[Path, str]) -> None:
    folder, db = two_versions
    cases = [("", "--version must be a non-empty string"),
             ("v" * 1000, "--version is 1000 characters long, over the limit")]  # fmt: skip
    for bad, says in cases:
        proc = durably_cli(folder, "replay-check", "flows_v2:app", "--db", db, "--version", bad)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert says in proc.stderr and proc.stdout == ""
        with pytest.raises(durably.ConfigurationError, match=says.replace("--version", "version")):
            durably.App(db, version=bad)  # the same rule as the App's


def _snapshot(path: Path) -> tuple[dict[str, list[Any]], tuple[int, int]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = {
            t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables
        }
    finally:
        conn.close()
    stat = path.stat()
    return rows, (stat.st_mtime_ns, stat.st_size)


def test_the_gate_and_export_write_nothing(parked: tuple[Path, str]) -> None:
    folder, db = parked
    path = folder / "app.db"
    before = _snapshot(path)
    assert len(before[0]["journal"]) == 6
    write_app(folder, "flows_v2", db, REORDERED)
    assert durably_cli(folder, "replay-check", "flows_v2:app", "--db", db).returncode == 1
    assert durably_cli(folder, "export", "order-1", "--db", db).returncode == 0
    assert _snapshot(path) == before


def test_bad_input(tmp_path: Path, parked: tuple[Path, str]) -> None:
    folder, db = parked
    write_app(folder, "same", db, V1)
    bad_module = durably_cli(folder, "replay-check", "nosuchmodule:app", "--db", db)
    assert bad_module.returncode == 2 and "cannot import 'nosuchmodule'" in bad_module.stderr
    not_an_app = durably_cli(folder, "replay-check", "same:ran", "--db", db)
    assert not_an_app.returncode == 2 and "is not a durably.App" in not_an_app.stderr
    bad_id = durably_cli(folder, "replay-check", "same:app", "--db", db, "--id", "")
    assert bad_id.returncode == 2
    unknown = durably_cli(folder, "replay-check", "same:app", "--db", db, "--id", "nope")
    assert unknown.returncode == 3 and "'nope'" in unknown.stderr
    missing = folder / "missing.db"
    for argv in (("replay-check", "same:app"), ("export", "order-1")):
        proc = durably_cli(folder, *argv, "--db", f"sqlite:///{missing}")
        assert proc.returncode == 5, proc.stderr
        assert "no database exists" in proc.stderr and "nothing was created" in proc.stderr
        assert not missing.exists()
    assert durably_cli(folder, "export", "nope", "--db", db).returncode == 3


def test_export_then_testing_replay(parked: tuple[Path, str]) -> None:
    folder, db = parked
    out = folder / "histories"
    out.mkdir()
    for workflow_id in ("order-1", "order-2"):
        proc = durably_cli(
            folder, "export", workflow_id, "--db", db, "-o", str(out / f"{workflow_id}.json")
        )
        assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "order-1.json").read_text())
    assert doc["format"] == "durably.history/1"
    assert doc["workflow"]["id"] == "order-1" and doc["workflow"]["status"] == "running"
    assert [(e["kind"], e["name"], e["status"]) for e in doc["journal"]] == [
        ("step", "a", "completed"), ("step", "b", "completed"), ("event", "go", "waiting"),
    ]  # fmt: skip
    assert doc["journal"][0]["result"] == "1"  # the stored text, verbatim

    same = load(write_app(folder, "same", "sqlite:///never-opened.db", V1)).app
    report = durably.testing.replay(same, out / "order-1.json")
    assert [r.replayed for r in report.results] == [3]
    durably.testing.replay(same, out)  # a folder of histories
    durably.testing.replay(same, [doc, out / "order-2.json"])
    assert runs_of(folder, "same") == []

    removed = load(write_app(folder, "removed", "sqlite:///never-opened.db", REMOVED)).app
    with pytest.raises(ReplayDivergenceError) as caught:
        durably.testing.replay(removed, out)
    assert isinstance(caught.value, durably.NonDeterminismError)
    assert [d.workflow_id for d in caught.value.divergences] == ["order-1", "order-2"]
    first = caught.value.divergences[0]
    assert (first.seq, first.journal_kind, first.journal_name) == (1, "step", "b")
    assert (first.code_kind, first.code_name) == ("event", "go")
    assert "2 workflows diverge" in str(caught.value)
    assert (caught.value.seq, caught.value.recorded, caught.value.called) == (
        1, ("step", "b"), ("event", "go"),
    )  # fmt: skip
    assert str(caught.value.location).startswith(str(folder / "removed.py"))
    assert not (folder / "never-opened.db").exists()


def test_testing_replay_refuses_what_is_not_a_history(tmp_path: Path) -> None:
    app = durably.App("sqlite:///never-opened.db")
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(durably.ConfigurationError, match="not a durably history"):
        durably.testing.replay(app, tmp_path / "x.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(durably.ConfigurationError, match=r"no exported histories \(\*\.json\)"):
        durably.testing.replay(app, tmp_path / "empty")
