-- Tailor metadata schema, version 9: projects (tenants) isolate every noun.
-- Every named table gets a project column, and project comes first in
-- each unique key and index, so two projects may use one name and one
-- content id (a dataset imported into two projects has the same id in
-- both). Every row written before stays in 'default'.
--
-- SQLite cannot change a table's constraints in place, so the tables whose
-- unique keys change are rebuilt: create X_new, copy, drop X, rename
-- (AUTOINCREMENT counters follow the rename). Tables whose only key is a
-- random id that stays unique across the server (runs, approvals) or a
-- global sequence (events, alias_history) only gain the column and new
-- indexes. run_logs stay keyed by run id (run ids are server-unique and
-- reads go through the run's project); trigger_cursor stays one cursor
-- over the one event sequence; run_usage and request_usage have had a
-- project since 0007; the audit log is one hash chain for the whole
-- server with each entry's project in it (0006) and is not touched, so
-- its triggers and hashes stay as they are.
--
-- The column does not REFERENCE projects: ALTER TABLE ADD COLUMN cannot
-- add a foreign key with a non-NULL default while foreign keys are on,
-- project rows are never deleted, and the HTTP layer admits a request
-- only into a project its token holds a role in (roles need the project
-- row). Usage rows (0007) and audit entries (0006) already work so.

CREATE TABLE dataset_versions_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT    NOT NULL DEFAULT 'default',
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
    UNIQUE (project, name, id)
);
INSERT INTO dataset_versions_new (seq, project, name, id, task, manifest, records, bytes, region, owner, parent, created_at)
    SELECT seq, 'default', name, id, task, manifest, records, bytes, region, owner, parent, created_at FROM dataset_versions ORDER BY seq;
DROP TABLE dataset_versions;
ALTER TABLE dataset_versions_new RENAME TO dataset_versions;
CREATE INDEX dataset_versions_id ON dataset_versions (project, id);

CREATE TABLE base_versions_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT    NOT NULL DEFAULT 'default',
    name       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    arch       TEXT    NOT NULL,
    params     INTEGER NOT NULL,
    manifest   TEXT    NOT NULL,
    region     TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    UNIQUE (project, name, id),
    UNIQUE (project, name, version)
);
INSERT INTO base_versions_new (seq, project, name, id, version, arch, params, manifest, region, created_at)
    SELECT seq, 'default', name, id, version, arch, params, manifest, region, created_at FROM base_versions ORDER BY seq;
DROP TABLE base_versions;
ALTER TABLE base_versions_new RENAME TO base_versions;
CREATE INDEX base_versions_id ON base_versions (project, id);

CREATE TABLE recipe_versions_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT    NOT NULL DEFAULT 'default',
    name       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    normalized BLOB    NOT NULL,
    created_at TEXT    NOT NULL,
    UNIQUE (project, name, id),
    UNIQUE (project, name, version)
);
INSERT INTO recipe_versions_new (seq, project, name, id, version, normalized, created_at)
    SELECT seq, 'default', name, id, version, normalized, created_at FROM recipe_versions ORDER BY seq;
DROP TABLE recipe_versions;
ALTER TABLE recipe_versions_new RENAME TO recipe_versions;
CREATE INDEX recipe_versions_id ON recipe_versions (project, id);

ALTER TABLE runs ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
DROP INDEX runs_key;
DROP INDEX runs_state;
CREATE INDEX runs_key ON runs (project, key);
CREATE INDEX runs_state ON runs (project, state);

CREATE TABLE aliases_new (
    project    TEXT NOT NULL DEFAULT 'default',
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    alias      TEXT NOT NULL,
    target     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (project, kind, name, alias)
);
INSERT INTO aliases_new (project, kind, name, alias, target, updated_at)
    SELECT 'default', kind, name, alias, target, updated_at FROM aliases ORDER BY rowid;
DROP TABLE aliases;
ALTER TABLE aliases_new RENAME TO aliases;

ALTER TABLE events ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
CREATE INDEX events_project ON events (project, seq);

CREATE TABLE model_versions_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT    NOT NULL DEFAULT 'default',
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
    region     TEXT    NOT NULL DEFAULT '',
    UNIQUE (project, name, id),
    UNIQUE (project, name, version)
);
INSERT INTO model_versions_new (seq, project, name, id, version, base_id, adapter, run_id, task, labels, lineage, created_at, region)
    SELECT seq, 'default', name, id, version, base_id, adapter, run_id, task, labels, lineage, created_at, region FROM model_versions ORDER BY seq;
DROP TABLE model_versions;
ALTER TABLE model_versions_new RENAME TO model_versions;
CREATE INDEX model_versions_id ON model_versions (project, id);

CREATE TABLE eval_reports_new (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    project          TEXT    NOT NULL DEFAULT 'default',
    model_version_id TEXT    NOT NULL,
    digest           TEXT    NOT NULL,
    dataset_id       TEXT    NOT NULL,
    split            TEXT    NOT NULL,
    verdict          TEXT    NOT NULL CHECK (verdict IN ('pass', 'fail')),
    failed           TEXT,
    created_at       TEXT    NOT NULL,
    UNIQUE (project, model_version_id, digest)
);
INSERT INTO eval_reports_new (seq, project, model_version_id, digest, dataset_id, split, verdict, failed, created_at)
    SELECT seq, 'default', model_version_id, digest, dataset_id, split, verdict, failed, created_at FROM eval_reports ORDER BY seq;
DROP TABLE eval_reports;
ALTER TABLE eval_reports_new RENAME TO eval_reports;

ALTER TABLE alias_history ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
DROP INDEX alias_history_alias;
CREATE INDEX alias_history_alias ON alias_history (project, kind, name, alias);

ALTER TABLE approvals ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
DROP INDEX approvals_name_state;
CREATE INDEX approvals_name_state ON approvals (project, name, state);

CREATE TABLE predictions_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT    NOT NULL DEFAULT 'default',
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
    UNIQUE (project, request_id, variant)
);
INSERT INTO predictions_new (seq, project, request_id, time, model, version_id, variant, label, probs, text, truncated, features)
    SELECT seq, 'default', request_id, time, model, version_id, variant, label, probs, text, truncated, features FROM predictions ORDER BY seq;
DROP TABLE predictions;
ALTER TABLE predictions_new RENAME TO predictions;
CREATE INDEX predictions_model ON predictions (project, model, seq);

CREATE TABLE feedback_new (
    project    TEXT NOT NULL DEFAULT 'default',
    request_id TEXT NOT NULL,
    model      TEXT NOT NULL,
    label      TEXT NOT NULL,
    completion TEXT NOT NULL,
    actor      TEXT NOT NULL,
    time       TEXT NOT NULL,
    dataset    TEXT NOT NULL,
    PRIMARY KEY (project, request_id)
) WITHOUT ROWID;
INSERT INTO feedback_new (project, request_id, model, label, completion, actor, time, dataset)
    SELECT 'default', request_id, model, label, completion, actor, time, dataset FROM feedback;
DROP TABLE feedback;
ALTER TABLE feedback_new RENAME TO feedback;
CREATE INDEX feedback_pending ON feedback (project, model, dataset, time);

CREATE TABLE specs_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT    NOT NULL DEFAULT 'default',
    kind       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    normalized BLOB    NOT NULL,
    created_at TEXT    NOT NULL,
    UNIQUE (project, kind, name, id),
    UNIQUE (project, kind, name, version)
);
INSERT INTO specs_new (seq, project, kind, name, id, version, normalized, created_at)
    SELECT seq, 'default', kind, name, id, version, normalized, created_at FROM specs ORDER BY seq;
DROP TABLE specs;
ALTER TABLE specs_new RENAME TO specs;

CREATE TABLE monitor_state_new (
    project    TEXT    NOT NULL DEFAULT 'default',
    name       TEXT    NOT NULL,
    spec_id    TEXT    NOT NULL,
    version_id TEXT    NOT NULL,
    profile    TEXT    NOT NULL,
    cursor     INTEGER NOT NULL,
    state      TEXT,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (project, name)
) WITHOUT ROWID;
INSERT INTO monitor_state_new (project, name, spec_id, version_id, profile, cursor, state, updated_at)
    SELECT 'default', name, spec_id, version_id, profile, cursor, state, updated_at FROM monitor_state;
DROP TABLE monitor_state;
ALTER TABLE monitor_state_new RENAME TO monitor_state;

CREATE TABLE monitor_windows_new (
    project    TEXT    NOT NULL DEFAULT 'default',
    monitor    TEXT    NOT NULL,
    idx        INTEGER NOT NULL,
    version_id TEXT    NOT NULL,
    first_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    drifted    INTEGER NOT NULL,
    result     TEXT    NOT NULL,
    time       TEXT    NOT NULL,
    PRIMARY KEY (project, monitor, idx)
) WITHOUT ROWID;
INSERT INTO monitor_windows_new (project, monitor, idx, version_id, first_seq, last_seq, count, drifted, result, time)
    SELECT 'default', monitor, idx, version_id, first_seq, last_seq, count, drifted, result, time FROM monitor_windows;
DROP TABLE monitor_windows;
ALTER TABLE monitor_windows_new RENAME TO monitor_windows;

CREATE TABLE trigger_firings_new (
    project      TEXT    NOT NULL DEFAULT 'default',
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
    PRIMARY KEY (project, name, event_seq),
    UNIQUE (project, name, tick)
) WITHOUT ROWID;
INSERT INTO trigger_firings_new (project, name, event_seq, tick, event_type, spec_id, spec_version, state, step, results, reason, error,
        created_at, updated_at)
    SELECT 'default', name, event_seq, tick, event_type, spec_id, spec_version, state, step, results, reason, error,
        created_at, updated_at FROM trigger_firings;
DROP TABLE trigger_firings;
ALTER TABLE trigger_firings_new RENAME TO trigger_firings;
CREATE INDEX trigger_firings_state ON trigger_firings (project, state, name);

CREATE TABLE region_copies_new (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    project       TEXT NOT NULL DEFAULT 'default',
    kind          TEXT NOT NULL CHECK (kind IN ('dataset', 'base', 'model')),
    name          TEXT NOT NULL,
    id            TEXT NOT NULL,
    region        TEXT NOT NULL,
    source_name   TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    source_region TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (project, kind, name, id)
);
INSERT INTO region_copies_new (seq, project, kind, name, id, region, source_name, source_id, source_region, created_at)
    SELECT seq, 'default', kind, name, id, region, source_name, source_id, source_region, created_at FROM region_copies ORDER BY seq;
DROP TABLE region_copies;
ALTER TABLE region_copies_new RENAME TO region_copies;
CREATE INDEX region_copies_source ON region_copies (project, kind, source_name, source_id);
