"""The schedule routes under ``/v1/schedules`` (list, create, get, update, delete, pause,
unpause, trigger, backfill): each one handler and one entry of :data:`OPERATIONS`."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from durably.errors import UnknownWorkflowError
from durably.schedules.spec import check_schedule_name

from . import schedule_models as sm
from .endpoint import Call, json_response
from .errors import ApiError
from .inputs import model_body, parse_time
from .operation import Body, Operation, Reply
from .routes import unknown_name

__all__ = ["OPERATIONS"]


def _ops(call: Call) -> Any:
    ops = getattr(call.app, "schedules", None)
    if ops is None:  # pragma: no cover (every App has them)
        raise ApiError("not_found", "this server's App has no schedules")
    return ops


def _name(call: Call) -> str:
    return check_schedule_name(call.param("name"))


def _changes(req: sm.ScheduleUpdate, call: Call) -> dict[str, Any]:
    changes = {k: v for k, v in req.model_dump(exclude_unset=True).items() if k != "name"}
    changes.pop("paused", None)
    codec = call.app.codec
    if "args" in changes:
        changes["args"] = tuple(codec.from_json(changes["args"] or []))
    if "kwargs" in changes:
        changes["kwargs"] = codec.from_json(changes["kwargs"] or {})
    for key in ("start_at", "end_at"):
        value = changes.get(key)
        if isinstance(value, str):
            changes[key] = parse_time(value, key)
    return {k: v for k, v in changes.items() if v is not None or k in ("cron", "every")}


def _info(info: Any, status: int = 200) -> Response:
    return json_response(info.to_dict(), status)


def _ticks(ticks: list[Any], status: int = 202) -> Response:
    body = [{"tick": t.tick.isoformat(), "workflow_id": t.workflow_id, "result": t.result}
            for t in ticks]  # fmt: skip
    return json_response({"ticks": body}, status)


def list_schedules(call: Call) -> Response:
    """GET /v1/schedules: every schedule with its next run and last result."""
    return json_response({"schedules": [i.to_dict() for i in _ops(call).list()]})


def create_schedule(call: Call) -> Response:
    """POST /v1/schedules: create a schedule, or update the stored one to this definition."""
    req = model_body(call.json(allow_empty=False), sm.ScheduleRequest)
    changes = _changes(req, call)
    workflow = changes.pop("workflow")
    try:
        return _info(_ops(call).create(req.name, workflow, paused=req.paused, **changes))
    except UnknownWorkflowError:  # its message names the database: say it in the API's words
        raise unknown_name(workflow) from None


def get_schedule(call: Call) -> Response:
    """GET /v1/schedules/{name}."""
    name = _name(call)
    return _info(_ops(call).get(name))


def update_schedule(call: Call) -> Response:
    """PATCH /v1/schedules/{name}: change its definition."""
    name = _name(call)
    req = model_body(call.json(allow_empty=False), sm.ScheduleUpdate)
    changes = _changes(req, call)
    try:
        return _info(_ops(call).update(name, **changes))
    except UnknownWorkflowError:
        raise unknown_name(str(changes.get("workflow"))) from None


def delete_schedule(call: Call) -> Response:
    """DELETE /v1/schedules/{name} (its workflows stay)."""
    name = _name(call)
    _ops(call).delete(name)
    return Response(status_code=204)


def pause_schedule(call: Call) -> Response:
    """POST /v1/schedules/{name}/pause."""
    name = _name(call)
    req = model_body(call.json(), sm.PauseRequest)
    return _info(_ops(call).pause(name, reason=req.reason))


def unpause_schedule(call: Call) -> Response:
    """POST /v1/schedules/{name}/unpause."""
    name = _name(call)
    return _info(_ops(call).unpause(name))


def trigger_schedule(call: Call) -> Response:
    """POST /v1/schedules/{name}/trigger: run it now."""
    name = _name(call)
    req = model_body(call.json(), sm.TriggerRequest)
    return _ticks([_ops(call).trigger(name, overlap=req.overlap)])


def backfill_schedule(call: Call) -> Response:
    """POST /v1/schedules/{name}/backfill: run the ticks of a time range."""
    name = _name(call)
    req = model_body(call.json(allow_empty=False), sm.BackfillRequest)
    start = req.start if isinstance(req.start, float) else parse_time(str(req.start), "start")
    end = req.end if isinstance(req.end, float) else parse_time(str(req.end), "end")
    return _ticks(_ops(call).backfill(name, start, end, overlap=req.overlap))


_NAME = {
    "name": {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {
            "type": "string",
            "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.:=+-]*$",
            "maxLength": 150,
        },
        "example": "nightly-report",
    }
}
_ERRORS = (400, 401, 404, 503)
_WITH_BODY = (*_ERRORS, 413, 415)
_ONE = "/v1/schedules/{name}"
_SCHEDULE = {200: Reply(sm.Schedule, "The schedule")}
_TICKS = {202: Reply(sm.TickList, "What each tick did")}

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/v1/schedules", list_schedules, "List schedules",
              {200: Reply(sm.ScheduleList, "Every schedule")}, (400, 401, 503)),
    Operation("POST", "/v1/schedules", create_schedule, "Create or update a schedule",
              _SCHEDULE, _WITH_BODY, body=Body(sm.ScheduleRequest)),
    Operation("GET", _ONE, get_schedule, "Get a schedule", _SCHEDULE, _ERRORS, _NAME),
    Operation("PATCH", _ONE, update_schedule, "Update a schedule", _SCHEDULE, _WITH_BODY, _NAME,
              body=Body(sm.ScheduleUpdate)),
    Operation("DELETE", _ONE, delete_schedule, "Delete a schedule",
              {204: Reply(None, "Deleted")}, _ERRORS, _NAME),
    Operation("POST", _ONE + "/pause", pause_schedule, "Pause a schedule", _SCHEDULE,
              _WITH_BODY, _NAME, body=Body(sm.PauseRequest, required=False)),
    Operation("POST", _ONE + "/unpause", unpause_schedule, "Unpause a schedule", _SCHEDULE,
              _ERRORS, _NAME),
    Operation("POST", _ONE + "/trigger", trigger_schedule, "Trigger a schedule now", _TICKS,
              _WITH_BODY, _NAME, body=Body(sm.TriggerRequest, required=False)),
    Operation("POST", _ONE + "/backfill", backfill_schedule, "Backfill a schedule", _TICKS,
              _WITH_BODY, _NAME, body=Body(sm.BackfillRequest)),
)  # fmt: skip
"""The schedule routes' operations."""
