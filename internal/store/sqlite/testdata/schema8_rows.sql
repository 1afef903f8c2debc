-- Rows as a server at schema 8 (before projects isolated the nouns) wrote
-- them: one or more in every table migration 0009 gives a project column.
-- Times as in 0001. Loaded by TestMigrateProjects.
INSERT INTO dataset_versions (name, id, task, manifest, records, bytes, region, owner, parent, created_at) VALUES
    ('mail', 'd1', 'classify', 'sha256:dm1', 10, 100, 'eu', 'ana', '', '2026-01-01T00:00:00.000000000Z'),
    ('mail', 'd2', 'classify', 'sha256:dm2', 12, 120, 'eu', 'ana', 'd1', '2026-01-02T00:00:00.000000000Z');
INSERT INTO base_versions (name, id, version, arch, params, manifest, region, created_at) VALUES
    ('tiny', 'b1', 1, 'LlamaForCausalLM', 1000, 'sha256:bm1', 'eu', '2026-01-01T00:00:00.000000000Z');
INSERT INTO recipe_versions (name, id, version, normalized, created_at) VALUES
    ('spam', 'r1', 1, X'7461736b3a20636c6173736966790a', '2026-01-01T00:00:00.000000000Z');
INSERT INTO runs (id, key, recipe_id, dataset_id, base_id, engine_version, inputs, state, attempt, step, total_steps,
        checkpoint, result, metrics, error, created_at, started_at, finished_at) VALUES
    ('run-1', 'k1', 'r1', 'd2', 'b1', 'e/1', '{}', 'succeeded', 1, 4, 4, '', 'sha256:res', NULL, '',
        '2026-01-03T00:00:00.000000000Z', '2026-01-03T00:00:01.000000000Z', '2026-01-03T00:00:02.000000000Z');
INSERT INTO run_logs (run_id, seq, time, data) VALUES ('run-1', 1, '2026-01-03T00:00:01.000000000Z', '{"step":1}');
INSERT INTO aliases (kind, name, alias, target, updated_at) VALUES
    ('model', 'spam', 'champion', 'mv1', '2026-01-04T00:00:00.000000000Z');
INSERT INTO model_versions (name, id, version, base_id, adapter, run_id, task, labels, lineage, created_at, region) VALUES
    ('spam', 'mv1', 1, 'b1', 'sha256:ad', 'run-1', 'classify', NULL, NULL, '2026-01-03T00:00:03.000000000Z', 'eu');
INSERT INTO eval_reports (model_version_id, digest, dataset_id, split, verdict, failed, created_at) VALUES
    ('mv1', 'sha256:rep', 'd2', 'test', 'pass', NULL, '2026-01-03T00:00:04.000000000Z');
INSERT INTO alias_history (kind, name, alias, from_target, to_target, action, reason, actor, override, override_reason, approval_id, time) VALUES
    ('model', 'spam', 'champion', '', 'mv1', 'promote', 'first', 'ana', 0, '', 'ap-1', '2026-01-04T00:00:00.000000000Z');
INSERT INTO approvals (id, kind, name, alias, target, reason, override, override_reason, requested_by, requested_at,
        state, decided_by, decision_reason, decided_at) VALUES
    ('ap-1', 'model', 'spam', 'champion', 'mv1', 'first', 0, '', 'ana', '2026-01-03T12:00:00.000000000Z',
        'approved', 'bo', 'ok', '2026-01-04T00:00:00.000000000Z');
INSERT INTO predictions (request_id, time, model, version_id, variant, label, probs, text, truncated, features) VALUES
    ('req-1', '2026-01-05T00:00:00.000000000Z', 'spam', 'mv1', 'primary', 'spam', '{"spam":1}', 'win cash', 0, NULL);
INSERT INTO feedback (request_id, model, label, completion, actor, time, dataset) VALUES
    ('req-1', 'spam', 'ham', '', 'ana', '2026-01-05T00:01:00.000000000Z', '');
INSERT INTO specs (kind, name, id, version, normalized, created_at) VALUES
    ('monitor', 'spam', 's1', 1, X'77696e646f773a2031300a', '2026-01-05T00:00:00.000000000Z');
INSERT INTO monitor_state (name, spec_id, version_id, profile, cursor, state, updated_at) VALUES
    ('spam', 's1', 'mv1', '', 1, NULL, '2026-01-05T00:02:00.000000000Z');
INSERT INTO monitor_windows (monitor, idx, version_id, first_seq, last_seq, count, drifted, result, time) VALUES
    ('spam', 0, 'mv1', 1, 1, 1, 0, '{}', '2026-01-05T00:02:00.000000000Z');
INSERT INTO trigger_firings (name, event_seq, tick, event_type, spec_id, spec_version, state, step, results, reason, error,
        created_at, updated_at) VALUES
    ('retrain', 1, NULL, 'feedback.received', 't1', 1, 'done', 1, '[]', 'new labels', '',
        '2026-01-05T00:03:00.000000000Z', '2026-01-05T00:03:00.000000000Z');
INSERT INTO region_copies (kind, name, id, region, source_name, source_id, source_region, created_at) VALUES
    ('dataset', 'mail-us', 'd2', 'us', 'mail', 'd2', 'eu', '2026-01-06T00:00:00.000000000Z');
