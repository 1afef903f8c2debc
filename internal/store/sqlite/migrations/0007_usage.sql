-- Placeholder on the residency branch only: the migration loader wants
-- versions 1, 2, 3… without gaps, and 0007 belongs to the metering branch
-- (0007_usage.sql). At merge, take the metering branch's file; this one
-- holds no schema.
SELECT 1;
