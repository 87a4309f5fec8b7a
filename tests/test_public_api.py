"""The public API: stable names, documented, and typed for user code."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types
from pathlib import Path

import durably

EXPECTED = {
    "APP_DEFAULT", "BulkFilter", "BulkResult",
    "App", "Cancelled", "ChildHandle", "ChildWorkflowFailed", "Client", "ConfigurationError",
    "DurablyError", "EventTimeoutError", "Fired", "HistoryEntry", "InvalidIdError",
    "JsonSerializer",
    "LeaseLostError", "NonDeterminismError", "NotInWorkflowError", "PayloadCodec",
    "PayloadTooLargeError",
    "Queue", "Retry", "RunInfo", "Saga", "Schedule", "ScheduleInfo", "ScheduleNotFoundError",
    "ScheduleTick", "SerializationError", "Serializer", "Step",
    "StepContext", "StepFailed", "StepFuture", "StepTimeoutError", "Undecodable",
    "UnknownWorkflowError",
    "WorkerInfo", "WorkerOptions", "Workflow", "WorkflowFailedError", "WorkflowHandle",
    "WorkflowIdConflictError", "WorkflowInfo", "WorkflowNotFoundError", "WorkflowOperations",
    "WorkflowStateError",
    "WorkflowStatus", "WorkflowTimeoutError", "__version__", "continue_as_new", "deprecate_patch",
    "now", "patched", "random", "run", "set_state", "sleep", "sleep_sync", "sleep_until",
    "sleep_until_sync", "start_child",
    "step_context", "submit", "uuid4", "wait_event", "wait_event_sync", "workflow_id",
    "event", "timer", "wait_any", "wait_any_sync",
}  # fmt: skip


def test_all_lists_exactly_the_stable_public_names() -> None:
    assert set(durably.__all__) == EXPECTED
    for name in durably.__all__:
        assert hasattr(durably, name), name


def test_the_namespace_holds_no_stray_public_names() -> None:
    """Everything ``dir(durably)`` shows without a leading underscore is in ``__all__`` or is a
    submodule (no ``TYPE_CHECKING``, ``Any`` or other names leaked by its imports)."""
    stray = [
        name
        for name in dir(durably)
        if not name.startswith("_")
        and name not in durably.__all__
        and not isinstance(getattr(durably, name), types.ModuleType)
    ]
    assert stray == []


def test_every_public_name_and_method_is_documented() -> None:
    for name in durably.__all__:
        obj = getattr(durably, name)
        if name == "__version__":
            continue
        assert inspect.getdoc(obj), f"durably.{name} has no docstring"
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not callable(member):
                    continue
                assert inspect.getdoc(member), f"durably.{name}.{attr} has no docstring"


def test_errors_share_one_root_with_stable_codes() -> None:
    codes = set()
    for name in durably.__all__:
        obj = getattr(durably, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            if obj is durably.Cancelled:  # a BaseException on purpose, like asyncio's
                assert not issubclass(obj, Exception)
            else:
                assert issubclass(obj, durably.DurablyError), name
            codes.add(obj.code)
    errors = [n for n in durably.__all__ if n.endswith(("Error", "Failed")) or n == "Cancelled"]
    assert len(codes) == len(errors)


def test_user_code_type_checks_under_mypy_strict() -> None:
    sample = Path(__file__).parent / "typing" / "user_code.py"
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(sample)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
