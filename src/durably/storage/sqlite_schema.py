"""Numbered schema migrations for the SQLite backend. Append only; never edit an applied one."""

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
    priority         INTEGER NOT NULL DEFAULT 0,
    owner            TEXT,
    epoch            INTEGER NOT NULL DEFAULT 0,
    lease_expires_at REAL,
    wake_at          REAL,
    version          TEXT,
    parent_id        TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL
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
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    result      TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL,
    owner       TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (workflow_id, seq)
) WITHOUT ROWID;

CREATE TABLE step_attempts (
    workflow_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    error       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (workflow_id, seq, attempt, epoch)
) WITHOUT ROWID;

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    payload     TEXT,
    dedup_key   TEXT,
    consumed_seq INTEGER,
    created_at  REAL NOT NULL,
    UNIQUE (workflow_id, dedup_key)
);
CREATE INDEX events_inbox ON events (workflow_id, name, id);

CREATE TABLE state (
    workflow_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT,
    seq         INTEGER NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (workflow_id, key)
) WITHOUT ROWID;

CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    spec          TEXT NOT NULL,
    input         TEXT NOT NULL,
    next_run_at   REAL,
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    workflows    TEXT NOT NULL,
    queues       TEXT NOT NULL
);
""",
    2: """
ALTER TABLE workflows ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
ALTER TABLE workflows ADD COLUMN parent_seq INTEGER;
ALTER TABLE workflows ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN cancel_seq INTEGER;
CREATE INDEX workflows_wake ON workflows (wake_at)
    WHERE status IN ('pending', 'running') AND owner IS NULL;
CREATE INDEX events_unconsumed ON events (workflow_id, id) WHERE consumed_seq IS NULL;
CREATE TABLE workflow_runs (
    workflow_id TEXT NOT NULL,
    run         INTEGER NOT NULL,
    input       TEXT NOT NULL,
    output      TEXT,
    status      TEXT NOT NULL,
    started_at  REAL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (workflow_id, run)
) WITHOUT ROWID;
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
