-- Tailor metadata schema, version 9: projects (tenants) isolate every noun.
-- Every named table gets a project column, and project comes first in
-- each unique key and index, so two projects may use one name and one
-- content id. Every row written before stays in 'default'. The same
-- change as sqlite/migrations/0009_projects.sql, which rebuilds tables
-- because SQLite cannot change constraints in place; PostgreSQL alters
-- them (the constraint names are the ones PostgreSQL gave them in
-- 0001-0008). run_logs, trigger_cursor, run_usage, request_usage and
-- audit_log are not touched, as in SQLite. The column does not REFERENCE
-- projects, as in SQLite.

ALTER TABLE dataset_versions ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE dataset_versions DROP CONSTRAINT dataset_versions_name_id_key;
ALTER TABLE dataset_versions ADD UNIQUE (project, name, id);
CREATE INDEX dataset_versions_id ON dataset_versions (project, id);

ALTER TABLE base_versions ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE base_versions DROP CONSTRAINT base_versions_name_id_key;
ALTER TABLE base_versions DROP CONSTRAINT base_versions_name_version_key;
ALTER TABLE base_versions ADD UNIQUE (project, name, id);
ALTER TABLE base_versions ADD UNIQUE (project, name, version);
CREATE INDEX base_versions_id ON base_versions (project, id);

ALTER TABLE recipe_versions ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE recipe_versions DROP CONSTRAINT recipe_versions_name_id_key;
ALTER TABLE recipe_versions DROP CONSTRAINT recipe_versions_name_version_key;
ALTER TABLE recipe_versions ADD UNIQUE (project, name, id);
ALTER TABLE recipe_versions ADD UNIQUE (project, name, version);
DROP INDEX recipe_versions_id;
CREATE INDEX recipe_versions_id ON recipe_versions (project, id);

ALTER TABLE runs ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
DROP INDEX runs_key;
DROP INDEX runs_state;
CREATE INDEX runs_key ON runs (project, key);
CREATE INDEX runs_state ON runs (project, state);

ALTER TABLE aliases ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE aliases DROP CONSTRAINT aliases_pkey;
ALTER TABLE aliases ADD PRIMARY KEY (project, kind, name, alias);

ALTER TABLE events ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
CREATE INDEX events_project ON events (project, seq);

ALTER TABLE model_versions ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE model_versions DROP CONSTRAINT model_versions_name_id_key;
ALTER TABLE model_versions DROP CONSTRAINT model_versions_name_version_key;
ALTER TABLE model_versions ADD UNIQUE (project, name, id);
ALTER TABLE model_versions ADD UNIQUE (project, name, version);
DROP INDEX model_versions_id;
CREATE INDEX model_versions_id ON model_versions (project, id);

ALTER TABLE eval_reports ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE eval_reports DROP CONSTRAINT eval_reports_model_version_id_digest_key;
ALTER TABLE eval_reports ADD UNIQUE (project, model_version_id, digest);

ALTER TABLE alias_history ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
DROP INDEX alias_history_alias;
CREATE INDEX alias_history_alias ON alias_history (project, kind, name, alias);

ALTER TABLE approvals ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
DROP INDEX approvals_name_state;
CREATE INDEX approvals_name_state ON approvals (project, name, state);

ALTER TABLE predictions ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE predictions DROP CONSTRAINT predictions_request_id_variant_key;
ALTER TABLE predictions ADD UNIQUE (project, request_id, variant);
DROP INDEX predictions_model;
CREATE INDEX predictions_model ON predictions (project, model, seq);

ALTER TABLE feedback ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE feedback DROP CONSTRAINT feedback_pkey;
ALTER TABLE feedback ADD PRIMARY KEY (project, request_id);
DROP INDEX feedback_pending;
CREATE INDEX feedback_pending ON feedback (project, model, dataset, time);

ALTER TABLE specs ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE specs DROP CONSTRAINT specs_kind_name_id_key;
ALTER TABLE specs DROP CONSTRAINT specs_kind_name_version_key;
ALTER TABLE specs ADD UNIQUE (project, kind, name, id);
ALTER TABLE specs ADD UNIQUE (project, kind, name, version);

ALTER TABLE monitor_state ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE monitor_state DROP CONSTRAINT monitor_state_pkey;
ALTER TABLE monitor_state ADD PRIMARY KEY (project, name);

ALTER TABLE monitor_windows ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE monitor_windows DROP CONSTRAINT monitor_windows_pkey;
ALTER TABLE monitor_windows ADD PRIMARY KEY (project, monitor, idx);

ALTER TABLE trigger_firings ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE trigger_firings DROP CONSTRAINT trigger_firings_pkey;
ALTER TABLE trigger_firings DROP CONSTRAINT trigger_firings_name_tick_key;
ALTER TABLE trigger_firings ADD PRIMARY KEY (project, name, event_seq);
ALTER TABLE trigger_firings ADD UNIQUE (project, name, tick);
DROP INDEX trigger_firings_state;
CREATE INDEX trigger_firings_state ON trigger_firings (project, state, name);

ALTER TABLE region_copies ADD COLUMN project TEXT COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE region_copies DROP CONSTRAINT region_copies_kind_name_id_key;
ALTER TABLE region_copies ADD UNIQUE (project, kind, name, id);
DROP INDEX region_copies_source;
CREATE INDEX region_copies_source ON region_copies (project, kind, source_name, source_id);
