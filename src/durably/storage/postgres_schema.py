"""Numbered schema migrations for the PostgreSQL backend. Append only; never edit an applied one.

They mirror :mod:`durably.storage.sqlite_schema` version for version: the same tables, columns
and meaning (``double precision`` for times, ``bigint`` for integers, ``text`` for payloads).
"""

from __future__ import annotations

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE workflows (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    queue            TEXT NOT NULL DEFAULT 'default',
    priority         BIGINT NOT NULL DEFAULT 0,
    owner            TEXT,
    epoch            BIGINT NOT NULL DEFAULT 0,
    lease_expires_at DOUBLE PRECISION,
    wake_at          DOUBLE PRECISION,
    version          TEXT,
    parent_id        TEXT,
    created_at       DOUBLE PRECISION NOT NULL,
    updated_at       DOUBLE PRECISION NOT NULL,
    started_at       DOUBLE PRECISION,
    finished_at      DOUBLE PRECISION
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
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    result      TEXT,
    error       TEXT,
    attempts    BIGINT NOT NULL,
    owner       TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    started_at  DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (workflow_id, seq)
);

CREATE TABLE step_attempts (
    workflow_id TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    attempt     BIGINT NOT NULL,
    error       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    started_at  DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (workflow_id, seq, attempt, epoch)
);

CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    workflow_id  TEXT NOT NULL,
    name         TEXT NOT NULL,
    payload      TEXT,
    dedup_key    TEXT,
    consumed_seq BIGINT,
    created_at   DOUBLE PRECISION NOT NULL,
    UNIQUE (workflow_id, dedup_key)
);
CREATE INDEX events_inbox ON events (workflow_id, name, id);

CREATE TABLE state (
    workflow_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT,
    seq         BIGINT NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (workflow_id, key)
);

CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    spec          TEXT NOT NULL,
    input         TEXT NOT NULL,
    next_run_at   DOUBLE PRECISION,
    enabled       BIGINT NOT NULL DEFAULT 1,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    started_at   DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL,
    workflows    TEXT NOT NULL,
    queues       TEXT NOT NULL
);
""",
    2: """
ALTER TABLE workflows ADD COLUMN run BIGINT NOT NULL DEFAULT 1;
ALTER TABLE workflows ADD COLUMN parent_seq BIGINT;
ALTER TABLE workflows ADD COLUMN cancel_requested BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN cancel_seq BIGINT;
CREATE INDEX workflows_wake ON workflows (wake_at)
    WHERE status IN ('pending', 'running') AND owner IS NULL;
CREATE INDEX events_unconsumed ON events (workflow_id, id) WHERE consumed_seq IS NULL;
CREATE TABLE workflow_runs (
    workflow_id TEXT NOT NULL,
    run         BIGINT NOT NULL,
    input       TEXT NOT NULL,
    output      TEXT,
    status      TEXT NOT NULL,
    started_at  DOUBLE PRECISION,
    finished_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (workflow_id, run)
);
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
}
