-- Token buckets of the rate limits, shared by every instance on this database. Keys are
-- SHA-256 hashes (no address or email in clear).
CREATE TABLE rate_limit (
    key        TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX rate_limit_updated_idx ON rate_limit (updated_at);
