-- Tailor metadata schema, version 3: what continuous adaptation records.
-- Predictions are answered classify requests (the monitor's input and what
-- feedback labels); feedback rows never change except for the dataset
-- version they were accumulated into. Specs are versioned declarative
-- documents other than recipes (monitors, triggers). Times as in 0001.

CREATE TABLE predictions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT    NOT NULL,
    time       TEXT    NOT NULL,
    model      TEXT    NOT NULL,
    version_id TEXT    NOT NULL,
    variant    TEXT    NOT NULL,
    label      TEXT    NOT NULL,
    probs      TEXT,
    text       TEXT    NOT NULL,
    truncated  INTEGER NOT NULL,
    features   TEXT,
    UNIQUE (request_id, variant)
);
CREATE INDEX predictions_model ON predictions (model, seq);

CREATE TABLE feedback (
    request_id TEXT PRIMARY KEY,
    model      TEXT NOT NULL,
    label      TEXT NOT NULL,
    completion TEXT NOT NULL,
    actor      TEXT NOT NULL,
    time       TEXT NOT NULL,
    dataset    TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX feedback_pending ON feedback (model, dataset, time);

CREATE TABLE specs (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    normalized BLOB    NOT NULL,
    created_at TEXT    NOT NULL,
    UNIQUE (kind, name, id),
    UNIQUE (kind, name, version)
);

CREATE TABLE monitor_state (
    name       TEXT PRIMARY KEY,
    spec_id    TEXT    NOT NULL,
    version_id TEXT    NOT NULL,
    profile    TEXT    NOT NULL,
    cursor     INTEGER NOT NULL,
    state      TEXT,
    updated_at TEXT    NOT NULL
) WITHOUT ROWID;

CREATE TABLE monitor_windows (
    monitor    TEXT    NOT NULL,
    idx        INTEGER NOT NULL,
    version_id TEXT    NOT NULL,
    first_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    drifted    INTEGER NOT NULL,
    result     TEXT    NOT NULL,
    time       TEXT    NOT NULL,
    PRIMARY KEY (monitor, idx)
) WITHOUT ROWID;
