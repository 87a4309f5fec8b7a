"""Deprecated alias of :mod:`durably.engine.execution` (kept so that old imports work)."""

from durably.engine.execution import Execution

WorkflowContext = Execution

__all__ = ["Execution", "WorkflowContext"]
