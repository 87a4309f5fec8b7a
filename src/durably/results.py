"""Deprecated alias of :mod:`durably.app.results` (kept so that old imports work)."""

from durably.app.results import ResultPoller
from durably.storage.base import Ended

__all__ = ["Ended", "ResultPoller"]
