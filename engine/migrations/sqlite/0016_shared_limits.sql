-- Limits every process on this database shares (an API's requests in flight, its requests
-- per hour): numbered slots held until a time, and per-minute counters.
CREATE TABLE limit_slots (
    key      TEXT    NOT NULL,
    slot     INTEGER NOT NULL,
    holder   TEXT    NOT NULL,
    until_ms INTEGER NOT NULL,
    PRIMARY KEY (key, slot)
) WITHOUT ROWID;

CREATE TABLE limit_counts (
    key    TEXT    NOT NULL,
    minute INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (key, minute)
) WITHOUT ROWID;
