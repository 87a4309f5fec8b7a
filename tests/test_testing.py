"""``durably.testing.WorkflowEnvironment`` as the README shows it: a module-level App on a file,
tested twice in a row by real pytest runs, passes both times without touching that file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import durably
from durably.testing import WorkflowEnvironment

FLOWS = """
from datetime import timedelta

import durably

app = durably.App("sqlite:///app.db")   # module-level, on a file, as deployed
reminded = []


@app.step()
async def remind(user: str) -> str:
    reminded.append(user)
    return f"reminded {user}"


@app.workflow()
async def onboarding(user: str) -> str:
    await durably.sleep(timedelta(days=30))
    return await remind(user)
"""

TEST = """
from datetime import timedelta

from durably.testing import WorkflowEnvironment

from flows import app, onboarding, reminded


def test_onboarding() -> None:
    with WorkflowEnvironment(app) as env:
        start = env.now()
        handle = app.start(onboarding, "ada", id="onboarding-ada")
        assert handle.result(timeout=10) == "reminded ada"
        assert env.now() - start >= timedelta(days=30)
    assert reminded == ["ada"]
    assert handle.history()[-1].name.endswith("remind")  # still readable after the block
"""


def test_the_readme_pattern_passes_every_time_it_runs(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS))
    (tmp_path / "test_flows.py").write_text(textwrap.dedent(TEST))
    for run in (1, 2):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_flows.py"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, (run, proc.stdout, proc.stderr)
    assert not (tmp_path / "app.db").exists()  # the App's own database was never touched


def test_each_environment_starts_empty_and_fresh_false_keeps_the_apps_database(
    tmp_path: Path,
) -> None:
    app = durably.App(f"sqlite:///{tmp_path}/own.db")

    @app.workflow()
    async def nap() -> str:
        await durably.sleep(timedelta(days=1))
        return "rested"

    for _ in range(2):
        with WorkflowEnvironment(app) as env:
            start = env.now()
            assert app.list_workflows() == []
            assert app.start(nap, id="nap-1").result(timeout=10) == "rested"
            assert env.now() - start >= timedelta(days=1)
    assert not (tmp_path / "own.db").exists()
    app.close()
    other = durably.App(f"sqlite:///{tmp_path}/other.db")
    other.registry.add_workflow(nap)
    with WorkflowEnvironment(other, fresh=False):
        assert other.start(nap, id="nap-own").result(timeout=10) == "rested"
    other.close()
    reopened = durably.App(f"sqlite:///{tmp_path}/other.db")
    assert [w.id for w in reopened.list_workflows()] == ["nap-own"]
    reopened.close()
