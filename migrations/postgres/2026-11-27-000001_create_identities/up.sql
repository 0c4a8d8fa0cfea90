-- Identities, their email/password credentials and reset tokens (design §2).
-- Ids, JSON and times are portable: TEXT ids, JSON as TEXT, UTC TIMESTAMP.
CREATE TABLE auth_identity (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL DEFAULT 'default',
    app_metadata   TEXT NOT NULL DEFAULT '{}',
    security_stamp TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);

CREATE TABLE provider_identity (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL DEFAULT 'default',
    auth_identity_id  TEXT NOT NULL REFERENCES auth_identity (id) ON DELETE CASCADE,
    provider          TEXT NOT NULL,
    entity_id         TEXT NOT NULL,
    entity_key        TEXT NOT NULL,
    provider_metadata TEXT NOT NULL,
    user_metadata     TEXT NOT NULL DEFAULT '{}',
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX provider_identity_tenant_provider_key_uq ON provider_identity (tenant_id, provider, entity_key);
CREATE INDEX provider_identity_auth_identity_idx ON provider_identity (auth_identity_id);

-- At most one live reset token per account; only the SHA-256 of its jti is kept.
CREATE TABLE password_reset_token (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL DEFAULT 'default',
    provider_identity_id TEXT NOT NULL UNIQUE REFERENCES provider_identity (id) ON DELETE CASCADE,
    token_hash           TEXT NOT NULL,
    expires_at           TIMESTAMP NOT NULL,
    created_at           TIMESTAMP NOT NULL
);
CREATE INDEX password_reset_token_hash_idx ON password_reset_token (token_hash);
CREATE INDEX password_reset_token_expires_idx ON password_reset_token (expires_at);
