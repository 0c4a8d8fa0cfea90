-- The janitor deletes settled events older than EVENT_RETENTION: it finds them by age.
CREATE INDEX event_created_idx ON event (created_at);
