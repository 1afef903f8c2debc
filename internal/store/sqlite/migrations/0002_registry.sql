-- Tailor metadata schema, version 2: the model registry.
-- Model version rows never change; eval reports, alias moves and approval
-- decisions live in their own tables. Times as in 0001.

CREATE TABLE model_versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    base_id    TEXT    NOT NULL,
    adapter    TEXT    NOT NULL,
    run_id     TEXT    NOT NULL,
    task       TEXT    NOT NULL,
    labels     TEXT,
    lineage    TEXT,
    created_at TEXT    NOT NULL,
    UNIQUE (name, id),
    UNIQUE (name, version)
);
CREATE INDEX model_versions_id ON model_versions (id);

CREATE TABLE eval_reports (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    model_version_id TEXT    NOT NULL,
    digest           TEXT    NOT NULL,
    dataset_id       TEXT    NOT NULL,
    split            TEXT    NOT NULL,
    verdict          TEXT    NOT NULL CHECK (verdict IN ('pass', 'fail')),
    failed           TEXT,
    created_at       TEXT    NOT NULL,
    UNIQUE (model_version_id, digest)
);

CREATE TABLE alias_history (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    alias           TEXT    NOT NULL,
    from_target     TEXT    NOT NULL,
    to_target       TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    override        INTEGER NOT NULL,
    override_reason TEXT    NOT NULL,
    approval_id     TEXT    NOT NULL,
    time            TEXT    NOT NULL
);
CREATE INDEX alias_history_alias ON alias_history (kind, name, alias);

CREATE TABLE approvals (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    alias           TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    override        INTEGER NOT NULL,
    override_reason TEXT    NOT NULL,
    requested_by    TEXT    NOT NULL,
    requested_at    TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by      TEXT    NOT NULL,
    decision_reason TEXT    NOT NULL,
    decided_at      TEXT
);
CREATE INDEX approvals_name_state ON approvals (name, state);
