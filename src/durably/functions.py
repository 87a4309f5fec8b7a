"""Deprecated alias of :mod:`durably.workflow_api` (kept so that old imports work)."""

from durably.workflow_api import *  # noqa: F403
from durably.workflow_api import __all__ as __all__
