DROP INDEX event_delivery_due_idx;
ALTER TABLE event_delivery DROP COLUMN dead_at;
ALTER TABLE event_delivery DROP COLUMN locked_until;
CREATE INDEX event_delivery_due_idx ON event_delivery (next_attempt_at)
    WHERE delivered_at IS NULL AND expired_at IS NULL;
