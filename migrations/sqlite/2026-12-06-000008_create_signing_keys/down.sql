DROP TABLE signing_key;
