-- Cookie sessions (only the SHA-256 of the session id is stored) and customer accounts.

CREATE TABLE auth_session (
    id               TEXT PRIMARY KEY,  -- SHA-256 (hex) of the session id the cookie carries
    tenant_id        TEXT NOT NULL DEFAULT 'default',
    auth_identity_id TEXT NOT NULL REFERENCES auth_identity (id) ON DELETE CASCADE,
    actor_type       TEXT NOT NULL,
    auth_provider    TEXT NOT NULL,
    -- The identity's security stamp when the session opened: a changed stamp ends it.
    security_stamp   TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL
);
CREATE INDEX auth_session_identity_idx ON auth_session (auth_identity_id);
CREATE INDEX auth_session_expires_idx ON auth_session (expires_at);

CREATE TABLE customer (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL DEFAULT 'default',
    email        TEXT NOT NULL,
    first_name   TEXT NULL,
    last_name    TEXT NULL,
    phone        TEXT NULL,
    company_name TEXT NULL,
    metadata     TEXT NULL,
    has_account  BOOLEAN NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    deleted_at   TIMESTAMP NULL
);
-- One account per address; guests (has_account false) may share it.
CREATE UNIQUE INDEX customer_account_email_uq ON customer (tenant_id, lower(email)) WHERE has_account;
