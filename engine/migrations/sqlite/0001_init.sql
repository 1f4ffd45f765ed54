-- weft's store on SQLite. Timestamps are RFC 3339 text (UTC); JSON columns are text.

CREATE TABLE workflows (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    source_hash TEXT    NOT NULL,
    path        TEXT,
    created_at  TEXT    NOT NULL,
    UNIQUE (name, version)
);

CREATE TABLE executions (
    id               TEXT    PRIMARY KEY,
    workflow_id      INTEGER NOT NULL REFERENCES workflows (id),
    workflow_name    TEXT    NOT NULL,
    workflow_version INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    org              TEXT    NOT NULL,
    input            TEXT    NOT NULL,
    trigger          TEXT    NOT NULL,
    output           TEXT,
    error            TEXT,
    parent_id        TEXT,
    parent_task      TEXT,
    rerun_of         TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    owner            TEXT,
    lease_until_ms   INTEGER,
    created_at       TEXT    NOT NULL,
    started_at       TEXT,
    finished_at      TEXT
);
CREATE INDEX executions_by_status ON executions (status, created_at);
CREATE INDEX executions_by_workflow ON executions (workflow_name, created_at);
CREATE INDEX executions_by_parent ON executions (parent_id);

-- One row per attempt of a task (item = -1) or of a with.items item (item >= 0). A task's
-- outcome — the row the executor replays on resume — has `seq` set: the final attempt of a
-- plain task, or the attempt-0 summary row of a with.items task.
CREATE TABLE task_runs (
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    task         TEXT    NOT NULL,
    item         INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    seq          INTEGER,
    input        TEXT,
    result       TEXT,
    error        TEXT,
    routes       TEXT,
    publish      TEXT,
    reused       INTEGER NOT NULL DEFAULT 0,
    started_at   TEXT,
    finished_at  TEXT,
    duration_ms  INTEGER,
    PRIMARY KEY (execution_id, task, item, attempt)
);
