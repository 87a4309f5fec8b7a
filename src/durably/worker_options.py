"""Deprecated alias of :mod:`durably.worker.options` (kept so that old imports work)."""

from durably.worker.options import WorkerOptions

__all__ = ["WorkerOptions"]
