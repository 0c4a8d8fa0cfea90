-- Pending sign-ins with other providers (Google, GitHub, OpenID Connect): one row per
-- authorization URL handed out, deleted by its callback (single use) or by the janitor once
-- expired. Only the SHA-256 of the `state` and of the `nonce` are kept; the PKCE verifier is
-- sealed with a key derived from JWT_SECRET.
CREATE TABLE oauth_state (
    state_hash           TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    actor_type           TEXT NOT NULL,
    provider             TEXT NOT NULL,
    nonce_hash           TEXT,
    pkce_verifier_sealed TEXT NOT NULL,
    redirect_uri         TEXT NOT NULL,
    -- A sign-in started from inside an account to link the provider to it (the account's auth
    -- identity); NULL for a plain sign-in.
    link_identity_id     TEXT,
    created_at           TIMESTAMP NOT NULL,
    expires_at           TIMESTAMP NOT NULL
);
CREATE INDEX oauth_state_expires_idx ON oauth_state (expires_at);
