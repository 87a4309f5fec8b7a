"""Deprecated alias of :mod:`durably.worker.supervisor` (kept so that old imports work)."""

from durably.worker.supervisor import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    CHILD_ENV,
    GO,
    MAX_STARTUP_FAILURES,
    RESIGNAL_INTERVAL,
    STANDBY_ENV,
    STARTUP_GRACE,
    Supervisor,
    _Child,
    resolve_processes,
)

__all__ = [
    "BACKOFF_INITIAL",
    "BACKOFF_MAX",
    "CHILD_ENV",
    "GO",
    "MAX_STARTUP_FAILURES",
    "RESIGNAL_INTERVAL",
    "STANDBY_ENV",
    "STARTUP_GRACE",
    "Supervisor",
    "_Child",
    "resolve_processes",
]
