DROP TABLE password_reset_token;
DROP TABLE provider_identity;
DROP TABLE auth_identity;
