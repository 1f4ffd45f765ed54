-- One webhook secret per (trigger, org): the secret handed to one client's sender must not
-- start anything for another client. Secrets are sealed with the installation's key; the
-- old per-trigger secrets (shared by every org, kept in clear) are dropped.
CREATE TABLE webhook_secrets (
    workflow       TEXT COLLATE "C" NOT NULL,
    trigger        TEXT COLLATE "C" NOT NULL,
    org            TEXT COLLATE "C" NOT NULL,
    secret         TEXT NOT NULL,
    previous       TEXT,
    previous_until TEXT,
    created_at     TEXT NOT NULL,
    rotated_at     TEXT,
    PRIMARY KEY (workflow, trigger, org)
);
DROP TABLE trigger_secrets;
CREATE INDEX trigger_events_created ON trigger_events (created_at);
