-- Serving: settings (the API token's hash), webhook trigger secrets and webhook events.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One shared secret per webhook trigger of a workflow (kept across versions).
CREATE TABLE trigger_secrets (
    workflow   TEXT NOT NULL,
    trigger    TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (workflow, trigger)
);

-- Every webhook request that reached a trigger: accepted or rejected, and why.
CREATE TABLE webhook_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow     TEXT    NOT NULL,
    trigger      TEXT    NOT NULL,
    org          TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    reason       TEXT,
    status       INTEGER NOT NULL,
    execution_id TEXT,
    created_at   TEXT    NOT NULL
);
CREATE INDEX webhook_events_by_trigger ON webhook_events (workflow, trigger, id);
