#!/usr/bin/env bash
# tools/medusa-check/run.sh: a real Medusa 2.21.2 backend (installed from the npm registry),
# configured with an Xclade Auth tenant's ES256 public key, takes that tenant's tokens on a
# customer route (GET /store/customers/me) and refuses the others.
# Manual check, not part of CI. See docs/operations.md, "Medusa backends".
#
# Prerequisites:
#   - node >= 20 and npm (tested: node 20.20.2, npm 11.19.1), network to registry.npmjs.org
#     (the first run installs about 1,100 packages, ~700 MB, into $WORK/node_modules)
#   - PostgreSQL on $PGHOST:$PGPORT (default 127.0.0.1:5432), user postgres with trust auth; psql
#     on the PATH. The database $MEDUSA_DB (default medusa_check) is dropped and re-created.
#   - curl, jq
#   - the xclade-auth binary: $XCLADE_AUTH, default <repo>/target/debug/xclade-auth
#     (cargo build -p auth-server)
#   - free ports $XCLADE_PORT (9300) and $MEDUSA_PORT (9310)
# Medusa runs with NODE_ENV=$MEDUSA_NODE_ENV (default production, where its configuration check
# refuses to start on an error rather than warn).
#
# Everything is written under $WORK (default /tmp/medusa-check), nothing in the repository.
# Both servers are stopped on exit; KEEP=1 keeps the database and $WORK/xclade.
# Exit code 0 when every check passed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/medusa-check}
XCLADE_AUTH=${XCLADE_AUTH:-$REPO/target/debug/xclade-auth}
XCLADE_PORT=${XCLADE_PORT:-9300}
MEDUSA_PORT=${MEDUSA_PORT:-9310}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
MEDUSA_DB=${MEDUSA_DB:-medusa_check}
MEDUSA_NODE_ENV=${MEDUSA_NODE_ENV:-production}
export PGHOST PGPORT PGUSER=postgres

EMAIL=medusa-check@example.com
PASSWORD=medusa-check-password-1
XC="http://127.0.0.1:$XCLADE_PORT"
MD="http://127.0.0.1:$MEDUSA_PORT"

for tool in node npm npx psql curl jq; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
[ -x "$XCLADE_AUTH" ] || { echo "no xclade-auth binary at $XCLADE_AUTH (set XCLADE_AUTH)" >&2; exit 2; }

log() { printf '\n== %s\n' "$*"; }
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  if [ "${KEEP:-0}" != 1 ]; then
    sleep 1
    psql -q -d postgres -c "drop database if exists $MEDUSA_DB with (force)" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# --- Medusa install (once) ------------------------------------------------------------------
mkdir -p "$WORK"
cp "$HERE/package.json" "$HERE/medusa-config.js" "$WORK/"
if [ "$(node -p 'try{require(process.argv[1]).version}catch(e){""}' "$WORK/node_modules/@medusajs/medusa/package.json")" != 2.21.2 ]; then
  log "npm install in $WORK"
  (cd "$WORK" && npm install --no-audit --no-fund --loglevel=error)
fi
log "versions"
echo "node $(node --version), npm $(npm --version)"
for p in @medusajs/medusa @medusajs/framework @medusajs/cli jsonwebtoken; do
  echo "$p $(node -p 'require(process.argv[1]).version' "$WORK/node_modules/$p/package.json")"
done
"$XCLADE_AUTH" --version
psql -Atc 'show server_version' -d postgres | sed 's/^/postgres /'

# --- Xclade Auth: one customer, an HS256 token, then an ES256 key and an ES256 token ---------
XDIR="$WORK/xclade"
rm -rf "$XDIR" && mkdir -p "$XDIR"
export DATA_DIR="$XDIR" JWT_SECRET=medusa-check-xclade-secret-0123456789abcdef PORT=$XCLADE_PORT \
  ADMIN_PORT=off PASSWORD_MIN_STRENGTH=0 RATE_LIMIT_ENABLED=false
log "xclade-auth serve on $XC"
# each server runs in a session of its own (setsid) so that cleanup can stop it and its children
(cd "$XDIR" && exec setsid "$XCLADE_AUTH" serve </dev/null >"$XDIR/serve.log" 2>&1) &
PIDS+=("$!")
for _ in $(seq 1 50); do curl -sf "$XC/health" >/dev/null && break; sleep 0.2; done

post() { curl -sS -X POST "$1" -H 'content-type: application/json' "${@:3}" -d "$2"; }
jwt_part() { node -e 'console.log(Buffer.from(process.argv[1].split(".")[+process.argv[2]],"base64url").toString())' "$1" "$2"; }

reg=$(post "$XC/auth/customer/emailpass/register" "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}")
customer=$(post "$XC/store/customers" "{\"email\":\"$EMAIL\"}" -H "authorization: Bearer $(jq -r .token <<<"$reg")")
echo "POST /store/customers -> $customer"
CUS=$(jq -r .customer.id <<<"$customer")
login() { post "$XC/auth/customer/emailpass" "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | jq -r .token; }
HS_TOKEN=$(login)
echo "token before the key: header $(jwt_part "$HS_TOKEN" 0)"

log "xclade-auth keys create --algorithm ES256"
KID=$(cd "$XDIR" && "$XCLADE_AUTH" keys create --algorithm ES256 2>/dev/null | awk '{print $1}')
(cd "$XDIR" && "$XCLADE_AUTH" keys show "$KID" 2>/dev/null) | tail -n +2 >"$XDIR/es256.pem"
cat "$XDIR/es256.pem"
sleep 1 # the serving instance picks the key up at its next tenant-directory refresh (250 ms)
ES_TOKEN=$(login)
echo "token after the key: header $(jwt_part "$ES_TOKEN" 0)"
echo "payload $(jwt_part "$ES_TOKEN" 1)"
[ "$(jwt_part "$ES_TOKEN" 1 | jq -r .actor_id)" = "$CUS" ] || { echo "actor_id is not $CUS" >&2; exit 1; }
# the same token with actor_id changed in the payload, signature kept
TAMPERED=$(node -e '
  const [h, p, s] = process.argv[1].split(".");
  const c = JSON.parse(Buffer.from(p, "base64url"));
  c.actor_id = "cus_01AAAAAAAAAAAAAAAAAAAAAAAA";
  console.log([h, Buffer.from(JSON.stringify(c)).toString("base64url"), s].join("."));' "$ES_TOKEN")

# --- Medusa ----------------------------------------------------------------------------------
log "database $MEDUSA_DB, medusa db:migrate"
psql -q -d postgres -c "drop database if exists $MEDUSA_DB with (force)" -c "create database $MEDUSA_DB"
export DATABASE_URL="postgres://postgres@$PGHOST:$PGPORT/$MEDUSA_DB" XCLADE_PEM_FILE="$XDIR/es256.pem"
unset PORT JWT_SECRET DATA_DIR
(cd "$WORK" && npx medusa db:migrate >"$WORK/migrate.log" 2>&1) || { tail -30 "$WORK/migrate.log"; exit 1; }
tail -1 "$WORK/migrate.log"

log "NODE_ENV=$MEDUSA_NODE_ENV medusa start on $MD"
(cd "$WORK" && NODE_ENV=$MEDUSA_NODE_ENV PORT=$MEDUSA_PORT exec setsid npx medusa start </dev/null >"$WORK/start.log" 2>&1) &
PIDS+=("$!")
for _ in $(seq 1 90); do curl -sf "$MD/health" >/dev/null && break; sleep 1; done
curl -sf "$MD/health" >/dev/null || { tail -40 "$WORK/start.log"; exit 1; }
grep -i -E "jwt|public key" "$WORK/start.log" || echo "(no JWT warning in Medusa's log)"

# the first start seeds a default store, sales channel and publishable key: use that key
PK=$(psql -d "$MEDUSA_DB" -Atc "select token from api_key where type = 'publishable' and revoked_at is null and deleted_at is null order by created_at limit 1")
[ -n "$PK" ] || { echo "no publishable key in $MEDUSA_DB" >&2; exit 1; }
echo "publishable key $PK"
# the customer Xclade created, under the same id (Medusa's customer module reads it by actor_id)
psql -q -d "$MEDUSA_DB" -c "insert into customer (id, email, has_account) values ('$CUS', '$EMAIL', true)"
echo "customer row $CUS inserted"


# --- the checks ------------------------------------------------------------------------------
FAIL=0
check() { # name expected-status curl-args...
  local name=$1 want=$2; shift 2
  local out code body
  out=$(curl -sS -w '\n%{http_code}' "$@")
  code=${out##*$'\n'}; body=${out%$'\n'*}
  if [ "$code" = "$want" ]; then echo "ok   $name: $code $body"; else echo "FAIL $name: $code (want $want) $body"; FAIL=1; fi
  LAST_BODY=$body
}
ME="$MD/store/customers/me"
log "GET /store/customers/me"
check "Xclade ES256 token" 200 "$ME" -H "x-publishable-api-key: $PK" -H "authorization: Bearer $ES_TOKEN"
[ "$(jq -r .customer.id <<<"$LAST_BODY")" = "$CUS" ] || { echo "FAIL customer id is not $CUS"; FAIL=1; }
check "Xclade ES256 token, payload tampered" 401 "$ME" -H "x-publishable-api-key: $PK" -H "authorization: Bearer $TAMPERED"
check "Xclade HS256 token (tenant before its key)" 401 "$ME" -H "x-publishable-api-key: $PK" -H "authorization: Bearer $HS_TOKEN"
check "no token" 401 "$ME" -H "x-publishable-api-key: $PK"
check "Xclade ES256 token, no publishable key" 400 "$ME" -H "authorization: Bearer $ES_TOKEN"

log "Medusa's own tokens (HS256 with its jwtSecret)"
check "Medusa register" 200 -X POST "$MD/auth/customer/emailpass/register" -H 'content-type: application/json' \
  -d '{"email":"medusa-own@example.com","password":"medusa-own-password"}'
MEDUSA_TOKEN=$(jq -r .token <<<"$LAST_BODY")
echo "Medusa's token header $(jwt_part "$MEDUSA_TOKEN" 0)"
check "Medusa's own token on POST /store/customers" 401 -X POST "$MD/store/customers" \
  -H "x-publishable-api-key: $PK" -H "authorization: Bearer $MEDUSA_TOKEN" -H 'content-type: application/json' \
  -d '{"email":"medusa-own@example.com"}'

log "Medusa's configuration check: jwtPublicKey without jwtOptions.algorithm, NODE_ENV=production"
stop_medusa() { kill -- "-${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; sleep 2; }
stop_medusa
set +e
(cd "$WORK" && NODE_ENV=production MEDUSA_CHECK_NO_ALGORITHM=1 PORT=$MEDUSA_PORT \
  timeout 90 npx medusa start </dev/null >"$WORK/start-no-algorithm.log" 2>&1)
rc=$?
set -e
if grep -q "JWT public key is provided but no algorithm is set" "$WORK/start-no-algorithm.log" &&
  ! grep -q "Server is ready" "$WORK/start-no-algorithm.log"; then
  echo "ok   refused to start (exit $rc): $(grep -m1 "JWT public key is provided" "$WORK/start-no-algorithm.log")"
else
  echo "FAIL expected the configuration error (exit $rc), see $WORK/start-no-algorithm.log"; FAIL=1
fi

log "result"
if [ "$FAIL" = 0 ]; then echo "all checks passed"; else echo "some checks failed"; fi
exit "$FAIL"
