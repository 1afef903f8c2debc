-- Tailor metadata schema, version 10: leases. One row per lease name; the
-- leader lease ('leader') says which server replica runs the scheduler,
-- the triggers, the monitors and reconcile. term goes up by one with every
-- new holder; a leader's writes check (holder, term) in their own
-- transaction (fencing). holder is '' once released. Times as in 0001.
-- PostgreSQL: the same schema as sqlite/migrations/0010_leader.sql (TEXT
-- COLLATE "C" so text sorts and compares byte-wise as in SQLite, BIGINT
-- for INTEGER).

CREATE TABLE leases (
    name        TEXT COLLATE "C" PRIMARY KEY,
    holder      TEXT COLLATE "C" NOT NULL,
    term        BIGINT NOT NULL,
    acquired_at TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL
);
