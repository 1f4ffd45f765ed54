-- Task runs are kept in their primary key's order (WITHOUT ROWID): one B-tree instead of a
-- table and its key index, so a step's commit (its outcome and the next task's running row,
-- side by side under the execution's id) writes one page less to the WAL.
CREATE TABLE task_runs_clustered (
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
) WITHOUT ROWID;
INSERT INTO task_runs_clustered (execution_id, task, item, attempt, status, seq, input, result, error, routes, publish, reused, started_at, finished_at, duration_ms)
    SELECT execution_id, task, item, attempt, status, seq, input, result, error, routes, publish, reused, started_at, finished_at, duration_ms FROM task_runs;
DROP TABLE task_runs;
ALTER TABLE task_runs_clustered RENAME TO task_runs;
