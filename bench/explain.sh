#!/usr/bin/env bash
# The plans of the hot-path queries over a seeded database (bench/seed.sh): prints each plan and
# fails (exit 1) when one reads a table by a full scan instead of an index.
#
#   bench/explain.sh DATABASE_URL [COUNT]
#
# DATABASE_URL as for bench/seed.sh; COUNT (default 1000) is how many accounts were seeded,
# to pick one in the middle. The statements are the store's queries
# (crates/auth-store-diesel/src/{identity,session,customer}.rs) written out in SQL with the
# values of one seeded account:
#   login       identity by (tenant, provider, entity_key)      IdentityStore::find_by_email
#   refresh     identity by id (the token's check)              IdentityStore::find_by_id
#   session     session by hash, with its identity              SessionStore::find_session
#   customer    customer by id                                  CustomerStore::find_customer
#   reset token reset token by hash                             IdentityStore (reset-password)
#   janitor     a batch of expired sessions                     Housekeeping (janitor.rs)
# On PostgreSQL each statement is prepared, run under EXPLAIN ANALYZE with a custom and with a
# generic plan, and fails on "Seq Scan" or on 100 or more rows read and dropped by a filter; on
# SQLite (EXPLAIN QUERY PLAN, parameters unbound) on a "SCAN <table>" step (a search by index
# reads "SEARCH <table> USING ... INDEX").
set -euo pipefail

URL=${1:?usage: bench/explain.sh DATABASE_URL [COUNT]}
COUNT=${2:-1000}
i=$((COUNT / 2 > 0 ? COUNT / 2 : 1))
n=$(printf '%022d' "$i")
email="seed$i@example.com"
i10=$(((i / 10 > 0 ? i / 10 : 1) * 10))
n10=$(printf '%022d' "$i10")

if [[ $URL == postgres://* || $URL == postgresql://* ]]; then
  backend=postgres
  token_value="encode(sha256('seed-reset-$i10'::bytea), 'hex')"
  session_value="encode(sha256('seed-session-$i-2'::bytea), 'hex')"
  now="(now() AT TIME ZONE 'UTC')"
else
  # SQLite plans the statements with their parameters unbound, as the server prepares them.
  backend=sqlite
fi
columns="auth_identity.id, provider_identity.id, provider_identity.provider, provider_identity.entity_id,
  provider_identity.provider_metadata, auth_identity.app_metadata, provider_identity.user_metadata,
  auth_identity.security_stamp"
identities="provider_identity INNER JOIN auth_identity ON provider_identity.auth_identity_id = auth_identity.id
  WHERE provider_identity.tenant_id = \$1 AND auth_identity.tenant_id = \$1 AND provider_identity.provider = \$2"

# Each statement with numbered parameters, and the values for PostgreSQL's EXECUTE.
declare -A SQL=(
  [login]="SELECT $columns FROM $identities AND provider_identity.entity_key = \$3"
  [refresh]="SELECT $columns FROM $identities AND auth_identity.id = \$3"
  [session]="SELECT auth_session.actor_type, auth_session.auth_provider, auth_session.security_stamp, $columns
  FROM auth_session INNER JOIN (auth_identity INNER JOIN provider_identity ON provider_identity.auth_identity_id = auth_identity.id)
  ON auth_session.auth_identity_id = auth_identity.id
  WHERE auth_session.id = \$1 AND auth_session.tenant_id = \$2 AND auth_session.expires_at > \$3
  AND provider_identity.provider = auth_session.auth_provider"
  [customer]="SELECT id, email, first_name, last_name, phone, company_name, metadata, has_account, created_at, updated_at
  FROM customer WHERE id = \$1 AND tenant_id = \$2 AND deleted_at IS NULL"
  [reset_token]="SELECT id FROM password_reset_token WHERE token_hash = \$1
  AND provider_identity_id = \$2 AND tenant_id = \$3 AND expires_at > \$4"
  [janitor]="SELECT id FROM auth_session WHERE expires_at <= \$1 ORDER BY expires_at LIMIT 1000"
)
declare -A ARGS=(
  [login]="'default', 'emailpass', '$email'"
  [refresh]="'default', 'emailpass', 'authid_SEED$n'"
  [session]="${session_value:-}, 'default', ${now:-}"
  [customer]="'cus_SEED$n', 'default'"
  [reset_token]="${token_value:-}, 'SEED$n10', 'default', ${now:-}"
  [janitor]="${now:-}"
)

failed=()
for name in login refresh session customer reset_token janitor; do
  if [[ $backend == postgres ]]; then
    # Both plans the server may run: the custom plan of its first executions and the generic
    # plan PostgreSQL switches a prepared statement to after five. ANALYZE runs the statement:
    # a plan that reads rows only to drop them ("Rows Removed by Filter") is a scan too.
    plan=""
    for mode in force_custom_plan force_generic_plan; do
      plan+="-- $mode"$'\n'
      plan+=$(psql "$URL" -v ON_ERROR_STOP=1 -qAtX <<SQL
SET plan_cache_mode = $mode;
PREPARE q AS ${SQL[$name]};
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE q(${ARGS[$name]});
SQL
      )$'\n'
    done
    bad=$(grep -E 'Seq Scan|Rows Removed by (Filter|Index Recheck): ([0-9]{3,})' <<<"$plan" || true)
  else
    plan=$(sqlite3 -cmd ".timeout 10000" "$URL" "EXPLAIN QUERY PLAN $(sed 's/\$[0-9]/?/g' <<<"${SQL[$name]}")")
    # A step that scans a table ("SCAN t", also "SCAN t USING COVERING INDEX": a whole index),
    # or that searches provider_identity by tenant and provider alone (every account).
    bad=$(grep -E '(^|[^A-Z])SCAN |\(tenant_id=\? AND provider=\?\)' <<<"$plan" || true)
  fi
  echo "== $backend $name"
  sed 's/^/   /' <<<"$plan"
  [[ -z $bad ]] || failed+=("$name")
done
if ((${#failed[@]})); then
  echo "FAIL ($backend): full scan in: ${failed[*]}" >&2
  exit 1
fi
echo "OK ($backend): every hot-path query reads by index"
