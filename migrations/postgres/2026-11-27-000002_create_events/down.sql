DROP TABLE event_delivery;
DROP TABLE event;
