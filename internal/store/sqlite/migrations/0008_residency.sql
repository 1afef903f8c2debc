-- Tailor metadata schema, version 8: residency in depth.
-- Model versions carry the region their artifacts (adapter, reports) live
-- in; rows from before take their base's region, which the old check held
-- equal to the region their run computed in. region_copies records every
-- cross-region copy with its source, written in the same transaction as
-- the copy's version row. Times as in 0001.

ALTER TABLE model_versions ADD COLUMN region TEXT NOT NULL DEFAULT '';
UPDATE model_versions SET region = COALESCE(
    (SELECT b.region FROM base_versions b WHERE b.id = model_versions.base_id ORDER BY b.seq LIMIT 1), '');

CREATE TABLE region_copies (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind IN ('dataset', 'base', 'model')),
    name          TEXT NOT NULL,
    id            TEXT NOT NULL,
    region        TEXT NOT NULL,
    source_name   TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    source_region TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (kind, name, id)
);
CREATE INDEX region_copies_source ON region_copies (kind, source_name, source_id);
