"""The schema's migrations as SQLite runs them (defined once in :mod:`durably.storage.schema`)."""

from __future__ import annotations

from durably.storage.schema import SQLITE_MIGRATIONS as MIGRATIONS

__all__ = ["MIGRATIONS"]
