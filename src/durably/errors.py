"""The errors durably raises.

Every error derives from :class:`DurablyError` and carries a stable ``code`` (for the CLI, the HTTP
API and logs), the workflow id and step name where they are known, and a message that says what
to do about it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigurationError",
    "DatabaseUnavailableError",
    "DurablyError",
    "EventTimeoutError",
    "InvalidIdError",
    "LeaseLostError",
    "NonDeterminismError",
    "NotInWorkflowError",
    "PayloadTooLargeError",
    "ScheduleNotFoundError",
    "SerializationError",
    "StepFailed",
    "StepTimeoutError",
    "UnknownWorkflowError",
    "WorkflowFailedError",
    "WorkflowIdConflictError",
    "WorkflowNotFoundError",
    "WorkflowTimeoutError",
]


class DurablyError(Exception):
    """Root of every error durably raises. ``code`` is stable across releases."""

    code = "durably_error"

    def __init__(
        self, message: str, *, workflow_id: str | None = None, step: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.workflow_id = workflow_id
        self.step = step

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: code, message, workflow id and step."""
        return {
            "code": self.code,
            "message": self.message,
            "workflow_id": self.workflow_id,
            "step": self.step,
        }


class ConfigurationError(DurablyError):
    """A bad argument to :class:`durably.App` or a bad environment variable."""

    code = "bad_config"


class DatabaseUnavailableError(ConfigurationError):
    """The database cannot be opened or reached (server down, refused, not a SQLite file).

    A :class:`ConfigurationError`, as the URL may be wrong; the HTTP server answers it with 503
    and the CLI exits 5."""

    code = "db_unavailable"


class InvalidIdError(DurablyError):
    """A workflow id that is empty, too long or uses characters outside the allowed set."""

    code = "invalid_id"


class UnknownWorkflowError(DurablyError):
    """A workflow name that no ``@app.workflow`` registered and no live worker serves."""

    code = "unknown_workflow"


class WorkflowNotFoundError(DurablyError):
    """No workflow with this id exists in the store."""

    code = "workflow_not_found"


class ScheduleNotFoundError(DurablyError):
    """No schedule of that name exists (``durably schedules ls`` lists them)."""

    code = "schedule_not_found"

    def __init__(
        self,
        message: str,
        *,
        name: str = "",
        workflow_id: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, step=step)
        self.name = name
        """The schedule's name."""


class WorkflowIdConflictError(DurablyError):
    """A start with an id that an existing workflow of *another* name holds.

    Starting an existing id is idempotent only with the same workflow name (then it returns the
    existing workflow and runs nothing again); with another name nothing is written and this is
    raised. ``name`` is the name this start asked for, ``existing_name`` the workflow's. The HTTP
    API answers it with 409 (code ``id_conflict``) and the CLI exits 4.
    """

    code = "id_conflict"

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str | None = None,
        name: str = "",
        existing_name: str = "",
    ) -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.name = name
        self.existing_name = existing_name

    @classmethod
    def taken(cls, workflow_id: str, name: str, existing_name: str) -> WorkflowIdConflictError:
        """The error of a start of ``name`` on ``workflow_id``, held by ``existing_name``."""
        return cls(
            f"workflow id {workflow_id!r} is already taken by a workflow named "
            f"{existing_name!r}, so this start of {name!r} created nothing; an id is reused "
            f"idempotently only by the same workflow: start {name!r} with another id (or with "
            "none, for a random one)",
            workflow_id=workflow_id,
            name=name,
            existing_name=existing_name,
        )


class SerializationError(DurablyError):
    """A value (argument, result, error) cannot be encoded or decoded by the serializer."""

    code = "unserializable"


class PayloadTooLargeError(SerializationError):
    """An encoded value is larger than the configured ``max_payload_bytes``."""

    code = "payload_too_large"


class StepFailed(DurablyError):
    """Raised inside a workflow when a step failed for good (retries exhausted or non-retryable).

    Catch it to run compensation logic. ``error_type`` and ``error_message`` describe the last
    attempt's exception; ``attempts`` says how many attempts ran.
    """

    code = "step_failed"

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str | None = None,
        step: str | None = None,
        seq: int | None = None,
        attempts: int = 0,
        error_type: str = "",
        error_message: str = "",
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, step=step)
        self.seq = seq
        self.attempts = attempts
        self.error_type = error_type
        self.error_message = error_message


class StepTimeoutError(DurablyError):
    """One attempt of a step ran longer than the step's ``timeout``."""

    code = "step_timeout"


class NonDeterminismError(DurablyError):
    """Replay found the workflow code calling something other than what its journal recorded.

    The workflow is stopped in the ``needs_attention`` status and nothing is written past the
    point of divergence. Guard deliberate changes with ``durably.patched()``; otherwise deploy
    code that matches the journal (or fork/terminate the workflow).

    The first diverging call: ``seq`` and ``key`` (its branch and index), ``recorded`` (kind,
    name) in the journal, ``called`` (kind, name) by the code (None when the code ended without
    making the recorded call), and ``location`` (``file:line`` of the call in workflow code).
    """

    code = "non_determinism"

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str | None = None,
        step: str | None = None,
        seq: int | None = None,
        key: str | None = None,
        recorded: tuple[str, str] | None = None,
        called: tuple[str, str] | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, step=step)
        self.seq = seq
        self.key = key
        self.recorded = recorded
        self.called = called
        self.location = location


class WorkflowFailedError(DurablyError):
    """Raised by ``handle.result()`` when the workflow ended in a non-completed status."""

    code = "workflow_failed"

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str | None = None,
        status: str = "",
        error: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.status = status
        self.error = error or {}


class WorkflowTimeoutError(DurablyError, TimeoutError):
    """``handle.result(timeout=...)`` waited that long and the workflow has not finished."""

    code = "result_timeout"


class EventTimeoutError(DurablyError):
    """Raised inside a workflow by ``durably.wait_event(name, timeout=...)`` when the timeout
    passes before an event ``name`` arrives (pass ``default=`` to get a value back instead).

    Not a ``TimeoutError``: an uncaught one fails the workflow like any other error. ``event``
    is the event name and ``timeout`` the seconds waited.
    """

    code = "event_timeout"

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str | None = None,
        event: str = "",
        timeout: float | None = None,
    ) -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.event = event
        self.timeout = timeout


class NotInWorkflowError(DurablyError):
    """A workflow-only function (``durably.now()``, ``durably.run()``...) was called outside one."""

    code = "not_in_workflow"


class LeaseLostError(DurablyError):
    """This worker no longer owns the workflow (its lease expired and another worker took it)."""

    code = "lease_lost"


class WorkflowStateError(DurablyError):
    """The command does not apply to the workflow in its current status (e.g. sending an event to
    a completed workflow, purging a running one). The message says which status it is in."""

    code = "invalid_state"


class ChildWorkflowFailed(DurablyError):
    """Raised in a parent workflow when a child workflow it awaits did not complete.

    ``child_id``, ``status`` (failed, cancelled, terminated, needs_attention) and ``error`` (the
    child's error description) tell what happened. Catch it to handle the failure.

    Status ``not_started``: the child's id was already held by another workflow (a top-level
    one, another parent's child, one of another name), so no child was started; the
    :class:`WorkflowIdConflictError` is its ``__cause__``. Like any child outcome it is
    journaled: the parent's replays fail the same way.
    """

    code = "child_failed"

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str | None = None,
        child_id: str = "",
        status: str = "",
        error: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.child_id = child_id
        self.status = status
        self.error = error or {}


class Cancelled(BaseException):
    """Raised inside a workflow at its next durable point after ``app.cancel(id)``.

    A ``BaseException``, so ``except Exception`` does not swallow it, while ``try/finally`` and
    ``except durably.Cancelled`` blocks run (compensation steps may run there). If it propagates
    out of the workflow, the workflow ends ``cancelled``.
    """

    code = "cancelled"

    def __init__(self, message: str = "workflow cancelled", *, workflow_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.workflow_id = workflow_id
