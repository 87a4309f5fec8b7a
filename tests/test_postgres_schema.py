"""Where durably's tables go on PostgreSQL: a schema of their own (``durably`` by default, or
``?schema=``), never one PostgreSQL would rename or owns; a schema that already holds another
application's table of the same name is refused with a clear error, and nothing is changed."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

import durably
from durably.errors import ConfigurationError
from durably.storage.postgres import PostgresStore

from .backends import PG_URL, postgres_schema, require_postgres, schema_url

DURABLY = [sys.executable, "-m", "durably.cli"]


def tables(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    ).fetchall()
    return {str(r[0]) for r in rows}


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database (its ``public`` schema holds a user's ``events``
    table), dropped afterwards: the default schema is per database, so no other test sees it."""
    require_postgres()
    name = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_tables_default_to_the_durably_schema(fresh_database: str) -> None:
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.events (id int, what text)")
        conn.execute("INSERT INTO public.events VALUES (1, 'mine')")
    app = durably.App(fresh_database)

    @app.workflow(name="add")
    async def add(a: int, b: int) -> int:
        return a + b

    try:
        with app:
            assert app.start(add, 1, 2, id="a1").result(timeout=30) == 3
    finally:
        app.close()
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        assert {"workflows", "journal", "events", "durably_migrations"} <= tables(conn, "durably")
        assert tables(conn, "public") == {"events"}  # the user's own table, untouched
        assert conn.execute("SELECT * FROM public.events").fetchall() == [(1, "mine")]
    # an explicit ?schema= still wins
    store = PostgresStore(f"{fresh_database}?schema=elsewhere")
    try:
        store.migrate()
        assert store.schema == "elsewhere"
    finally:
        store.close()
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        assert "workflows" in tables(conn, "elsewhere")


@pytest.fixture
def taken_schema() -> Iterator[str]:
    """A fresh schema that holds a user's own ``events`` table (with a row)."""
    with postgres_schema() as schema:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".events (id int, what text)')
            conn.execute(f"INSERT INTO \"{schema}\".events VALUES (1, 'mine')")
        yield schema


def test_a_table_of_another_application_is_a_clear_error(taken_schema: str) -> None:
    url = schema_url(taken_schema)
    app = durably.App(url)
    with pytest.raises(ConfigurationError) as caught:
        app.list_workflows()
    message = str(caught.value)
    assert '"events" already exists' in message
    assert repr(taken_schema) in message
    assert "?schema=NAME" in message and "nothing was changed" in message
    app.close()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        assert tables(conn, taken_schema) == {"events"}  # rolled back: nothing of durably's
        rows = conn.execute(f'SELECT * FROM "{taken_schema}".events').fetchall()
        assert rows == [(1, "mine")]
    for command in (["migrate"], ["ls"]):
        proc = subprocess.run(
            [*DURABLY, *command, "--db", url], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert "DuplicateTable" not in proc.stderr
        assert '"events" already exists' in proc.stderr


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ("s" * 63 + "-mine", "68 bytes long"),
        ("information_schema", "system schema"),
        ("pg_catalog", "system schema"),
        ("pg_durably", "system schema"),
    ],
)
def test_schemas_postgresql_would_rename_or_owns_are_refused(schema: str, fragment: str) -> None:
    require_postgres()
    with pytest.raises(ConfigurationError, match=fragment):
        PostgresStore(PG_URL, schema=schema)
    with pytest.raises(ConfigurationError, match=fragment):
        PostgresStore(schema_url(schema))
    with pytest.raises(ConfigurationError, match=fragment):
        durably.App(schema_url(schema))
    proc = subprocess.run(
        [*DURABLY, "ls", "--db", schema_url(schema)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        # nothing was created: no table of durably's in the truncated name or a system schema
        assert not {"workflows", "journal", "durably_migrations"} & tables(conn, schema[:63])
