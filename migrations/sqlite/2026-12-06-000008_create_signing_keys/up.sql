-- The tenants' signing keys, written by `xclade-auth keys ...`. A key goes next -> active ->
-- retired -> deleted; every write bumps tenant_directory's revision and stamps the tenant with
-- it (as a tenant write does), so the instances reload the tenant's keys with its settings.
CREATE TABLE signing_key (
    -- Random, and the `kid` of the JWT header and of the JWKS.
    kid            TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenant (id),
    algorithm      TEXT NOT NULL CHECK (algorithm IN ('EdDSA', 'ES256')),
    state          TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    -- The private half: PKCS#8 DER, sealed (context `signing-key:<kid>`).
    private_sealed TEXT NOT NULL,
    -- The public half: a JWK (JSON) with kid, alg and use.
    public_jwk     TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    -- When the key entered its state.
    state_since    TIMESTAMP NOT NULL
);
CREATE INDEX signing_key_tenant_idx ON signing_key (tenant_id);
-- At most one active key per tenant: an activation retires the active key first.
CREATE UNIQUE INDEX signing_key_one_active_idx ON signing_key (tenant_id) WHERE state = 'active';
