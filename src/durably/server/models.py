"""The HTTP API's JSON forms as pydantic models: the OpenAPI document's schemas are generated
from them (:mod:`durably.server.openapi`) and request bodies are validated with them
(:mod:`durably.server.inputs`).

The forms themselves are made by :mod:`durably.jsonforms` (shared with the CLI and the remote
client, which need no pydantic); ``tests/server/test_models.py`` checks that what it makes
validates against these models.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from durably.errors import DurablyError
from durably.ids import validate_workflow_id
from durably.limits import check_from_step
from durably.storage.base import WorkflowStatus

__all__ = [
    "ID_PATTERN",
    "REQUEST_MODELS",
    "RESPONSE_MODELS",
    "DaprError",
    "Error",
    "EventRequest",
    "ForkRequest",
    "StartRequest",
    "TerminateRequest",
]

ID_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_.:@=+-]*$"
"""A workflow id (``durably.ids.validate_workflow_id`` is the check; this is its shape)."""


def _check(check: Callable[[Any], Any], what: str = "") -> AfterValidator:
    """A validator running one of durably's own checks (the embedded App's), its message kept:
    ``what`` prefixes it."""

    def run(value: Any) -> Any:
        if value is None:
            return value
        try:
            checked = check(value)
        except DurablyError as exc:
            raise ValueError(f"{what}{exc.message}") from None
        return value if checked is None else checked

    return AfterValidator(run)


def _non_empty(message: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value:
            raise ValueError(message)
        return value

    return check


AnyJson = Annotated[Any, Field(description="any JSON value")]
Preview = Annotated[
    str | None,
    Field(max_length=200, description="the start of the stored JSON text, ending in '…' when cut"),
]
WorkflowId = Annotated[
    str,
    Field(json_schema_extra={"pattern": ID_PATTERN, "maxLength": 200}),
    _check(validate_workflow_id, "workflow id: "),
]
DaprStatus = Literal[
    "RUNNING",
    "COMPLETED",
    "CONTINUED_AS_NEW",
    "FAILED",
    "CANCELED",
    "TERMINATED",
    "PENDING",
    "SUSPENDED",
]


class _Request(BaseModel):
    """A request body: unknown fields are refused (a typo would else be ignored)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- requests -----------------------------------------------------------------------------------


class StartRequest(_Request):
    """POST /v1/workflows."""

    name: Annotated[
        str,
        Field(
            description="registered workflow name",
            examples=["greet"],
            json_schema_extra={"minLength": 1},
        ),
        AfterValidator(_non_empty("field 'name' must be a non-empty workflow name")),
    ]
    args: list[AnyJson] = Field(default_factory=list)
    kwargs: dict[str, AnyJson] = Field(default_factory=dict)
    id: WorkflowId | None = None
    queue: str | None = Field(default=None, description="queue name")
    priority: int = Field(default=0, json_schema_extra={"minimum": -(2**31), "maximum": 2**31 - 1})
    """Its range is checked by ``durably.limits``, as for the embedded App."""


class EventRequest(_Request):
    """POST /v1/workflows/{id}/events/{event}."""

    data: AnyJson = None
    dedup_key: (
        Annotated[
            str,
            Field(json_schema_extra={"minLength": 1}),
            AfterValidator(_non_empty("dedup_key must be a non-empty string or null")),
        ]
        | None
    ) = None


class TerminateRequest(_Request):
    """POST /v1/workflows/{id}/terminate."""

    reason: str = "terminated"


class ForkRequest(_Request):
    """POST /v1/workflows/{id}/fork."""

    from_step: Annotated[int, Field(json_schema_extra={"minimum": 0}), _check(check_from_step)]
    new_id: (
        Annotated[
            str,
            Field(json_schema_extra={"pattern": ID_PATTERN, "maxLength": 200}),
            _check(validate_workflow_id, "new_id: "),
        ]
        | None
    ) = None


# -- responses ----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """What went wrong: a stable code and a message that says what to do."""

    code: str
    message: str


class Error(BaseModel):
    """An error answer of the native API."""

    error: ErrorDetail


class DaprError(BaseModel):
    """An error answer of the Dapr routes."""

    errorCode: str
    message: str
    error: ErrorDetail | None = None


class _WorkflowBase(BaseModel):
    id: str
    name: str
    status: WorkflowStatus
    summary: bool = Field(description="true on a listed workflow: input, output and error left out")
    input_preview: Preview
    output_preview: Preview
    error_preview: Preview
    created_at: datetime
    created_at_epoch: float = Field(
        description="the exact stored creation time in epoch seconds "
        "(created_at is it rounded to the microsecond)"
    )
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    owner: str | None
    epoch: int
    queue: str
    priority: int
    parent_id: str | None
    run: int
    wake_at: datetime | None
    unserved: bool
    version: str | None = Field(
        default=None, description="the version of the app's code it started under"
    )


class Workflow(_WorkflowBase):
    """A workflow with its payloads."""

    input: AnyJson
    output: AnyJson
    error: dict[str, Any] | None


class WorkflowSummary(_WorkflowBase):
    """A listed workflow: previews of its payloads, not the payloads (GET /v1/workflows/{id}
    has them)."""


class WorkflowList(BaseModel):
    """One page of workflows."""

    workflows: list[WorkflowSummary]
    next_cursor: str | None


class Children(BaseModel):
    """A workflow's children."""

    workflows: list[Workflow]


class Result(BaseModel):
    """A result poll: ``done`` and, when done, the output and error."""

    id: str
    status: WorkflowStatus
    done: bool
    output: AnyJson = None
    error: dict[str, Any] | None = None


class HistoryEntry(BaseModel):
    """A journal entry."""

    seq: int
    kind: str
    name: str
    status: str
    result: AnyJson
    error: dict[str, Any] | None
    attempts: int
    started_at: datetime
    finished_at: datetime
    owner: str
    epoch: int
    failed_attempts: list[dict[str, Any]]


class History(BaseModel):
    """A workflow's journal."""

    entries: list[HistoryEntry]


class Run(BaseModel):
    """An earlier run of a workflow (it ended with continue_as_new)."""

    run: int
    status: WorkflowStatus
    input: AnyJson = None
    output: AnyJson = None
    started_at: datetime | None = None
    finished_at: datetime


class Runs(BaseModel):
    """A workflow's earlier runs, oldest first."""

    runs: list[Run]


class State(BaseModel):
    """A workflow's published state."""

    state: dict[str, AnyJson]


class CommandResult(BaseModel):
    """A lifecycle command applied: the status after it."""

    id: str
    status: WorkflowStatus


class Delivered(BaseModel):
    """An event sent (``delivered`` false: a duplicate of its dedup key)."""

    delivered: bool


class Worker(BaseModel):
    """A worker process's registration."""

    id: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    workflows: list[str]
    queues: list[str]
    version: str | None = Field(default=None, description="the version of the code it runs")
    auto_upgrade: list[str] = Field(
        default_factory=list, description="workflow names it runs whatever their version"
    )


class Workers(BaseModel):
    """Worker processes."""

    workers: list[Worker]


class VersionCount(BaseModel):
    """One version's unfinished workflows."""

    version: str | None = Field(description="the version (null: started with no version)")
    unfinished: int = Field(description="unfinished workflows (any status but a final one)")
    statuses: dict[str, int] = Field(description="the unfinished workflows by status")


class Versions(BaseModel):
    """Unfinished workflows per version."""

    versions: list[VersionCount]


class Status(BaseModel):
    """A health answer."""

    status: str


class DaprStarted(BaseModel):
    """A Dapr start's answer."""

    instanceID: str


class DaprWorkflow(BaseModel):
    """A workflow as Dapr's API shows it."""

    instanceID: str
    workflowName: str
    createdAt: datetime
    lastUpdatedAt: datetime
    runtimeStatus: DaprStatus
    properties: dict[str, str]


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    StartRequest,
    EventRequest,
    TerminateRequest,
    ForkRequest,
)
"""The request bodies' models."""

RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Error,
    DaprError,
    Workflow,
    WorkflowSummary,
    WorkflowList,
    Children,
    Result,
    History,
    Runs,
    State,
    CommandResult,
    Delivered,
    Workers,
    Versions,
    Status,
    DaprStarted,
    DaprWorkflow,
)
"""The response bodies' models (their parts come along as ``$defs``)."""
