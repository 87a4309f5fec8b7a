"""A :class:`durably.Client`'s schedules (``client.schedules``): the operations of
``app.schedules`` over a server's ``/v1/schedules`` routes, checked here first as the App checks
them (a bad cron expression never leaves the process)."""

from __future__ import annotations

import builtins
import json
from datetime import datetime, timedelta
from typing import Any, Unpack

from durably.errors import (
    ConfigurationError,
    DurablyError,
    ScheduleNotFoundError,
    UnknownWorkflowError,
)
from durably.remote.transport import Transport, segment
from durably.schedules.firing import ScheduleTick
from durably.schedules.spec import (
    Schedule,
    ScheduleInfo,
    ScheduleOptions,
    check_changes,
    check_overlap,
    check_schedule_name,
)
from durably.serialization import JsonSerializer

__all__ = ["RemoteSchedules"]


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _epoch(value: Any, what: str) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigurationError(f"{what} must be timezone-aware over a Client, got {value!r}")
        return value.timestamp()
    return value


def _tick(data: dict[str, Any]) -> ScheduleTick:
    return ScheduleTick(datetime.fromisoformat(data["tick"]), data["workflow_id"], data["result"])


class RemoteSchedules:
    """The schedules of a server's App (see :class:`durably.app.schedules.ScheduleOperations`,
    whose methods these are)."""

    def __init__(self, http: Transport, serializer: JsonSerializer) -> None:
        self._http = http
        self._serializer = serializer

    def _path(self, name: str, suffix: str = "") -> str:
        return f"/v1/schedules/{segment(check_schedule_name(name))}{suffix}"

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        not_found: type[DurablyError] = ScheduleNotFoundError,
    ) -> Any:
        answer = self._http.request(
            method, path, body=body, not_found=not_found, idempotent=method == "GET"
        )
        return answer.body

    def _body(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` as the routes take them: seconds, epoch times, encoded arguments."""
        body: dict[str, Any] = {}
        for key, value in fields.items():
            if key in ("every", "catchup_window", "jitter"):
                value = _seconds(value)
            elif key in ("start_at", "end_at"):
                value = _epoch(value, key)
            elif key == "workflow" and not isinstance(value, str):
                value = getattr(value, "name", value)
            if key in ("args", "kwargs"):
                continue
            body[key] = value
        if "args" in fields or "kwargs" in fields:
            encoded = json.loads(
                self._serializer.encode_call(
                    tuple(fields.get("args") or ()),
                    dict(fields.get("kwargs") or {}),
                    workflow_id=None,
                    name=str(body.get("workflow", "")),
                )
            )
            if "args" in fields:
                body["args"] = encoded["args"]
            if "kwargs" in fields:
                body["kwargs"] = encoded["kwargs"]
        return body

    def list(self) -> list[ScheduleInfo]:
        """Every schedule, by name."""
        body = self._send("GET", "/v1/schedules")
        return [ScheduleInfo.from_dict(s) for s in body["schedules"]]

    def get(self, name: str) -> ScheduleInfo:
        """The schedule ``name``."""
        return ScheduleInfo.from_dict(self._send("GET", self._path(name)))

    def create(
        self, name: str, workflow: Any, /, **options: Unpack[ScheduleOptions]
    ) -> ScheduleInfo:
        """Create the schedule ``name``, or update the stored one to this definition (as
        ``app.schedule``)."""
        Schedule(name, workflow, **options)  # the App's checks, before anything is sent
        fields: dict[str, Any] = dict(options)
        paused = bool(fields.pop("paused", False))
        body = {k: v for k, v in self._body({"workflow": workflow, **fields}).items()
                if v is not None}  # fmt: skip
        return ScheduleInfo.from_dict(
            self._send(
                "POST",
                "/v1/schedules",
                {"name": name, "paused": paused, **body},
                UnknownWorkflowError,
            )
        )

    def update(self, name: str, **changes: Any) -> ScheduleInfo:
        """Change the schedule's definition (as ``app.schedules.update``)."""
        check_changes(changes)
        return ScheduleInfo.from_dict(self._send("PATCH", self._path(name), self._body(changes)))

    def pause(self, name: str, reason: str = "") -> ScheduleInfo:
        """Pause the schedule, with ``reason``."""
        return ScheduleInfo.from_dict(
            self._send("POST", self._path(name, "/pause"), {"reason": reason})
        )

    def unpause(self, name: str) -> ScheduleInfo:
        """Let a paused schedule tick again, from its next tick."""
        return ScheduleInfo.from_dict(self._send("POST", self._path(name, "/unpause")))

    def delete(self, name: str) -> None:
        """Delete the schedule (its workflows stay)."""
        self._send("DELETE", self._path(name))

    @staticmethod
    def _overlap(overlap: str | None) -> dict[str, Any]:
        if overlap is None:
            return {}
        check_overlap(overlap)
        return {"overlap": overlap}

    def trigger(self, name: str, *, overlap: str | None = None) -> ScheduleTick:
        """Run the schedule now."""
        body = self._send("POST", self._path(name, "/trigger"), self._overlap(overlap))
        return _tick(body["ticks"][0])

    def backfill(
        self,
        name: str,
        start: datetime | float,
        end: datetime | float,
        *,
        overlap: str | None = None,
    ) -> builtins.list[ScheduleTick]:
        """Run the schedule's ticks from ``start`` to ``end`` (aware datetimes or epoch
        seconds)."""
        body = {"start": float(_epoch(start, "start")), "end": float(_epoch(end, "end")),
                **self._overlap(overlap)}  # fmt: skip
        return [_tick(t) for t in self._send("POST", self._path(name, "/backfill"), body)["ticks"]]
