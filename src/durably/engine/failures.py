"""How errors are recorded in the journal and rebuilt on replay."""

from __future__ import annotations

import json
import traceback
from typing import Any

from durably import limits
from durably.errors import DurablyError, StepFailed

__all__ = ["dump_error", "error_info", "step_failed"]


def _type_name(exc: BaseException) -> str:
    t = type(exc)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def error_info(exc: BaseException, *, with_traceback: bool = True) -> dict[str, Any]:
    """A JSON-ready description of ``exc``: type, message, traceback, and durably's fields."""
    info: dict[str, Any] = {"type": _type_name(exc), "message": str(exc)}
    if isinstance(exc, DurablyError):
        info.update(code=exc.code, workflow_id=exc.workflow_id, step=exc.step)
    if isinstance(exc, StepFailed):
        info.update(
            seq=exc.seq, attempts=exc.attempts,
            cause_type=exc.error_type, cause_message=exc.error_message,
        )  # fmt: skip
    if with_traceback:
        info["traceback"] = "".join(traceback.format_exception(exc))
    return info


def dump_error(info: dict[str, Any]) -> str:
    """Encode an error description as JSON text (for the journal and the workflows table)."""
    # a message or traceback may hold lone surrogates: shown as U+FFFD, so it can be stored
    return limits.readable(json.dumps(info, ensure_ascii=False, default=repr))


def step_failed(
    workflow_id: str, step: str, seq: int, info: dict[str, Any], attempts: int
) -> StepFailed:
    """The :class:`StepFailed` a workflow sees for a step whose last attempt raised ``info``."""
    return StepFailed(
        f"step {step!r} (seq {seq}) of workflow {workflow_id!r} failed after {attempts} "
        f"attempt(s): {info.get('type')}: {info.get('message')}",
        workflow_id=workflow_id,
        step=step,
        seq=seq,
        attempts=attempts,
        error_type=str(info.get("type", "")),
        error_message=str(info.get("message", "")),
    )
