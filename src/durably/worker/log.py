"""What a worker tells its operator: each workflow that ends badly, and why a workflow it was
running left it (a command, or a real loss of its lease to another worker)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from durably.storage.base import TERMINAL_STATUSES, WorkflowRecord, WorkflowStatus

__all__ = ["BAD_ENDS", "lease_loss", "log_bad_end"]

log = logging.getLogger("durably.worker")

BAD_ENDS = frozenset(
    {WorkflowStatus.FAILED, WorkflowStatus.NEEDS_ATTENTION, WorkflowStatus.CANCELLED}
)
"""The ends a worker records that an operator should hear about (at WARNING)."""


def log_bad_end(
    workflow_id: str,
    name: str,
    status: WorkflowStatus,
    error: str | None,
    decode_error: Callable[[str], dict[str, Any]] | None = None,
) -> None:
    """Log a workflow this worker ended failed, needs_attention or cancelled (WARNING): its id,
    name, status, error type and message, and the step where it is known. A needs_attention
    (non-determinism) message carries the divergence. ``decode_error`` reads the stored error
    (the App's codec, so a custom serializer's errors are read through it); JSON by default."""
    if status not in BAD_ENDS:
        return
    info = _error(error) if decode_error is None or error is None else decode_error(error)
    step = info.get("step")
    cause = ""
    if info.get("cause_type"):
        cause = f" (caused by {info['cause_type']}: {info.get('cause_message', '')})"
    log.warning(
        "workflow %s (%s) ended %s%s: %s: %s%s",
        workflow_id,
        name,
        status.value,
        "" if not step else f" at step {step!r}",
        info.get("type", "error"),
        info.get("message", ""),
        cause,
    )


def lease_loss(
    worker_id: str, workflow_id: str, rec: WorkflowRecord | None, known: bool = True
) -> tuple[int, str, str]:
    """Why a workflow this worker was running is no longer its own, from its record now
    (``known``: the record could be read; None then means purged): the log level, the log
    message and the reason its execution stops with.

    A command (terminate, suspend, purge...) is an expected outcome, logged at INFO; a real
    loss of the lease (this worker was presumed dead and another took over) is a WARNING.
    """
    if known and (
        rec is None or rec.status in TERMINAL_STATUSES or rec.status is WorkflowStatus.SUSPENDED
    ):
        what = "purged" if rec is None else f"{rec.status.value}"
        reason = f"workflow {workflow_id!r} was {what} by a command"
        return logging.INFO, f"{reason}; worker {worker_id} stops running it", reason
    holder = ""
    if rec is not None:
        holder = f" (now held by worker {rec.owner})" if rec.owner else " (its lease expired)"
    message = f"worker {worker_id} lost the lease of workflow {workflow_id}{holder}"
    return logging.WARNING, message, f"workflow {workflow_id!r}: lease lost by {worker_id}"


def _error(error: str | None) -> dict[str, Any]:
    try:
        info = json.loads(error or "{}")
    except ValueError:
        return {"message": error}
    return info if isinstance(info, dict) else {"message": str(info)}
