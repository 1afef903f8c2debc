-- Tailor metadata schema, version 6: the audit log. One row per event,
-- written in the same transaction as the event and the change it describes
-- (events.go appendEvents). seq runs 1, 2, 3… without gaps (assigned by the
-- writer, not AUTOINCREMENT); hash chains each row to the one before it
-- (store.AuditHash). The triggers make the table append-only for every
-- connection that does not drop them first: editing the file directly is
-- what `tailor audit verify` detects. Times as in 0001.

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    time        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    project     TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    object_kind TEXT    NOT NULL,
    object_id   TEXT    NOT NULL,
    event_seq   INTEGER NOT NULL,
    before      TEXT    NOT NULL,
    after       TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX audit_log_object ON audit_log (object_kind, object_id, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
