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
