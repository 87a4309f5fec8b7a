"""Deprecated alias of :mod:`durably.worker.runtime` and :func:`durably.worker.leases.pid_alive`
(kept so that old imports work)."""

from durably.worker.leases import pid_alive
from durably.worker.runtime import WorkerRuntime

__all__ = ["WorkerRuntime", "pid_alive"]
