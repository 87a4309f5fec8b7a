"""The App is composed of parts (``durably.app``), each used through its public methods only;
App and Client share one implementation of the operations they both offer."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import durably
import durably.app
from durably.app import lifecycle
from durably.operations import OperationsBase, WorkflowOperations

SOURCES = [
    *sorted(Path(durably.app.__file__).parent.glob("*.py")),
    Path(inspect.getfile(OperationsBase)),
    Path(inspect.getfile(durably.Client)),
]


def _foreign_private_reads(path: Path) -> list[str]:
    """Reads of another object's private attribute (``x._name``, x not self or cls)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return found


def test_no_part_reads_another_objects_private_attributes() -> None:
    assert [hit for path in SOURCES for hit in _foreign_private_reads(path)] == []


def test_app_and_client_share_the_operations_and_satisfy_the_protocol(tmp_path: Path) -> None:
    app = durably.App(f"sqlite:///{tmp_path}/ops.db")
    client = durably.Client("http://127.0.0.1:9")
    try:
        for ops in (app, client):
            assert isinstance(ops, WorkflowOperations) and isinstance(ops, OperationsBase)
            assert inspect.iscoroutinefunction(ops.send_event_async)
        assert isinstance(app, durably.App)
        # one implementation of the typed starts, not one per class
        assert durably.App.start is durably.Client.start is OperationsBase.start
        assert inspect.getdoc(durably.App.send_event) == inspect.getdoc(
            lifecycle.Lifecycle.send_event
        )
    finally:
        app.close()
        client.close()


def test_the_old_name_of_the_lifecycle_commands_still_imports() -> None:
    from durably.commands import Commands as old

    assert lifecycle.Commands is lifecycle.Lifecycle is old
