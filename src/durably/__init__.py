"""durably: durable execution for plain Python functions.

Workflows are ordinary functions; every step they call is checkpointed in a journal, so a
workflow survives crashes, restarts and deploys, resumes where it stopped, and never repeats a
completed step. Embedded SQLite by default; no server needed.
"""

from durably.app import App
from durably.definitions import Step, Workflow
from durably.errors import (
    ConfigurationError,
    DurablyError,
    InvalidIdError,
    LeaseLostError,
    NonDeterminismError,
    NotInWorkflowError,
    PayloadTooLargeError,
    SerializationError,
    StepFailed,
    StepTimeoutError,
    UnknownWorkflowError,
    WorkflowFailedError,
    WorkflowNotFoundError,
    WorkflowTimeoutError,
)
from durably.functions import now, random, run, step_context, submit, uuid4, workflow_id
from durably.handle import HistoryEntry, WorkflowHandle, WorkflowInfo
from durably.retry import Retry
from durably.scope import StepContext, StepFuture
from durably.serialization import JsonSerializer, Serializer
from durably.storage.base import WorkflowStatus
from durably.worker import WorkerOptions

__version__ = "0.1.0"

__all__ = [
    "App",
    "ConfigurationError",
    "DurablyError",
    "HistoryEntry",
    "InvalidIdError",
    "JsonSerializer",
    "LeaseLostError",
    "NonDeterminismError",
    "NotInWorkflowError",
    "PayloadTooLargeError",
    "Retry",
    "SerializationError",
    "Serializer",
    "Step",
    "StepContext",
    "StepFailed",
    "StepFuture",
    "StepTimeoutError",
    "UnknownWorkflowError",
    "WorkerOptions",
    "Workflow",
    "WorkflowFailedError",
    "WorkflowHandle",
    "WorkflowInfo",
    "WorkflowNotFoundError",
    "WorkflowStatus",
    "WorkflowTimeoutError",
    "__version__",
    "now",
    "random",
    "run",
    "step_context",
    "submit",
    "uuid4",
    "workflow_id",
]
