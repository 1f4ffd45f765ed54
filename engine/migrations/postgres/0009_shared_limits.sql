-- Limits every process on this database shares (an API's requests in flight, its requests
-- per hour): numbered slots held until a time, and per-minute counters.
CREATE TABLE limit_slots (
    key      TEXT    NOT NULL,
    slot     BIGINT  NOT NULL,
    holder   TEXT    NOT NULL,
    until_ms BIGINT  NOT NULL,
    PRIMARY KEY (key, slot)
);

CREATE TABLE limit_counts (
    key    TEXT    NOT NULL,
    minute BIGINT  NOT NULL,
    n      BIGINT  NOT NULL,
    PRIMARY KEY (key, minute)
);
