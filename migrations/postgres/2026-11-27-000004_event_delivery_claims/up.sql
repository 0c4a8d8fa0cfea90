-- Deliveries are claimed with a lease (several instances on one database), and a delivery that
-- failed EVENT_MAX_ATTEMPTS times is dead until an operator re-arms it.
ALTER TABLE event_delivery ADD COLUMN locked_until TIMESTAMP NULL;
ALTER TABLE event_delivery ADD COLUMN dead_at TIMESTAMP NULL;
DROP INDEX event_delivery_due_idx;
CREATE INDEX event_delivery_due_idx ON event_delivery (next_attempt_at)
    WHERE delivered_at IS NULL AND expired_at IS NULL AND dead_at IS NULL;
