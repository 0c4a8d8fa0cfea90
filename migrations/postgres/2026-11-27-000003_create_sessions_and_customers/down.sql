DROP TABLE customer;
DROP TABLE auth_session;
