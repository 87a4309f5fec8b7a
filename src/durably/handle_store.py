"""Deprecated alias of :mod:`durably.app.handles` (kept so that old imports work)."""

from durably.app.handles import LocalHandleSource

StoreHandleSource = LocalHandleSource

__all__ = ["LocalHandleSource", "StoreHandleSource"]
