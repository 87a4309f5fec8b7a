"""The replay runtime: runs workflow code against its journal. No I/O of its own: it writes
through a :class:`~durably.engine.runtime.Runtime` that a worker (or a test) provides."""

from durably.engine.context import WorkflowContext
from durably.engine.execute import Outcome, execute
from durably.engine.runtime import Runtime

__all__ = ["Outcome", "Runtime", "WorkflowContext", "execute"]
