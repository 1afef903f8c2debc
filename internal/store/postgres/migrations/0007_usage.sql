-- Tailor metadata schema, version 7: metering. run_usage has one row per
-- run with what all its attempts used and the budget raised for it;
-- request_usage adds served requests up per (project, model, UTC day), so
-- it grows with models and days, never with requests. Energy is labelled
-- measured (RAPL) or estimated (CPU × watts per core). Times as in 0001.
-- PostgreSQL: the same schema as sqlite/migrations/0007_usage.sql (TEXT COLLATE "C" so
-- text sorts and compares byte-wise as in SQLite, BIGINT for INTEGER,
-- BYTEA for BLOB, identity columns for AUTOINCREMENT).

CREATE TABLE run_usage (
    run_id         TEXT COLLATE "C" PRIMARY KEY,
    project        TEXT COLLATE "C" NOT NULL,
    model          TEXT COLLATE "C" NOT NULL,
    day            TEXT COLLATE "C" NOT NULL,
    cpu_seconds    DOUBLE PRECISION    NOT NULL,
    wall_seconds   DOUBLE PRECISION    NOT NULL,
    flops          DOUBLE PRECISION    NOT NULL,
    peak_rss_bytes BIGINT NOT NULL,
    energy_kwh     DOUBLE PRECISION    NOT NULL,
    energy_source  TEXT COLLATE "C" NOT NULL,
    cost_usd       DOUBLE PRECISION    NOT NULL,
    budget         TEXT COLLATE "C",
    exceeded       TEXT COLLATE "C",
    updated_at     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX run_usage_day ON run_usage (day, project, model);

CREATE TABLE request_usage (
    project        TEXT COLLATE "C" NOT NULL,
    model          TEXT COLLATE "C" NOT NULL,
    day            TEXT COLLATE "C" NOT NULL,
    requests       BIGINT NOT NULL,
    tokens_in      BIGINT NOT NULL,
    tokens_out     BIGINT NOT NULL,
    latency_ms_sum DOUBLE PRECISION    NOT NULL,
    latency_ms_max DOUBLE PRECISION    NOT NULL,
    energy_kwh     DOUBLE PRECISION    NOT NULL,
    energy_source  TEXT COLLATE "C" NOT NULL,
    cost_usd       DOUBLE PRECISION    NOT NULL,
    PRIMARY KEY (day, project, model)
);
