"""The database backends the tests run on, chosen by environment variables (one place for all).

- ``DURABLY_TEST_BACKENDS``: comma-separated backends of the backend-parametrized tests
  (``db_url``, the store contract, the end-to-end tests); ``sqlite,postgres`` unless set. With
  ``sqlite`` alone the PostgreSQL-only tests are skipped too; tests of SQLite specifics (file
  locking, WAL, migrations of SQLite files, the virtual-clock WorkflowEnvironment) always run.
- ``DURABLY_TEST_POSTGRES_URL``: the PostgreSQL server; each test uses a fresh schema in it.
- ``DURABLY_SKIP_POSTGRES=1``: skip the PostgreSQL variants instead of failing when the server
  is unreachable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

KNOWN_BACKENDS = ("sqlite", "postgres")
DEFAULT_BACKENDS = "sqlite,postgres"
PG_URL = os.environ.get("DURABLY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def parse_backends(value: str | None) -> list[str]:
    """The backends named in ``value`` (``DURABLY_TEST_BACKENDS``), in order, without repeats.

    Raises ValueError naming the bad entry and the known backends.
    """
    if value is None:
        value = DEFAULT_BACKENDS
    names: list[str] = []
    for part in value.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in KNOWN_BACKENDS:
            raise ValueError(
                f"DURABLY_TEST_BACKENDS={value!r}: unknown backend {name!r} "
                f"(known: {', '.join(KNOWN_BACKENDS)}; default {DEFAULT_BACKENDS!r})"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(
            f"DURABLY_TEST_BACKENDS={value!r} names no backend "
            f"(known: {', '.join(KNOWN_BACKENDS)}; default {DEFAULT_BACKENDS!r})"
        )
    return names


try:
    BACKENDS = parse_backends(os.environ.get("DURABLY_TEST_BACKENDS"))
    BACKENDS_ERROR: str | None = None
except ValueError as exc:  # reported by tests/conftest.py as a pytest.UsageError
    BACKENDS = []
    BACKENDS_ERROR = str(exc)


def require_postgres() -> None:
    """Skip the calling (PostgreSQL-only) test when PostgreSQL is not selected or skipped."""
    if "postgres" not in BACKENDS:
        selected = os.environ.get("DURABLY_TEST_BACKENDS")
        pytest.skip(f"PostgreSQL test: DURABLY_TEST_BACKENDS={selected!r} excludes postgres")
    if os.environ.get("DURABLY_SKIP_POSTGRES") == "1":
        pytest.skip("DURABLY_SKIP_POSTGRES=1: PostgreSQL variant skipped on request")


def schema_url(schema: str, base: str = PG_URL) -> str:
    """``base`` with ``schema=`` added to its query."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema={schema}"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema name ``t_<uuid hex>``, dropped (with everything in it) afterwards.

    Skips when PostgreSQL is excluded (DURABLY_TEST_BACKENDS) or DURABLY_SKIP_POSTGRES=1; else
    fails at once (before the test runs) when the server is unreachable.
    """
    require_postgres()
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=10):
        pass  # reachable: an unreachable server is the setup's clear error, not the test's
    schema = f"t_{uuid.uuid4().hex}"
    try:
        yield schema
    finally:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
