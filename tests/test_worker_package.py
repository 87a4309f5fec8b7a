"""The worker package's boundaries: ``import durably`` does not load it, and it uses only the
engine's public API (no engine internals, no asyncio or other objects' private names)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import durably.engine
from durably.engine import Outcome
from durably.engine.waits import Parked
from durably.errors import LeaseLostError
from durably.storage.base import WorkflowStatus

WORKER = Path(durably.engine.__file__).parent.parent / "worker"


def test_import_durably_does_not_import_the_worker(tmp_path: Path) -> None:
    code = (
        "import sys, durably\n"
        f"app = durably.App({f'sqlite:///{tmp_path}/a.db'!r})\n"
        "loaded = sorted(m for m in sys.modules if m == 'durably.worker' "
        "or m.startswith('durably.worker.'))\n"
        "assert not loaded, loaded\n"
        "assert durably.WorkerOptions().lease_seconds > 0\n"  # still offered, loaded on use
        "assert 'durably.worker' in sys.modules\n"
        "import durably.cli\n"  # the CLI (and its supervisor) loads the worker host on use
        "assert 'durably.worker.core' not in sys.modules\n"
        "from durably.worker import Worker\n"
        "assert 'durably.worker.core' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _modules() -> list[Path]:
    files = sorted(WORKER.glob("*.py"))
    assert {p.name for p in files} >= {"core.py", "host.py", "claims.py", "leases.py"}
    return files


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_the_worker_uses_only_the_engines_public_api() -> None:
    public = set(durably.engine.__all__)
    bad: list[str] = []
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "durably.engine"
            ):
                if node.module != "durably.engine":
                    bad.append(f"{where} imports from {node.module}")
                bad += [f"{where} imports {a.name}" for a in node.names if a.name not in public]
            elif isinstance(node, ast.Import):
                bad += [
                    f"{where} imports {a.name}"
                    for a in node.names
                    if a.name.startswith("durably.engine")
                ]
            elif isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value
                if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                    bad.append(f"{where} reads the private {node.attr}")
            elif isinstance(node, ast.Attribute) and node.attr == "waits":
                bad.append(f"{where} reaches into an execution's waits")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr")
            ):
                bad.append(f"{where} uses {node.func.id}")
    assert bad == []


def test_an_outcome_says_why_it_stopped_and_whether_to_release() -> None:
    parked = Outcome(None, reason=Parked("waiting", workflow_id="w"))
    lost = Outcome(None, reason=LeaseLostError("lost", workflow_id="w"))
    failed_write = Outcome(None, reason=RuntimeError("store down"))
    done = Outcome(WorkflowStatus.COMPLETED, output="1")
    assert (parked.parked, parked.lease_lost, parked.release) == (True, False, False)
    assert (lost.parked, lost.lease_lost, lost.release) == (False, True, False)
    assert (failed_write.parked, failed_write.lease_lost, failed_write.release) == (
        False,
        False,
        True,
    )
    assert (done.parked, done.lease_lost, done.release) == (False, False, False)
