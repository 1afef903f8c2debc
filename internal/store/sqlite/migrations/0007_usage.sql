-- Tailor metadata schema, version 7: metering. run_usage has one row per
-- run with what all its attempts used and the budget raised for it;
-- request_usage adds served requests up per (project, model, UTC day), so
-- it grows with models and days, never with requests. Energy is labelled
-- measured (RAPL) or estimated (CPU × watts per core). Times as in 0001.

CREATE TABLE run_usage (
    run_id         TEXT    PRIMARY KEY,
    project        TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    day            TEXT    NOT NULL,
    cpu_seconds    REAL    NOT NULL,
    wall_seconds   REAL    NOT NULL,
    flops          REAL    NOT NULL,
    peak_rss_bytes INTEGER NOT NULL,
    energy_kwh     REAL    NOT NULL,
    energy_source  TEXT    NOT NULL,
    cost_usd       REAL    NOT NULL,
    budget         TEXT,
    exceeded       TEXT,
    updated_at     TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX run_usage_day ON run_usage (day, project, model);

CREATE TABLE request_usage (
    project        TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    day            TEXT    NOT NULL,
    requests       INTEGER NOT NULL,
    tokens_in      INTEGER NOT NULL,
    tokens_out     INTEGER NOT NULL,
    latency_ms_sum REAL    NOT NULL,
    latency_ms_max REAL    NOT NULL,
    energy_kwh     REAL    NOT NULL,
    energy_source  TEXT    NOT NULL,
    cost_usd       REAL    NOT NULL,
    PRIMARY KEY (day, project, model)
) WITHOUT ROWID;
