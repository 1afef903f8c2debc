-- Tailor metadata schema, version 1.
-- Times are TEXT in UTC, fixed width with nanoseconds
-- ("2006-01-02T15:04:05.000000000Z"), so they sort and round-trip exactly.
-- Every versioned table has an AUTOINCREMENT seq: insertion order, which
-- defines "latest" and the order of lists.

CREATE TABLE dataset_versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    task       TEXT    NOT NULL,
    manifest   TEXT    NOT NULL,
    records    INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    region     TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    parent     TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    UNIQUE (name, id)
);

CREATE TABLE base_versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    arch       TEXT    NOT NULL,
    params     INTEGER NOT NULL,
    manifest   TEXT    NOT NULL,
    region     TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    UNIQUE (name, id),
    UNIQUE (name, version)
);

CREATE TABLE recipe_versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    normalized BLOB    NOT NULL,
    created_at TEXT    NOT NULL,
    UNIQUE (name, id),
    UNIQUE (name, version)
);
CREATE INDEX recipe_versions_id ON recipe_versions (id);

CREATE TABLE runs (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    key            TEXT    NOT NULL,
    recipe_id      TEXT    NOT NULL,
    dataset_id     TEXT    NOT NULL,
    base_id        TEXT    NOT NULL,
    engine_version TEXT    NOT NULL,
    inputs         TEXT,
    state          TEXT    NOT NULL,
    attempt        INTEGER NOT NULL,
    step           INTEGER NOT NULL,
    total_steps    INTEGER NOT NULL,
    checkpoint     TEXT    NOT NULL,
    result         TEXT    NOT NULL,
    metrics        TEXT,
    error          TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    started_at     TEXT,
    finished_at    TEXT
);
CREATE INDEX runs_key ON runs (key);
CREATE INDEX runs_state ON runs (state);

CREATE TABLE run_logs (
    run_id TEXT    NOT NULL REFERENCES runs (id),
    seq    INTEGER NOT NULL,
    time   TEXT    NOT NULL,
    data   TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE aliases (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    alias      TEXT NOT NULL,
    target     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, name, alias)
);

CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    type    TEXT NOT NULL,
    subject TEXT NOT NULL,
    time    TEXT NOT NULL,
    data    TEXT
);
