-- Tailor metadata schema, version 4: trigger firings. (name, event_seq) is
-- the idempotency key: a trigger acts on an event once. A firing is claimed
-- in the same transaction as its trigger.fired event; each action's result
-- is stored before the next action starts. Schedule firings also carry the
-- cron tick they stand for, unique per trigger (NULL for event firings).
-- The cursor is the last event the trigger loop handled. Times as in 0001.

CREATE TABLE trigger_firings (
    name         TEXT    NOT NULL,
    event_seq    INTEGER NOT NULL,
    tick         TEXT,
    event_type   TEXT    NOT NULL,
    spec_id      TEXT    NOT NULL,
    spec_version INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    step         INTEGER NOT NULL,
    results      TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    error        TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    PRIMARY KEY (name, event_seq),
    UNIQUE (name, tick)
) WITHOUT ROWID;
CREATE INDEX trigger_firings_state ON trigger_firings (state, name);

CREATE TABLE trigger_cursor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
