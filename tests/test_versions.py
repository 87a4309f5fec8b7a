"""Versions and routing: an App's version is recorded on the workflows it starts, workers
register theirs, and a workflow started under a version is run only by workers of that version
(pinned) unless its workflow is ``auto_upgrade``; unversioned Apps behave as before.

(The store's version filter and commands: tests/store_contract/test_versions.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import durably
from durably.cli import load_app
from durably.cli import main as cli_main
from durably.storage.base import VersionClaim, WorkflowStatus

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)


def _app(db_url: str, version: str | None, tag: str | None = None, **wf: str) -> durably.App:
    """An App of ``version`` whose workflow ``where`` returns ``tag`` (default: the version),
    and whose ``parent`` starts ``where`` as a child."""
    app = durably.App(db_url, worker_options=FAST, version=version)
    mark = tag if tag is not None else str(version)

    @app.workflow(name="where", **wf)  # type: ignore[call-overload]
    def where() -> str:
        return mark

    @app.workflow(name="parent")
    async def parent() -> str:
        child: str = await where()
        return child

    return app


@pytest.fixture
def apps() -> Iterator[list[durably.App]]:
    made: list[durably.App] = []
    yield made
    for app in made:
        app.close()


def test_the_version_is_given_or_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DURABLY_VERSION", raising=False)
    assert durably.App("sqlite:///:memory:").version is None
    monkeypatch.setenv("DURABLY_VERSION", "env.1")
    assert durably.App("sqlite:///:memory:").version == "env.1"
    assert durably.App("sqlite:///:memory:", version="2026.12.1").version == "2026.12.1"
    monkeypatch.setenv("DURABLY_VERSION", "")
    assert durably.App("sqlite:///:memory:").version is None
    with pytest.raises(durably.ConfigurationError):
        durably.App("sqlite:///:memory:", version="")
    app = durably.App("sqlite:///:memory:")
    with pytest.raises(durably.ConfigurationError, match="auto_upgrade"):
        app.workflow(versioning="sometimes")(lambda: None)  # type: ignore[call-overload]


def test_each_workflow_records_its_version_and_children_inherit_it(
    db_url: str, apps: list[durably.App]
) -> None:
    app = _app(db_url, "2026.12.1")
    apps.append(app)
    with app:
        handle = app.start("parent")
        assert handle.result(timeout=30) == "2026.12.1"
    assert handle.info().version == "2026.12.1"
    (child,) = app.store.list_children(handle.id)
    assert child.version == "2026.12.1"
    listed = {w.id: w.version for w in app.list_workflows()}
    assert listed == {handle.id: "2026.12.1", child.id: "2026.12.1"}
    plain = _app(db_url, None)
    apps.append(plain)
    assert plain.start("where").info().version is None


def test_workers_register_their_version(db_url: str, apps: list[durably.App]) -> None:
    a, plain = _app(db_url, "A"), _app(db_url, None)
    apps += [a, plain]
    with a, plain:
        versions = sorted(str(w.version) for w in a.list_workers())
    assert versions == ["A", "None"]


def test_a_pinned_workflow_runs_only_on_workers_of_its_version(
    db_url: str, apps: list[durably.App]
) -> None:
    a, b, plain = _app(db_url, "A"), _app(db_url, "B"), _app(db_url, None, tag="any")
    apps += [a, b, plain]
    # A's first: a worker of B that claimed by age alone would take them before its own
    old = [a.start("where") for _ in range(5)]
    new = [b.start("where") for _ in range(5)]
    unversioned = [plain.start("where") for _ in range(3)]
    with b:  # only B's worker: it runs B's and the unversioned ones, never A's
        assert [h.result(timeout=30) for h in new] == ["B"] * 5
        assert [h.result(timeout=30) for h in unversioned] == ["B"] * 3
    assert {h.info().status for h in old} == {WorkflowStatus.PENDING}
    assert {h.info().epoch for h in old} == {0}
    with a:
        assert [h.result(timeout=30) for h in old] == ["A"] * 5


def test_an_unversioned_worker_runs_every_version(db_url: str, apps: list[durably.App]) -> None:
    a, b, plain = _app(db_url, "A"), _app(db_url, "B"), _app(db_url, None, tag="any")
    apps += [a, b, plain]
    handles = [a.start("where"), b.start("where")]
    with plain:
        assert [h.result(timeout=30) for h in handles] == ["any", "any"]


def test_an_auto_upgrade_workflow_runs_on_a_worker_of_another_version(
    db_url: str, apps: list[durably.App]
) -> None:
    a = _app(db_url, "A")
    b = _app(db_url, "B", versioning="auto_upgrade")
    apps += [a, b]
    old = a.start("where")
    pinned_child = a.start("parent")  # its workflow is pinned on B too
    with b:
        assert old.result(timeout=30) == "B"
        (worker,) = a.list_workers()
        assert worker.auto_upgrade == ["where"]
        # A's App knows from B's registration which of A's workflows B's worker runs
        unserved = a.unserved_filter()
        pending = a.store.get_workflow(pinned_child.id)
        assert pending is not None and unserved(pending)
        pending.name = "where"
        assert not unserved(pending)
    assert pinned_child.info().status is WorkflowStatus.PENDING


def test_a_pinned_workflow_no_live_worker_serves_is_unserved(
    db_url: str, apps: list[durably.App]
) -> None:
    a, b = _app(db_url, "A"), _app(db_url, "B")
    apps += [a, b]
    block = a.start("where")  # pending under A
    with b:
        b_own = b.start("parent")
        b_own.result(timeout=30)
        assert b.handle(block.id).info().unserved
        assert not b.handle(b_own.id).info().unserved
        unserved = {w.id for w in b.list_workflows() if w.unserved}
        assert unserved == {block.id}


def test_a_worker_serves_start_here_only_for_its_version(db_url: str) -> None:
    b = _app(db_url, "B")
    with b:
        worker = b._worker
        assert worker is not None
        rec = b.store.get_workflow(b.start("where").id)
        assert rec is not None and worker.serves(rec)
        rec.version = "A"
        assert not worker.serves(rec)
        rec.version = None
        assert worker.serves(rec)
    b.close()


def test_the_registry_says_what_its_worker_claims() -> None:
    app = _app("sqlite:///:memory:", None)
    assert app.registry.version_claim() is None
    app.version = "B"
    assert app.registry.version_claim() == VersionClaim("B", ())
    app.workflow(name="upgrades", versioning="auto_upgrade")(lambda: None)
    assert app.registry.version_claim() == VersionClaim("B", ("upgrades",))


# -- operators: counts, move-version, the worker's --version ------------------------------------

NEW_CODE = """
import durably

app = durably.App({db!r}, version="B")

@app.step(name="stamp")
async def stamp(tag: str) -> str:
    return tag

@app.workflow(name="stable")
async def stable() -> str:
    await stamp("one")
    got = await durably.wait_event("go")
    return "B:" + str(got)

@app.workflow(name="changed")
async def changed() -> str:
    await durably.sleep(0)  # the old code's first durable call was the step: diverges
    got = await durably.wait_event("go")
    return "B:" + str(got)
"""


def _old_code(db_url: str) -> durably.App:
    app = durably.App(db_url, worker_options=FAST, version="A")

    @app.step(name="stamp")
    async def stamp(tag: str) -> str:
        return tag

    async def flow() -> str:
        await stamp("one")
        got = await durably.wait_event("go")
        return "A:" + str(got)

    app.workflow(name="stable")(flow)
    app.workflow(name="changed")(flow)
    return app


def _park(app: durably.App, name: str) -> str:
    """Start ``name`` on ``app``'s worker and return its id once it waits for its event."""
    handle = app.start(name)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(e.kind == "event" for e in handle.history()):
            return handle.id
        assert handle.info().finished_at is None, handle.info()
        time.sleep(0.01)
    raise AssertionError(f"{name} never parked")


@pytest.fixture
def new_code(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """MODULE:APP of the new code (version B) on ``db_url``."""
    module = f"flows_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(NEW_CODE.format(db=db_url))
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{module}:app"


def test_versions_and_move_version_from_the_cli(
    db_url: str, new_code: str, capsys: pytest.CaptureFixture[str], apps: list[durably.App]
) -> None:
    old = _old_code(db_url)
    apps.append(old)
    with old:
        stable, changed = _park(old, "stable"), _park(old, "changed")
    assert cli_main(["versions", "--db", db_url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["versions"]
    assert rows == [{"version": "A", "unfinished": 2, "statuses": {"running": 2}}]
    assert cli_main(["versions", "--db", db_url]) == 0
    assert "A        2           running 2" in capsys.readouterr().out
    # the gate: only the one that replays against the new code moves
    argv = ["move-version", new_code, "--from", "A", "--to", "B", "--only-if-replays"]
    assert cli_main([*argv, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["moved"] == [stable] and report["changed"] == []
    assert [d["id"] for d in report["diverged"]] == [changed]
    assert old.count_versions() == {
        "A": {WorkflowStatus.RUNNING: 1},
        "B": {WorkflowStatus.RUNNING: 1},
    }
    new = load_app(new_code)
    new.worker_options = FAST
    apps.append(new)
    with new:  # B's worker runs the moved one, never the one left on A
        new.send_event(stable, "go", 1)
        new.send_event(changed, "go", 2)
        assert new.handle(stable).result(timeout=30) == "B:1"
    assert old.handle(changed).info().status is WorkflowStatus.RUNNING
    # without the gate everything moves
    assert cli_main(["move-version", "--from", "A", "--to", "B", "--db", db_url]) == 0
    assert "moved 1 workflow from version A to B" in capsys.readouterr().out
    assert old.handle(changed).info().version == "B"


def test_move_version_refuses_bad_input(
    db_url: str, capsys: pytest.CaptureFixture[str], apps: list[durably.App]
) -> None:
    app = _app(db_url, "A")
    apps.append(app)
    app.start("where")
    argv = ["move-version", "--from", "A", "--to", "B", "--db", db_url, "--only-if-replays"]
    assert cli_main(argv) == 2
    assert "MODULE:APP" in capsys.readouterr().err
    assert cli_main(["move-version", "--from", "", "--to", "B", "--db", db_url]) == 2
    assert app.count_versions() == {"A": {WorkflowStatus.PENDING: 1}}  # nothing moved


def test_the_worker_version_flag_overrides_the_app(tmp_path: Path, db_url: str) -> None:
    module = tmp_path / "flows_cli.py"
    module.write_text(
        "import durably\n"
        f"app = durably.App({db_url!r}, version='A')\n"
        "@app.workflow(name='where')\n"
        "def where() -> str:\n"
        "    return 'ran'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    client = _app(db_url, "B")
    handle = client.start("where")
    worker = subprocess.Popen(
        [sys.executable, "-m", "durably.cli", "worker", "flows_cli:app", "--version", "B"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert handle.result(timeout=60) == "ran"
        assert [w.version for w in client.list_workers()] == ["B"]
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        client.close()
    assert worker.returncode == 0, err


def test_the_supervisor_passes_the_version_to_its_children() -> None:
    from durably.worker.supervisor import Supervisor

    command = Supervisor("m:app", 2, version="B")._command()
    assert command[-2:] == ["--version", "B"]
    assert "--version" not in Supervisor("m:app", 2)._command()


def test_ls_show_and_workers_show_versions_only_when_there_are_some(
    db_url: str, apps: list[durably.App]
) -> None:
    from durably.cli import render
    from durably.jsonforms import version_counts, versions_json, workflow_info, workflow_json

    a, plain = _app(db_url, "2026.12.1"), _app(db_url, None)
    apps += [a, plain]
    versioned, unversioned = a.start("where").info(), plain.start("where").info()
    assert "VERSION" not in render.workflows_table([unversioned])
    table = render.workflows_table([versioned, unversioned])
    assert "VERSION" in table.splitlines()[0] and "2026.12.1" in table
    detail = render.workflow_detail(versioned, [], {})
    assert "version   2026.12.1" in detail
    assert "version" not in render.workflow_detail(unversioned, [], {})
    form = workflow_json(versioned)
    assert form["version"] == "2026.12.1" and workflow_info(form).version == "2026.12.1"
    counts = a.count_versions()
    assert counts == {"2026.12.1": {WorkflowStatus.PENDING: 1}, None: {WorkflowStatus.PENDING: 1}}
    assert version_counts(versions_json(counts)) == counts
    assert [r["version"] for r in versions_json(counts)["versions"]] == [None, "2026.12.1"]


def test_move_version_of_a_version_with_no_workflows_moves_and_reports_nothing(
    db_url: str, new_code: str, capsys: pytest.CaptureFixture[str], apps: list[durably.App]
) -> None:
    """The gate checks the workflows of --from only: with none there, the workflows of other
    versions are neither checked nor reported (they were reported as 'journal grew')."""
    old = _old_code(db_url)
    apps.append(old)
    with old:
        parked = _park(old, "stable")
    argv = ["move-version", new_code, "--from", "Z", "--to", "B", "--only-if-replays"]
    assert cli_main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["moved"] == [] and report["changed"] == [] and report["diverged"] == []
    assert old.handle(parked).info().version == "A"
