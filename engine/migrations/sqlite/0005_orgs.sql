-- Organizations (the MSP at the root, its clients below), their variables, integration
-- instances, the mapping to PSA companies, and the directory the PSA sync keeps.
-- Secret values (variables, integration secrets) are sealed before they are stored.

CREATE TABLE orgs (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    parent_id  TEXT    REFERENCES orgs (id),
    tags       TEXT    NOT NULL DEFAULT '[]',
    attributes TEXT    NOT NULL DEFAULT '{}',
    active     INTEGER NOT NULL DEFAULT 1,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);
CREATE UNIQUE INDEX orgs_by_name ON orgs (lower(name));
CREATE INDEX orgs_by_parent ON orgs (parent_id);

CREATE TABLE org_vars (
    org_id     TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    secret     INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (org_id, key)
);

CREATE TABLE integrations (
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    settings   TEXT NOT NULL DEFAULT '{}',
    secrets    TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (org_id, kind, name)
);

-- One external record (an Autotask company) per org and integration kind, and the other way.
CREATE TABLE org_mappings (
    org_id        TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    external_name TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (org_id, kind),
    UNIQUE (kind, external_id)
);

CREATE TABLE mapping_exclusions (
    kind        TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name        TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (kind, external_id)
);

-- What the PSA sync imported: companies, users (resources), contacts, configurations and
-- locations, each linked to its org. `state` is matched, created, excluded or pending.
CREATE TABLE directory (
    source      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    org_id      TEXT,
    name        TEXT    NOT NULL,
    data        TEXT    NOT NULL DEFAULT '{}',
    active      INTEGER NOT NULL DEFAULT 1,
    state       TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (source, kind, external_id)
);
CREATE INDEX directory_by_org ON directory (org_id, kind);

CREATE TABLE sync_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    mode        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    counts      TEXT NOT NULL DEFAULT '{}',
    errors      TEXT NOT NULL DEFAULT '[]'
);
