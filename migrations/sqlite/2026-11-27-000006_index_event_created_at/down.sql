DROP INDEX event_created_idx;
