-- Hosted forms: each deployed version of a form file, kept like workflow versions (a new
-- version only when the source changes).
CREATE TABLE forms (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    source_hash TEXT    NOT NULL,
    path        TEXT,
    created_at  TEXT    NOT NULL,
    UNIQUE (name, version)
);

-- Each org's standing link to a form: the token is kept sealed (operators copy the link) and
-- hashed (what a request is looked up by). `generation` counts rotations: single-use links
-- signed under an older generation stop working when the standing link is rotated.
CREATE TABLE form_links (
    form        TEXT    NOT NULL,
    org         TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    token       TEXT    NOT NULL,
    generation  INTEGER NOT NULL DEFAULT 1,
    enabled     INTEGER NOT NULL DEFAULT 1,
    expires_at  TEXT,
    created_at  TEXT    NOT NULL,
    rotated_at  TEXT,
    PRIMARY KEY (form, org)
);

-- Every accepted submission: the values (secret fields as ***), the link, the org and the
-- executions it started. Refused submissions are only counted.
CREATE TABLE form_submissions (
    id            TEXT    PRIMARY KEY,
    form          TEXT    NOT NULL,
    form_version  INTEGER NOT NULL,
    org           TEXT    NOT NULL,
    link          TEXT    NOT NULL,
    data          TEXT    NOT NULL,
    execution_ids TEXT    NOT NULL,
    submitted_at  TEXT    NOT NULL
);
CREATE INDEX form_submissions_by_form ON form_submissions (form, org, submitted_at);
