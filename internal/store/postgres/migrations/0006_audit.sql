-- Tailor metadata schema, version 6: the audit log. One row per event,
-- written in the same transaction as the event and the change it describes
-- (events.go appendEvents). seq runs 1, 2, 3… without gaps (assigned by the
-- writer, not AUTOINCREMENT); hash chains each row to the one before it
-- (store.AuditHash). The triggers make the table append-only for every
-- connection that does not drop them first: editing the file directly is
-- what `tailor audit verify` detects. Times as in 0001.
-- PostgreSQL: the same schema as sqlite/migrations/0006_audit.sql (TEXT COLLATE "C" so
-- text sorts and compares byte-wise as in SQLite, BIGINT for INTEGER,
-- BYTEA for BLOB, identity columns for AUTOINCREMENT).

CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    time        TEXT COLLATE "C" NOT NULL,
    actor       TEXT COLLATE "C" NOT NULL,
    project     TEXT COLLATE "C" NOT NULL,
    action      TEXT COLLATE "C" NOT NULL,
    object_kind TEXT COLLATE "C" NOT NULL,
    object_id   TEXT COLLATE "C" NOT NULL,
    event_seq   BIGINT NOT NULL,
    before      TEXT COLLATE "C" NOT NULL,
    after       TEXT COLLATE "C" NOT NULL,
    prev_hash   TEXT COLLATE "C" NOT NULL,
    hash        TEXT COLLATE "C" NOT NULL
);
CREATE INDEX audit_log_object ON audit_log (object_kind, object_id, seq);

-- PostgreSQL: one trigger function refuses UPDATE, DELETE and TRUNCATE.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
