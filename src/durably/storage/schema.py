"""The schema's numbered migrations, each defined once for every SQL dialect. Append only;
never edit an applied one.

The dialect differences are explicit slots (see :mod:`durably.storage.dialect`): ``{int}``
(SQLite ``INTEGER``, PostgreSQL ``BIGINT``), ``{real}`` (``REAL``, ``DOUBLE PRECISION``),
``{serial_pk}`` (an auto-incrementing key: ``INTEGER PRIMARY KEY AUTOINCREMENT``, ``BIGSERIAL
PRIMARY KEY``) and ``{without_rowid}`` (SQLite's clustered tables; nothing in PostgreSQL).
Rendered for SQLite, each is, to the character, the text earlier versions applied (SQLite keeps
that text in ``sqlite_master``).
"""

from __future__ import annotations

import functools

from durably.storage.dialect import POSTGRES, SQLITE, Dialect

__all__ = ["POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS", "TEMPLATES", "migrations"]

TEMPLATES: dict[int, str] = {
    1: """
CREATE TABLE workflows (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    queue            TEXT NOT NULL DEFAULT 'default',
    priority         {int} NOT NULL DEFAULT 0,
    owner            TEXT,
    epoch            {int} NOT NULL DEFAULT 0,
    lease_expires_at {real},
    wake_at          {real},
    version          TEXT,
    parent_id        TEXT,
    created_at       {real} NOT NULL,
    updated_at       {real} NOT NULL,
    started_at       {real},
    finished_at      {real}
);
CREATE INDEX workflows_runnable ON workflows (priority DESC, created_at)
    WHERE status IN ('pending', 'running');
CREATE INDEX workflows_owner ON workflows (owner) WHERE owner IS NOT NULL;
CREATE INDEX workflows_created ON workflows (created_at);
CREATE INDEX workflows_name_created ON workflows (name, created_at);
CREATE INDEX workflows_status_created ON workflows (status, created_at);
CREATE INDEX workflows_parent ON workflows (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE journal (
    workflow_id TEXT NOT NULL,
    seq         {int} NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    result      TEXT,
    error       TEXT,
    attempts    {int} NOT NULL,
    owner       TEXT NOT NULL,
    epoch       {int} NOT NULL,
    started_at  {real} NOT NULL,
    finished_at {real} NOT NULL,
    PRIMARY KEY (workflow_id, seq)
){without_rowid};

CREATE TABLE step_attempts (
    workflow_id TEXT NOT NULL,
    seq         {int} NOT NULL,
    attempt     {int} NOT NULL,
    error       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    epoch       {int} NOT NULL,
    started_at  {real} NOT NULL,
    finished_at {real} NOT NULL,
    PRIMARY KEY (workflow_id, seq, attempt, epoch)
){without_rowid};

CREATE TABLE events (
    id          {serial_pk},
    workflow_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    payload     TEXT,
    dedup_key   TEXT,
    consumed_seq {int},
    created_at  {real} NOT NULL,
    UNIQUE (workflow_id, dedup_key)
);
CREATE INDEX events_inbox ON events (workflow_id, name, id);

CREATE TABLE state (
    workflow_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT,
    seq         {int} NOT NULL,
    updated_at  {real} NOT NULL,
    PRIMARY KEY (workflow_id, key)
){without_rowid};

CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    spec          TEXT NOT NULL,
    input         TEXT NOT NULL,
    next_run_at   {real},
    enabled       {int} NOT NULL DEFAULT 1,
    created_at    {real} NOT NULL,
    updated_at    {real} NOT NULL
);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          {int} NOT NULL,
    started_at   {real} NOT NULL,
    heartbeat_at {real} NOT NULL,
    workflows    TEXT NOT NULL,
    queues       TEXT NOT NULL
);
""",
    2: """
ALTER TABLE workflows ADD COLUMN run {int} NOT NULL DEFAULT 1;
ALTER TABLE workflows ADD COLUMN parent_seq {int};
ALTER TABLE workflows ADD COLUMN cancel_requested {int} NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN cancel_seq {int};
CREATE INDEX workflows_wake ON workflows (wake_at)
    WHERE status IN ('pending', 'running') AND owner IS NULL;
CREATE INDEX events_unconsumed ON events (workflow_id, id) WHERE consumed_seq IS NULL;
CREATE TABLE workflow_runs (
    workflow_id TEXT NOT NULL,
    run         {int} NOT NULL,
    input       TEXT NOT NULL,
    output      TEXT,
    status      TEXT NOT NULL,
    started_at  {real},
    finished_at {real} NOT NULL,
    PRIMARY KEY (workflow_id, run)
){without_rowid};
""",
    3: """
ALTER TABLE journal ADD COLUMN key TEXT NOT NULL DEFAULT '';
UPDATE journal SET key = CAST(seq AS TEXT);
CREATE UNIQUE INDEX journal_key ON journal (workflow_id, key);
ALTER TABLE workflows ADD COLUMN cancel_key TEXT;
""",
    4: """
CREATE INDEX workflows_queue_admitted ON workflows (queue, status, priority DESC, created_at);
CREATE INDEX workflows_queue_started ON workflows (queue, started_at);
""",
    5: """
ALTER TABLE workers ADD COLUMN version TEXT;
ALTER TABLE workers ADD COLUMN auto_upgrade TEXT;
CREATE INDEX workflows_version ON workflows (version, status) WHERE version IS NOT NULL;
""",
    6: """
ALTER TABLE schedules ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE schedules ADD COLUMN overlap TEXT NOT NULL DEFAULT 'skip';
ALTER TABLE schedules ADD COLUMN catchup_window {real};
ALTER TABLE schedules ADD COLUMN jitter {real} NOT NULL DEFAULT 0;
ALTER TABLE schedules ADD COLUMN start_at {real};
ALTER TABLE schedules ADD COLUMN end_at {real};
ALTER TABLE schedules ADD COLUMN pause_reason TEXT;
ALTER TABLE schedules ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE schedules ADD COLUMN due_at {real};
ALTER TABLE schedules ADD COLUMN buffered_at {real};
ALTER TABLE schedules ADD COLUMN last_tick {real};
ALTER TABLE schedules ADD COLUMN last_workflow_id TEXT;
ALTER TABLE schedules ADD COLUMN last_result TEXT;
ALTER TABLE schedules ADD COLUMN missed {int} NOT NULL DEFAULT 0;
ALTER TABLE schedules ADD COLUMN revision {int} NOT NULL DEFAULT 0;
UPDATE schedules SET due_at = next_run_at;
CREATE INDEX schedules_due ON schedules (due_at) WHERE enabled = 1;
""",
    7: """
CREATE INDEX workflows_finished ON workflows (finished_at, id);
""",
}


@functools.cache
def migrations(dialect: Dialect) -> dict[int, str]:
    """The migrations as ``dialect`` runs them: version -> statements (separated by ``;\\n``)."""
    return {version: text.format(**dialect.slots) for version, text in TEMPLATES.items()}


SQLITE_MIGRATIONS = migrations(SQLITE)
POSTGRES_MIGRATIONS = migrations(POSTGRES)
