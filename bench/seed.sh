#!/usr/bin/env bash
# Seeds a migrated database with COUNT accounts by bulk insert (not the HTTP API), for the
# scale benchmark (bench/scale.sh) and the EXPLAIN check (bench/explain.sh):
#
#   bench/seed.sh DATABASE_URL COUNT
#
# DATABASE_URL is a postgres:// URL or the path of a SQLite file, already migrated
# (`xclade-auth migrate`). Each account i (1..COUNT) of the tenant `default` is what registering
# and creating a customer writes: an auth identity `authid_SEED<i, 22 digits>` whose app_metadata
# names its customer, an emailpass provider identity for seed<i>@example.com, the customer, and
# SEED_SESSIONS (5) cookie sessions, the first of them expired a day ago (so COUNT expired
# sessions for the janitor); every tenth account also has a live reset token. Every account has
# the password "correct horse battery" under ONE bcrypt hash at cost 4: the seed measures
# lookups, not hashing. Session ids and reset-token hashes are 64 hex digits as the service
# stores them (hashes of nothing anyone holds: no seeded session or token can be used).
# Runs in one transaction, then ANALYZE (PostgreSQL here runs without autovacuum).
set -euo pipefail

URL=${1:?usage: bench/seed.sh DATABASE_URL COUNT}
COUNT=${2:?usage: bench/seed.sh DATABASE_URL COUNT}
SESSIONS=${SEED_SESSIONS:-5}
[[ $COUNT =~ ^[0-9]+$ && $SESSIONS =~ ^[1-9][0-9]*$ ]] || { echo "COUNT and SEED_SESSIONS must be numbers" >&2; exit 2; }
# bcrypt (cost 4) of "correct horse battery".
HASH='$2b$04$7qNKshT98l8aX5kfeKXvC.x6vPsrPtl.sco7vQ9E3zqjk6FVHe/i6'

if [[ $URL == postgres://* || $URL == postgresql://* ]]; then
  psql "$URL" -v ON_ERROR_STOP=1 -qX <<SQL
BEGIN;
CREATE TEMP TABLE seed_n AS
  SELECT i, lpad(i::text, 22, '0') AS n, (now() AT TIME ZONE 'UTC') AS at FROM generate_series(1, $COUNT) i;
INSERT INTO auth_identity (id, tenant_id, app_metadata, security_stamp, created_at, updated_at)
  SELECT 'authid_SEED' || n, 'default', '{"customer_id":"cus_SEED' || n || '"}', md5('stamp' || i), at, at FROM seed_n;
INSERT INTO provider_identity (id, tenant_id, auth_identity_id, provider, entity_id, entity_key,
                               provider_metadata, user_metadata, created_at, updated_at)
  SELECT 'SEED' || n, 'default', 'authid_SEED' || n, 'emailpass', 'seed' || i || '@example.com',
         'seed' || i || '@example.com', '{"password":"$HASH"}', '{}', at, at FROM seed_n;
INSERT INTO customer (id, tenant_id, email, has_account, created_at, updated_at)
  SELECT 'cus_SEED' || n, 'default', 'seed' || i || '@example.com', true, at, at FROM seed_n;
INSERT INTO auth_session (id, tenant_id, auth_identity_id, actor_type, auth_provider, security_stamp, created_at, expires_at)
  SELECT encode(sha256(('seed-session-' || i || '-' || k)::bytea), 'hex'), 'default', 'authid_SEED' || n,
         'customer', 'emailpass', md5('stamp' || i), at - interval '1 day',
         CASE WHEN k = 1 THEN at - interval '1 day' + interval '10 hours' ELSE at + interval '10 hours' END
  FROM seed_n, generate_series(1, $SESSIONS) k;
INSERT INTO password_reset_token (id, tenant_id, provider_identity_id, token_hash, expires_at, created_at)
  SELECT 'authprt_SEED' || n, 'default', 'SEED' || n, encode(sha256(('seed-reset-' || i)::bytea), 'hex'),
         at + interval '15 minutes', at FROM seed_n WHERE i % 10 = 0;
COMMIT;
ANALYZE;
SQL
else
  [[ -f $URL ]] || { echo "$URL: no such SQLite file (run xclade-auth migrate first)" >&2; exit 2; }
  sqlite3 "$URL" <<SQL
.bail on
.timeout 10000
PRAGMA cache_size = -1000000;
BEGIN IMMEDIATE;
CREATE TEMP TABLE seed_n AS
  WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $COUNT)
  SELECT i, printf('%022d', i) AS n, strftime('%Y-%m-%d %H:%M:%f', 'now') AS at FROM s;
CREATE TEMP TABLE seed_k AS
  WITH RECURSIVE s(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < $SESSIONS) SELECT k FROM s;
INSERT INTO auth_identity (id, tenant_id, app_metadata, security_stamp, created_at, updated_at)
  SELECT 'authid_SEED' || n, 'default', '{"customer_id":"cus_SEED' || n || '"}', lower(hex(randomblob(16))), at, at FROM seed_n;
INSERT INTO provider_identity (id, tenant_id, auth_identity_id, provider, entity_id, entity_key,
                               provider_metadata, user_metadata, created_at, updated_at)
  SELECT 'SEED' || n, 'default', 'authid_SEED' || n, 'emailpass', 'seed' || i || '@example.com',
         'seed' || i || '@example.com', '{"password":"$HASH"}', '{}', at, at FROM seed_n;
INSERT INTO customer (id, tenant_id, email, has_account, created_at, updated_at)
  SELECT 'cus_SEED' || n, 'default', 'seed' || i || '@example.com', 1, at, at FROM seed_n;
INSERT INTO auth_session (id, tenant_id, auth_identity_id, actor_type, auth_provider, security_stamp, created_at, expires_at)
  SELECT lower(hex(randomblob(32))), 'default', 'authid_SEED' || n, 'customer', 'emailpass', 'seed-stamp', datetime('now', '-1 day'),
         CASE WHEN k = 1 THEN datetime('now', '-14 hours') ELSE datetime('now', '+10 hours') END
  FROM seed_n, seed_k;
INSERT INTO password_reset_token (id, tenant_id, provider_identity_id, token_hash, expires_at, created_at)
  SELECT 'authprt_SEED' || n, 'default', 'SEED' || n, lower(hex(randomblob(32))),
         datetime('now', '+15 minutes'), at FROM seed_n WHERE i % 10 = 0;
COMMIT;
ANALYZE;
SQL
fi
