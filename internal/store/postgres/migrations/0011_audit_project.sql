-- Tailor metadata schema, version 11: the audit log is read per project
-- (PostgreSQL: the same indexes as sqlite/migrations/0011_audit_project.sql).
-- A project's admins page through their project's entries (newest first
-- too) and count them, so entries are indexed by (project, seq); an
-- entry's Before is the After of the same object's last entry in the same
-- project, so the object index starts with project. Entries written
-- before this version chained Before across projects (a token acting in
-- another project while the nouns were shared): audit_scope keeps the
-- first seq whose Before is per project, so verifying checks each entry
-- by the rule it was written under.

DROP INDEX audit_log_object;
CREATE INDEX audit_log_object ON audit_log (project, object_kind, object_id, seq);
CREATE INDEX audit_log_project ON audit_log (project, seq);

CREATE TABLE audit_scope (
    project_from BIGINT NOT NULL
);
INSERT INTO audit_scope (project_from) SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log;
