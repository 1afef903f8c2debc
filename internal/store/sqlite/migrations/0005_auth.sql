-- Tailor metadata schema, version 5: projects (tenants) and API tokens.
-- A token stores only the SHA-256 of its secret; its id is the visible
-- part of the token text. token_roles holds the token's role per project
-- (viewer, operator, admin), its home project among them. The default
-- project exists from here on: every row written before projects existed
-- belongs to it. Times as in 0001; NULL expires_at is "never", NULL
-- revoked_at "live".

CREATE TABLE projects (
    name       TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO projects (name, created_by, created_at)
VALUES ('default', 'tailor', strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000000Z');

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    principal  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    project    TEXT NOT NULL REFERENCES projects (name),
    note       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
) WITHOUT ROWID;

CREATE TABLE token_roles (
    token_id TEXT NOT NULL REFERENCES tokens (id),
    project  TEXT NOT NULL REFERENCES projects (name),
    role     TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    PRIMARY KEY (token_id, project)
) WITHOUT ROWID;
CREATE INDEX token_roles_project ON token_roles (project, token_id);
