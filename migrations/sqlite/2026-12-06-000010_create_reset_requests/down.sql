DROP TABLE reset_request;
