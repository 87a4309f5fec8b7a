"""Deprecated alias of :mod:`durably.app.lifecycle` (kept so that old imports work)."""

from durably.app.lifecycle import Commands, Lifecycle
from durably.limits import check_event, check_from_step

__all__ = ["Commands", "Lifecycle", "check_event", "check_from_step"]
