"""durably: durable execution for plain Python functions.

Workflows are ordinary functions; every step they call is checkpointed in a journal, so a
workflow survives crashes, restarts and deploys, resumes where it stopped, and never repeats a
completed step. Embedded SQLite by default; no server needed.

This module is the public API: it re-exports names from every layer of the package. Which
module may import which is in the README ("Package layout"), checked by tests/test_layers.py.
"""

import typing as _typing

from durably import workflow_api as _workflow_api
from durably.app import App
from durably.bulk import BulkFilter, BulkResult
from durably.codec import Undecodable
from durably.codecs import PayloadCodec
from durably.definitions import Step, Workflow
from durably.errors import (
    Cancelled,
    ChildWorkflowFailed,
    ConfigurationError,
    DurablyError,
    EventTimeoutError,
    InvalidIdError,
    LeaseLostError,
    NonDeterminismError,
    NotInWorkflowError,
    PayloadTooLargeError,
    ScheduleNotFoundError,
    SerializationError,
    StepFailed,
    StepTimeoutError,
    UnknownWorkflowError,
    WorkflowFailedError,
    WorkflowIdConflictError,
    WorkflowNotFoundError,
    WorkflowStateError,
    WorkflowTimeoutError,
)
from durably.handle import HistoryEntry, RunInfo, WorkflowHandle, WorkflowInfo
from durably.operations import WorkflowOperations
from durably.queues import Queue
from durably.retention import APP_DEFAULT
from durably.retry import Retry
from durably.saga import Saga
from durably.schedules import Schedule, ScheduleInfo, ScheduleTick
from durably.scope import ChildHandle, StepContext, StepFuture
from durably.serialization import JsonSerializer, Serializer
from durably.storage.base import WorkerInfo, WorkflowStatus
from durably.version import __version__
from durably.waitables import Fired
from durably.workflow_api import *  # noqa: F403 (the functions workflow code calls)

if _typing.TYPE_CHECKING:
    from durably.client import Client
    from durably.worker.options import WorkerOptions


def __getattr__(name: str) -> _typing.Any:
    # the HTTP client (http.client, email...) is imported on first use: a worker never needs it
    if name == "Client":
        from durably.client import Client

        return Client
    # the worker (and with it the replay engine's host) is imported when a worker is made
    if name == "WorkerOptions":
        from durably.worker.options import WorkerOptions

        return WorkerOptions
    raise AttributeError(f"module 'durably' has no attribute {name!r}")


__all__ = [
    "APP_DEFAULT",
    "App",
    "BulkFilter",
    "BulkResult",
    "Cancelled",
    "ChildHandle",
    "ChildWorkflowFailed",
    "Client",
    "ConfigurationError",
    "DurablyError",
    "EventTimeoutError",
    "Fired",
    "HistoryEntry",
    "InvalidIdError",
    "JsonSerializer",
    "LeaseLostError",
    "NonDeterminismError",
    "NotInWorkflowError",
    "PayloadCodec",
    "PayloadTooLargeError",
    "Queue",
    "Retry",
    "RunInfo",
    "Saga",
    "Schedule",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "ScheduleTick",
    "SerializationError",
    "Serializer",
    "Step",
    "StepContext",
    "StepFailed",
    "StepFuture",
    "StepTimeoutError",
    "Undecodable",
    "UnknownWorkflowError",
    "WorkerInfo",
    "WorkerOptions",
    "Workflow",
    "WorkflowFailedError",
    "WorkflowHandle",
    "WorkflowIdConflictError",
    "WorkflowInfo",
    "WorkflowNotFoundError",
    "WorkflowOperations",
    "WorkflowStateError",
    "WorkflowStatus",
    "WorkflowTimeoutError",
    "__version__",
]
__all__ += _workflow_api.__all__
