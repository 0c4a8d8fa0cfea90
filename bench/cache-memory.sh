#!/usr/bin/env bash
# What the identity cache costs in memory (`just bench-cache-memory`): a release server on
# PostgreSQL seeded with COUNT accounts (bench/seed.sh), refreshes of every account's token
# (wrk with bench/tokens.lua, tokens minted here with the bench's JWT secret and the seeded
# stamps), and the server's resident memory before and after, against the number of entries
# `/metrics` reports. Prints a Markdown table (and writes it to $BENCH_CACHE_OUT when set).
#
# Settings: BENCH_CACHE_COUNT (accounts, default 100000), BENCH_PG as in run.sh. Needs wrk, psql,
# curl, python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

COUNT=${BENCH_CACHE_COUNT:-100000}
WORK=$(mktemp -d /tmp/xa-cache-memory.XXXXXX)
NAME=cache-memory
# shellcheck source=bench/lib.sh
source bench/lib.sh
pg_isready -q -h 127.0.0.1 || die "PostgreSQL is not answering on 127.0.0.1:5432"

log "building $SHA$DIRTY (release)"
cargo build -q --release -p auth-server --bin xclade-auth

DB="xa_cache_memory_$$"
psql_admin -c "CREATE DATABASE $DB" >/dev/null
DBS+=("$DB")
URL="$PG_SERVER/$DB"
env -i PATH="$PATH" RUST_LOG=warn DATABASE_URL="$URL" DATA_DIR="$WORK/data" JWT_SECRET="$SECRET" "$BIN" migrate >/dev/null
log "seeding $COUNT accounts"
SEED_SESSIONS=1 bash bench/seed.sh "$URL" "$COUNT" >/dev/null

port=$(free_port)
admin_port=$(free_port)
env -i PATH="$PATH" RUST_LOG=warn RATE_LIMIT_ENABLED=false LOG_SINK=false JWT_SECRET="$SECRET" HOST=127.0.0.1 \
  PORT="$port" ADMIN_PORT="$admin_port" DATA_DIR="$WORK/data" DATABASE_URL="$URL" IDENTITY_CACHE_SIZE="$COUNT" \
  "$BIN" serve >"$WORK/server.log" 2>&1 &
server=$!
PIDS+=("$server")
wait_up "http://127.0.0.1:$port" server "$WORK/server.log"
admin="http://127.0.0.1:$admin_port"

# The seeded accounts' tokens: HS256 with the bench's secret, the stamp the seed wrote
# (md5('stamp' || i) on PostgreSQL).
python3 - "$COUNT" "$SECRET" >"$WORK/tokens" <<'PY'
import base64, hashlib, hmac, json, sys, time
count, secret = int(sys.argv[1]), sys.argv[2].encode()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
now = int(time.time())
for i in range(1, count + 1):
    n = str(i).zfill(22)
    claims = {"actor_id": f"cus_SEED{n}", "actor_type": "customer", "auth_identity_id": f"authid_SEED{n}",
              "mfa_enabled": False, "mfa_challenge_completed_at": None,
              "auth_provider": "emailpass", "app_metadata": {"customer_id": f"cus_SEED{n}"}, "user_metadata": {},
              "iat": now, "exp": now + 86400, "stamp": hashlib.md5(f"stamp{i}".encode()).hexdigest(), "tenant": "default"}
    body = head + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    print(body + "." + b64(hmac.new(secret, body.encode(), hashlib.sha256).digest()))
PY

metric() { curl -s "$admin/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }
# Warm up on one token (the allocator's arenas, the pool's connections), then measure.
head -n 1 "$WORK/tokens" >"$WORK/one"
BENCH_TOKENS="$WORK/one" wrk -t1 -c16 -d2s -s bench/tokens.lua "http://127.0.0.1:$port/auth/token/refresh" >/dev/null
before_rss=$(rss_kb)
before_entries=$(metric xclade_auth_identity_cache_entries)
log "refreshing $COUNT tokens (RSS $before_rss kB, $before_entries entries)"
line=$(BENCH_TOKENS="$WORK/tokens" wrk -t1 -c16 -d20s -s bench/tokens.lua "http://127.0.0.1:$port/auth/token/refresh" | grep '^RESULT')
[[ $(field non2xx "$line") == 0 && $(field errors "$line") == 0 ]] || die "refresh failed: $line"
after_rss=$(rss_kb)
after_entries=$(metric xclade_auth_identity_cache_entries)
hits=$(metric 'xclade_auth_identity_cache_lookups_total{outcome="hit"}')
misses=$(metric 'xclade_auth_identity_cache_lookups_total{outcome="miss"}')
TABLE="$WORK/table.md"
{
  echo "Identity cache memory, \`$SHA\`$DIRTY, $(date -u '+%Y-%m-%d'), PostgreSQL, $COUNT seeded accounts, \`IDENTITY_CACHE_SIZE=$COUNT\`, every account's token refreshed for 20 s (wrk \`-t1 -c16\`, $(field requests "$line") refreshes):"
  echo
  echo "| Entries before | Entries after | RSS before | RSS after | Per entry | Lookups (hits / misses) |"
  echo "|---|---|---|---|---|---|"
  awk -v eb="$before_entries" -v ea="$after_entries" -v rb="$before_rss" -v ra="$after_rss" -v h="$hits" -v m="$misses" \
    'BEGIN {printf "| %d | %d | %.1f MB | %.1f MB | %.0f bytes | %d / %d |\n", eb, ea, rb / 1024, ra / 1024, (ra - rb) * 1024 / (ea - eb), h, m}'
} >"$TABLE"
cat "$TABLE"
[[ -n ${BENCH_CACHE_OUT:-} ]] && cp "$TABLE" "$BENCH_CACHE_OUT"
exit 0
