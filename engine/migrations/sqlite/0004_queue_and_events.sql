-- Serving at scale: executions wait in the store for any worker (status 'pending', no
-- owner); every trigger event (webhook, cron slot, Autotask callout) is one row, written in
-- the same commit as the executions it starts, and a de-duplication key makes a cron slot or
-- an Autotask event start executions once however many workers see it.

ALTER TABLE webhook_events RENAME TO trigger_events;
ALTER TABLE trigger_events ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE trigger_events ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX trigger_events_dedupe ON trigger_events (workflow, trigger, dedupe_key)
    WHERE dedupe_key IS NOT NULL;

ALTER TABLE executions ADD COLUMN event_id INTEGER;
-- Workers take the oldest waiting execution.
CREATE INDEX executions_queue ON executions (created_at) WHERE status = 'pending';

-- Triggers switched on or off through the API (they override the workflow's `enabled:`).
CREATE TABLE trigger_switches (
    workflow   TEXT    NOT NULL,
    trigger    TEXT    NOT NULL,
    enabled    INTEGER NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (workflow, trigger)
);

-- The Autotask webhooks weft registered for `autotask.*` triggers, with the secret key
-- callouts are signed with.
CREATE TABLE autotask_webhooks (
    workflow    TEXT    NOT NULL,
    trigger     TEXT    NOT NULL,
    org         TEXT    NOT NULL,
    integration TEXT,
    entity      TEXT    NOT NULL,
    webhook_id  INTEGER NOT NULL,
    guid        TEXT,
    secret      TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    config_hash TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (workflow, trigger, org)
);
