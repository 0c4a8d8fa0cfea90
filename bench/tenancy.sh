#!/usr/bin/env bash
# What tenant resolution costs on the hot path (`just bench-tenancy`): one release build, two
# servers per backend, refresh measured with wrk in alternation (off, on, on, off, ...):
#   off  TENANT_HOST_SUFFIX unset: every request is the tenant `default` (the zero-configuration
#        start);
#   on   TENANT_HOST_SUFFIX=.api.bench with BENCH_TENANTS tenants, requests for
#        bench.api.bench (Host header): the host is parsed and looked up on every request.
# Prints a Markdown table (and writes it to $BENCH_TENANCY_OUT when set).
#
# Needs what bench/compare.sh needs. Settings: BENCH_RUNS (default 5), BENCH_TENANTS (default 50),
# BENCH_PG as in run.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RUNS=${BENCH_RUNS:-5}
TENANTS=${BENCH_TENANTS:-50}
SUFFIX=.api.bench
STORE_HOST=bench$SUFFIX

WORK=$(mktemp -d /tmp/xa-tenancy.XXXXXX)
NAME=tenancy
# shellcheck source=bench/lib.sh
source bench/lib.sh
pg_isready -q -h 127.0.0.1 || die "PostgreSQL is not answering on 127.0.0.1:5432"

log "building $SHA$DIRTY (release)"
cargo build -q --release -p auth-server --bin xclade-auth

# The environment of a server (and of the CLI over its database): NAME DATABASE_URL SUFFIX PORT.
server_env() {
  local dir="$WORK/$1"
  echo PATH="$PATH" RUST_LOG=warn RATE_LIMIT_ENABLED=false PASSWORD_MIN_STRENGTH=0 LOG_SINK=false \
    BCRYPT_COST=4 JWT_SECRET="$SECRET" HOST=127.0.0.1 PORT="$4" ADMIN_PORT=0 DATA_DIR="$dir/data" \
    DATABASE_URL="$2" ${3:+TENANT_HOST_SUFFIX=$3}
}

# start NAME DATABASE_URL SUFFIX: starts a server, sets URL and TOKEN (a signed-in customer's of
# the store the requests are for).
start() {
  local name=$1 db=$2 suffix=$3 dir="$WORK/$1" port i
  mkdir -p "$dir"
  port=$("${CLIENT[@]}" port)
  # shellcheck disable=SC2046
  if [[ -n $suffix ]]; then
    (cd "$dir" && env -i $(server_env "$name" "$db" "$suffix" "$port") "$ROOT/$BIN" migrate) >>"$dir/cli.log" 2>&1
    for ((i = 1; i < TENANTS; i++)); do
      (cd "$dir" && env -i $(server_env "$name" "$db" "$suffix" "$port") "$ROOT/$BIN" tenant create "store$i") \
        >>"$dir/cli.log" 2>&1 || die "creating tenant store$i"
    done
    (cd "$dir" && env -i $(server_env "$name" "$db" "$suffix" "$port") "$ROOT/$BIN" tenant create bench) \
      >>"$dir/cli.log" 2>&1 || die "creating tenant bench"
  fi
  # shellcheck disable=SC2046
  (cd "$dir" && exec env -i $(server_env "$name" "$db" "$suffix" "$port") "$ROOT/$BIN" serve) >>"$dir/server.log" 2>&1 &
  PIDS+=("$!")
  URL="http://127.0.0.1:$port"
  wait_up "$URL" "$name" "$dir/server.log"
  HOST_HEADER=${suffix:+$STORE_HOST}
  TOKEN=$(BENCH_HOST=$HOST_HEADER "${CLIENT[@]}" token "$URL" "bench-$name@example.com" "correct horse battery")
}

ROWS=()
for backend in sqlite postgres; do
  declare -A url=() token=() host=()
  for side in off on; do
    if [[ $backend == sqlite ]]; then
      db="$WORK/$side-$backend/auth.sqlite"
      mkdir -p "$(dirname "$db")"
    else
      name="xa_tenancy_${side}_$$"
      psql_admin -c "CREATE DATABASE $name" >/dev/null
      DBS+=("$name")
      db="$PG_SERVER/$name"
    fi
    suffix=""
    [[ $side == on ]] && suffix=$SUFFIX
    start "$side-$backend" "$db" "$suffix"
    url[$side]=$URL token[$side]=$TOKEN host[$side]=$HOST_HEADER
  done
  [[ $backend == postgres ]] && for name in "${DBS[@]}"; do psql "$PG_SERVER/$name" -qc ANALYZE; done
  declare -A rps=() p99=()
  rps[off]="" rps[on]="" p99[off]="" p99[on]=""
  for ((i = 1; i <= RUNS; i++)); do
    order=(off on)
    ((i % 2 == 0)) && order=(on off)
    for side in "${order[@]}"; do
      read -r r p < <(measure "${url[$side]}" "${token[$side]}" "${host[$side]}") || true
      [[ -n ${r:-} ]] || die "the $side $backend measurement failed"
      rps[$side]+="$r " p99[$side]+="$p "
      log "$backend $side run $i: $r req/s, p99 $p ms"
    done
  done
  # shellcheck disable=SC2086
  b=$(median ${rps[off]}) h=$(median ${rps[on]}) bp=$(median ${p99[off]}) hp=$(median ${p99[on]})
  change=$(awk -v b="$b" -v h="$h" 'BEGIN {printf "%+.1f %%", (h - b) * 100 / b}')
  ROWS+=("| refresh, $backend | ${rps[off]% } | ${rps[on]% } | $b (p99 $bp ms) | $h (p99 $hp ms) | $change |")
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
  PIDS=()
  unset url token host rps p99
done

{
  echo "Refresh with tenant resolution off (\`TENANT_HOST_SUFFIX\` unset) and on (\`$SUFFIX\`, $TENANTS tenants, \`Host: $STORE_HOST\`), \`$SHA\`$DIRTY, one run on $(date -u +%Y-%m-%d), load average at the start $(cut -d' ' -f1-3 /proc/loadavg); wrk \`${WRK_ARGS[*]}\`, $RUNS runs each, alternating:"
  echo
  echo "| Measure | off runs (req/s) | on runs (req/s) | off median | on median | change |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
} | tee "${BENCH_TENANCY_OUT:-/dev/null}"
