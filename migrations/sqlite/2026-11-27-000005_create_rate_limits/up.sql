-- Token buckets of the rate limits. On SQLite (one instance) the limits live in the process and
-- this table stays empty; it exists so both schemas have the same tables.
CREATE TABLE rate_limit (
    key        TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX rate_limit_updated_idx ON rate_limit (updated_at);
