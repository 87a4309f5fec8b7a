"""The JSON forms of the schedule routes (``/v1/schedules``) as pydantic models: request bodies
are validated with them, the OpenAPI document's schemas are generated from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BackfillRequest",
    "PauseRequest",
    "Schedule",
    "ScheduleList",
    "ScheduleRequest",
    "ScheduleUpdate",
    "Tick",
    "TickList",
    "TriggerRequest",
]

OverlapPolicy = Literal["skip", "buffer_one", "allow_all", "cancel_previous", "terminate_previous"]
Seconds = Annotated[float, Field(ge=0, description="seconds")]
When = Annotated[
    float | str, Field(description="epoch seconds, or ISO-8601 (in the schedule's time zone")
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ScheduleUpdate(_Request):
    """PATCH /v1/schedules/{name}: the fields to change (``cron`` replaces ``every`` and the
    other way round; a change of when it ticks moves its next tick to the first after now)."""

    workflow: str | None = None
    cron: str | None = Field(default=None, examples=["0 3 * * *"])
    every: Seconds | None = None
    timezone: str | None = Field(default=None, examples=["Europe/Berlin"])
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    overlap: OverlapPolicy | None = None
    catchup_window: Seconds | None = None
    jitter: Seconds | None = None
    start_at: When | None = None
    end_at: When | None = None
    queue: str | None = None
    note: str | None = None


class ScheduleRequest(ScheduleUpdate):
    """POST /v1/schedules: create a schedule, or update the one of that name to this."""

    name: str = Field(examples=["nightly-report"])
    workflow: str = Field(examples=["report"])
    paused: bool = False


class PauseRequest(_Request):
    """POST /v1/schedules/{name}/pause."""

    reason: str = ""


class TriggerRequest(_Request):
    """POST /v1/schedules/{name}/trigger."""

    overlap: OverlapPolicy | None = None


class BackfillRequest(_Request):
    """POST /v1/schedules/{name}/backfill: run the ticks from ``start`` to ``end`` (inclusive)."""

    start: When
    end: When
    overlap: OverlapPolicy | None = None


class Schedule(BaseModel):
    """A stored schedule: its definition, its next tick and what its last tick did (times are
    ISO-8601 in its time zone; durations in seconds)."""

    name: str
    workflow: str
    cron: str | None
    every: float | None
    timezone: str
    overlap: OverlapPolicy
    catchup_window: float | None
    jitter: float | None
    start_at: str | None
    end_at: str | None
    paused: bool
    pause_reason: str | None
    note: str
    queue: str
    next_run_at: str | None
    buffered_tick: str | None
    last_tick: str | None
    last_workflow_id: str | None
    last_result: str | None
    missed: int
    input: str
    created_at: str
    updated_at: str


class ScheduleList(BaseModel):
    """GET /v1/schedules."""

    schedules: list[Schedule]


class Tick(BaseModel):
    """What one tick of a trigger or backfill did: ``started``, ``exists``, ``skipped`` or
    ``buffered``."""

    tick: str
    workflow_id: str
    result: str


class TickList(BaseModel):
    """The ticks of a trigger or a backfill."""

    ticks: list[Tick]
