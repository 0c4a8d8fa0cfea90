-- Password reset requests, recorded before reset-password answers 201 so that a crash after
-- the answer loses none: a worker takes each one (a lease in locked_until), does the lookup, the
-- token and the event, and deletes the request in the same transaction. A request is written
-- alike whether or not the identifier names an account.
CREATE TABLE reset_request (
    -- `rstreq_<ULID>`.
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    actor_type   TEXT NOT NULL,
    provider     TEXT NOT NULL,
    -- The identifier and the metadata as JSON, sealed (context `reset-request:<id>`): personal
    -- data, never in clear.
    sealed       TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    -- While a worker holds the request; NULL or past: free to take.
    locked_until TIMESTAMP
);
CREATE INDEX reset_request_created_idx ON reset_request (created_at);
