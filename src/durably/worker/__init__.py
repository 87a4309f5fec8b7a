"""The worker: one process's host of workflow executions (see :mod:`durably.worker.core`).

Loaded only when a worker is made (``App.start_worker``, ``durably worker``): ``import
durably`` does not import it.
"""

from durably.worker.core import Worker
from durably.worker.options import WorkerOptions

__all__ = ["Worker", "WorkerOptions"]
