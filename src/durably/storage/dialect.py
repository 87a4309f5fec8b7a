"""How each SQL backend spells what differs: one statement text, rendered once per dialect.

Statements are written once (in :mod:`~durably.storage.sql_ops`,
:mod:`~durably.storage.sql_commands`, :mod:`~durably.storage.sql_store` and
:mod:`~durably.storage.schema`) with ``?`` placeholders and a few named slots, and a
:class:`Dialect` renders them (:meth:`Dialect.sql`) when a store is built: no string is built per
call. The slots:

``{in}``
    membership in a list of ids bound as one parameter (:meth:`Dialect.ids`): SQLite reads a
    JSON array (``IN (SELECT value FROM json_each(?))``), PostgreSQL an array (``= ANY(?)``).
``{id_rows}``
    such a list as a table of one column ``id`` (aliased ``q``).
``{lock}``
    the row lock a fenced read takes (PostgreSQL ``FOR NO KEY UPDATE``; nothing in SQLite,
    whose single writer serializes every write transaction).
``{skip_locked}``
    how a claim skips rows another transaction holds (PostgreSQL ``FOR UPDATE SKIP LOCKED``).
``{greatest}``, ``{bytewise}``
    the two-argument maximum, and the collation that orders text bytewise.
``{int}``, ``{real}``, ``{serial_pk}``, ``{without_rowid}``
    column types and table options of the migrations.

:meth:`Dialect.notify` wakes listening workers at commit (PostgreSQL ``pg_notify``; SQLite has no
listeners and does nothing): the shared statements call it wherever they make work runnable.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

__all__ = [
    "CHANNEL",
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "PostgresDialect",
    "SqliteDialect",
]

CHANNEL = "durably"
"""The LISTEN/NOTIFY channel. A payload is ``<schema>:<kind>``: stores in other schemas of the
same database share the channel and ignore each other's wake-ups."""


class Dialect:
    """One backend's spelling of the shared statements (see the module docstring)."""

    name = ""
    mark = "?"
    """The driver's parameter placeholder."""
    row_locks = False
    """Whether writers lock rows (and must take multi-row locks in id order before changing
    rows), rather than being serialized by the database as a whole."""
    slots: dict[str, str] = {}
    """What each named slot of a statement becomes."""
    queue_lock: str | None = None
    """The statement that serializes admissions to one queue (parameter: the queue), if any."""
    migration_lock: str | None = None
    """The statement that serializes migrating processes, if the transaction does not."""

    def sql(self, text: str) -> str:
        """``text`` with its slots filled and its ``?`` placeholders in the driver's style."""
        rendered = text.format(**self.slots) if "{" in text else text
        return rendered if self.mark == "?" else rendered.replace("?", self.mark)

    def ids(self, values: Collection[str]) -> Any:
        """A list of ids (or names) as the one parameter of an ``{in}`` or ``{id_rows}`` slot."""
        raise NotImplementedError

    def indexed(self, index: str) -> str:
        """The hint that makes a query use ``index`` (SQLite without ANALYZE statistics may
        otherwise pick one that cannot serve the ORDER BY); empty where none is needed."""
        return ""

    def notify(self, conn: Any, kinds: Collection[str]) -> None:
        """Wake listening workers (``kinds``: what is new) when ``conn``'s transaction commits."""


class SqliteDialect(Dialect):
    """SQLite: ``?``, JSON arrays for id lists, one writer at a time, no notifications."""

    name = "sqlite"
    slots = {
        "in": "IN (SELECT value FROM json_each(?))",
        "id_rows": "(SELECT value AS id FROM json_each(?)) AS q",
        "lock": "",
        "skip_locked": "",
        "greatest": "MAX",
        "bytewise": "",
        "int": "INTEGER",
        "real": "REAL",
        "serial_pk": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "without_rowid": " WITHOUT ROWID",
    }

    def ids(self, values: Collection[str]) -> Any:
        return json.dumps(values if isinstance(values, list) else list(values))

    def indexed(self, index: str) -> str:
        return f" INDEXED BY {index}"


class PostgresDialect(Dialect):
    """PostgreSQL: ``%s``, text arrays for id lists, row locks, NOTIFY at commit."""

    name = "postgres"
    mark = "%s"
    row_locks = True
    slots = {
        "in": "= ANY(?::text[])",
        "id_rows": "unnest(?::text[]) AS q(id)",
        "lock": " FOR NO KEY UPDATE",
        "skip_locked": " FOR UPDATE SKIP LOCKED",
        "greatest": "GREATEST",
        "bytewise": ' COLLATE "C"',
        "int": "BIGINT",
        "real": "DOUBLE PRECISION",
        "serial_pk": "BIGSERIAL PRIMARY KEY",
        "without_rowid": "",
    }
    queue_lock = (
        "SELECT pg_advisory_xact_lock(hashtext('durably.queue.' || current_schema() || '.' || %s))"
    )
    """A transaction-scoped advisory lock per (schema, queue): under READ COMMITTED the counts
    that follow see every admission committed before the lock was granted."""
    migration_lock = (
        "SELECT pg_advisory_xact_lock(hashtext('durably.migrate.' || current_schema()))"
    )
    _notify = "SELECT pg_notify('" + CHANNEL + "', COALESCE(current_schema(), '') || ':' || %s)"

    def ids(self, values: Collection[str]) -> Any:
        return values if isinstance(values, list) else list(values)

    def notify(self, conn: Any, kinds: Collection[str]) -> None:
        """PostgreSQL delivers a notification only at commit and folds duplicates in one
        transaction; each kind is sent once, in a fixed order."""
        for kind in sorted(set(kinds)):
            conn.execute(self._notify, (kind,))


SQLITE = SqliteDialect()
"""The SQLite dialect."""
POSTGRES = PostgresDialect()
"""The PostgreSQL dialect."""
