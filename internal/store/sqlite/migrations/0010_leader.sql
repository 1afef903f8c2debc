-- Tailor metadata schema, version 10: leases. One row per lease name; the
-- leader lease ('leader') says which server replica runs the scheduler,
-- the triggers, the monitors and reconcile. term goes up by one with every
-- new holder; a leader's writes check (holder, term) in their own
-- transaction (fencing). holder is '' once released. Times as in 0001
-- (fixed-width UTC text, so they compare as text). Plain SQL, for the
-- PostgreSQL port.

CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    term        INTEGER NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
