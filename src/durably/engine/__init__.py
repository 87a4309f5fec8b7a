"""The replay runtime: runs workflow code against its journal. No I/O of its own: it writes
through a :class:`~durably.engine.runtime.Runtime` that a worker (or a test) provides."""

from durably.engine.execute import Outcome, execute
from durably.engine.execution import Execution
from durably.engine.runtime import Runtime

WorkflowContext = Execution
"""Deprecated name of :class:`Execution`."""

__all__ = ["Execution", "Outcome", "Runtime", "WorkflowContext", "execute"]
