DROP TABLE oauth_state;
