-- Tailor metadata schema, version 4: trigger firings. (name, event_seq) is
-- the idempotency key: a trigger acts on an event once. A firing is claimed
-- in the same transaction as its trigger.fired event; each action's result
-- is stored before the next action starts. Schedule firings also carry the
-- cron tick they stand for, unique per trigger (NULL for event firings).
-- The cursor is the last event the trigger loop handled. Times as in 0001.
-- PostgreSQL: the same schema as sqlite/migrations/0004_triggers.sql (TEXT COLLATE "C" so
-- text sorts and compares byte-wise as in SQLite, BIGINT for INTEGER,
-- BYTEA for BLOB, identity columns for AUTOINCREMENT).

CREATE TABLE trigger_firings (
    name         TEXT COLLATE "C" NOT NULL,
    event_seq    BIGINT NOT NULL,
    tick         TEXT COLLATE "C",
    event_type   TEXT COLLATE "C" NOT NULL,
    spec_id      TEXT COLLATE "C" NOT NULL,
    spec_version BIGINT NOT NULL,
    state        TEXT COLLATE "C" NOT NULL,
    step         BIGINT NOT NULL,
    results      TEXT COLLATE "C" NOT NULL,
    reason       TEXT COLLATE "C" NOT NULL,
    error        TEXT COLLATE "C" NOT NULL,
    created_at   TEXT COLLATE "C" NOT NULL,
    updated_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (name, event_seq),
    UNIQUE (name, tick)
);
CREATE INDEX trigger_firings_state ON trigger_firings (state, name);

CREATE TABLE trigger_cursor (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
