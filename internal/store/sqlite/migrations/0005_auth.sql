-- Placeholder on the audit branch only: the migration loader wants
-- versions 1, 2, 3… without gaps, and 0005 belongs to the auth branch
-- (0005_auth.sql). At merge, take the auth branch's file; this one holds
-- no schema.
SELECT 1;
