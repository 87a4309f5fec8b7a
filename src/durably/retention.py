"""Retention: how long finished workflows are kept before the workers purge them.

Set per App (``durably.App(..., retention=timedelta(days=30))``) and per workflow name
(``@app.workflow(retention=timedelta(days=7))``, overriding the App's); ``None`` keeps them
forever (the default). See :mod:`durably.worker.retention` for the pass that purges them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from durably.errors import ConfigurationError

__all__ = ["APP_DEFAULT", "AppDefault", "check_retention"]


class AppDefault:
    """The type of :data:`APP_DEFAULT`."""

    _instance: AppDefault | None = None

    def __new__(cls) -> AppDefault:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "durably.APP_DEFAULT"


APP_DEFAULT: Final = AppDefault()
"""``@app.workflow(retention=APP_DEFAULT)`` (the default): the App's retention applies."""


def check_retention(value: object, what: str) -> timedelta | None:
    """``value`` if it is a retention period (a positive :class:`~datetime.timedelta`) or None
    (keep forever); else a :class:`ConfigurationError` naming ``what`` and saying what to pass."""
    if value is None:
        return None
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ConfigurationError(
            f"{what} must be a positive datetime.timedelta (such as timedelta(days=30)) or "
            f"None to keep finished workflows forever, got {value!r}"
        )
    return value
