-- Tailor metadata schema, version 5: projects (tenants) and API tokens.
-- A token stores only the SHA-256 of its secret; its id is the visible
-- part of the token text. token_roles holds the token's role per project
-- (viewer, operator, admin), its home project among them. The default
-- project exists from here on: every row written before projects existed
-- belongs to it. Times as in 0001; NULL expires_at is "never", NULL
-- revoked_at "live".
-- PostgreSQL: the same schema as sqlite/migrations/0005_auth.sql (TEXT COLLATE "C" so
-- text sorts and compares byte-wise as in SQLite, BIGINT for INTEGER,
-- BYTEA for BLOB, identity columns for AUTOINCREMENT).

CREATE TABLE projects (
    name       TEXT COLLATE "C" PRIMARY KEY,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);

INSERT INTO projects (name, created_by, created_at)
VALUES ('default', 'tailor', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '000Z');

CREATE TABLE tokens (
    id         TEXT COLLATE "C" PRIMARY KEY,
    principal  TEXT COLLATE "C" NOT NULL,
    hash       TEXT COLLATE "C" NOT NULL,
    project    TEXT COLLATE "C" NOT NULL REFERENCES projects (name),
    note       TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    expires_at TEXT COLLATE "C",
    revoked_at TEXT COLLATE "C"
);

CREATE TABLE token_roles (
    token_id TEXT COLLATE "C" NOT NULL REFERENCES tokens (id),
    project  TEXT COLLATE "C" NOT NULL REFERENCES projects (name),
    role     TEXT COLLATE "C" NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    PRIMARY KEY (token_id, project)
);
CREATE INDEX token_roles_project ON token_roles (project, token_id);
