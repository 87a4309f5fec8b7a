"""The schema's migrations as PostgreSQL runs them (defined once in
:mod:`durably.storage.schema`: the same tables, columns and meaning, with ``double precision``
for times and ``bigint`` for integers)."""

from __future__ import annotations

from durably.storage.schema import POSTGRES_MIGRATIONS as MIGRATIONS

__all__ = ["MIGRATIONS"]
