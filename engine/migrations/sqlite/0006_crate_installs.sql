-- Crates installed per organization (`weft crate install`): the version, the parameters
-- given, who the triggers run for, and the workflows deployed for the install. A detached
-- install is left alone by upgrades (its workflows were edited locally).

CREATE TABLE crate_installs (
    crate        TEXT    NOT NULL,
    org          TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    params       TEXT    NOT NULL DEFAULT '{}',
    run_for      TEXT    NOT NULL DEFAULT '[]',
    enabled      INTEGER NOT NULL DEFAULT 0,
    detached     INTEGER NOT NULL DEFAULT 0,
    source       TEXT,
    workflows    TEXT    NOT NULL DEFAULT '[]',
    installed_at TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    PRIMARY KEY (crate, org)
);
CREATE INDEX crate_installs_by_org ON crate_installs (org);
