"""The worker: one process's host of workflow executions (see :mod:`durably.worker.core`).

Loaded only when needed: ``import durably`` does not import this package, and importing it (for
:class:`WorkerOptions`, or the supervisor) loads the worker itself, and with it the replay
engine, only on first use of :class:`Worker`.
"""

from typing import TYPE_CHECKING, Any

from durably.worker.options import WorkerOptions

if TYPE_CHECKING:
    from durably.worker.core import Worker

__all__ = ["Worker", "WorkerOptions"]


def __getattr__(name: str) -> Any:
    if name == "Worker":
        from durably.worker.core import Worker

        return Worker
    raise AttributeError(f"module 'durably.worker' has no attribute {name!r}")
