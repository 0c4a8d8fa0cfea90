-- The event outbox (design §6): events are written in the transaction of the change that
-- causes them, and delivered at least once per sink by the dispatcher.
CREATE TABLE event (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL DEFAULT 'default',
    name          TEXT NOT NULL,
    -- The event's data as JSON, with "token": null where the secret belongs.
    payload       TEXT NOT NULL,
    -- The secret (a reset token), encrypted; erased once no delivery needs it.
    sealed_secret TEXT NULL,
    created_at    TIMESTAMP NOT NULL,
    -- When the secret expires: the event is not delivered after it.
    expires_at    TIMESTAMP NULL
);
CREATE INDEX event_sealed_idx ON event (created_at) WHERE sealed_secret IS NOT NULL;

-- One row per (event, sink): a failing sink never makes another deliver twice.
CREATE TABLE event_delivery (
    event_id        TEXT NOT NULL REFERENCES event (id) ON DELETE CASCADE,
    sink            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    delivered_at    TIMESTAMP NULL,
    expired_at      TIMESTAMP NULL,
    last_error      TEXT NULL,
    PRIMARY KEY (event_id, sink)
);
CREATE INDEX event_delivery_due_idx ON event_delivery (next_attempt_at)
    WHERE delivered_at IS NULL AND expired_at IS NULL;
