#!/usr/bin/env bash
# Three instances on one PostgreSQL (`just bench-instances`): the aggregate refresh throughput of
# three release servers on one database, each driven by its own wrk at once, against one
# instance alone, with the identity cache on (the default) and off (IDENTITY_CACHE_SIZE=0:
# every refresh reads PostgreSQL). Reported: req/s (sum, and per instance), the worst p99, and
# the CPU of the servers, of PostgreSQL's processes and of wrk, in cores, over the run.
#
# Settings: BENCH_RUNS (3 runs per case, the median of the sums is reported), BENCH_PG as in
# run.sh. Needs wrk, psql, curl. Prints a Markdown table (and writes it to $BENCH_INSTANCES_OUT
# when set). Everything it starts is stopped and its database dropped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RUNS=${BENCH_RUNS:-3}
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/xa-instances.XXXXXX)
NAME=instances
# shellcheck source=bench/lib.sh
source bench/lib.sh
WRK_ARGS=(-t1 -c16 -d10s --timeout 10s --latency)
pg_isready -q -h 127.0.0.1 || die "PostgreSQL is not answering on 127.0.0.1:5432"

log "building $SHA$DIRTY (release)"
cargo build -q --release -p auth-server --bin xclade-auth

# ticks PID...: the CPU ticks (user + system) the processes used so far.
ticks() {
  local pid sum=0 t
  for pid in "$@"; do
    t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    sum=$((sum + ${t:-0}))
  done
  echo "$sum"
}
# PostgreSQL's processes: the postmaster and every backend.
pg_pids() { pgrep -x postgres || pgrep -f 'postgres:' || true; }

DB="xa_instances_$$"
psql_admin -c "CREATE DATABASE $DB" >/dev/null
DBS+=("$DB")
URL="$PG_SERVER/$DB"

# start CACHE_SIZE: three instances on the database; sets PORTS and SERVER_PIDS.
start() {
  local i port log
  PORTS=() SERVER_PIDS=()
  for i in 1 2 3; do
    port=$(free_port)
    log="$WORK/server-$1-$i.log"
    mkdir -p "$WORK/data-$i"
    env -i PATH="$PATH" RUST_LOG=warn RATE_LIMIT_ENABLED=false PASSWORD_MIN_STRENGTH=0 LOG_SINK=false \
      BCRYPT_COST=4 JWT_SECRET="$SECRET" HOST=127.0.0.1 PORT="$port" ADMIN_PORT=0 DATA_DIR="$WORK/data-$i" \
      DATABASE_URL="$URL" IDENTITY_CACHE_SIZE="$1" "$BIN" serve >"$log" 2>&1 &
    PIDS+=($!)
    SERVER_PIDS+=($!)
    PORTS+=("$port")
    wait_up "http://127.0.0.1:$port" "instance $i" "$log"
  done
}

stop() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
}

# one_wrk PORT OUT: a wrk run of refresh against the instance on PORT, its RESULT line into OUT.
one_wrk() {
  BENCH_AUTH="$TOKEN" wrk "${WRK_ARGS[@]}" -s bench/post.lua "http://127.0.0.1:$1/auth/token/refresh" \
    | grep '^RESULT' >"$2"
}

# run_case N: wrk against the first N instances at once; prints "sum_rps worst_p99_ms server_cores pg_cores wrk_cores per-instance".
run_case() {
  local n=$1 i pg before_s before_pg started elapsed line rps p99 sum=0 worst=0 per="" wpids=() wt=0
  mapfile -t pg < <(pg_pids)
  before_s=$(ticks "${SERVER_PIDS[@]}")
  before_pg=$(ticks "${pg[@]}")
  started=$(date +%s%N)
  for ((i = 0; i < n; i++)); do
    one_wrk "${PORTS[$i]}" "$WORK/wrk-$i" &
    wpids+=($!)
  done
  for i in "${!wpids[@]}"; do wait "${wpids[$i]}"; done
  elapsed=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN {print (b - a) / 1e9}')
  mapfile -t pg < <(pg_pids)
  local server_cores pg_cores
  server_cores=$(awk -v t="$(($(ticks "${SERVER_PIDS[@]}") - before_s))" -v hz="$CLK_TCK" -v s="$elapsed" 'BEGIN {printf "%.2f", t / hz / s}')
  pg_cores=$(awk -v t="$(($(ticks "${pg[@]}") - before_pg))" -v hz="$CLK_TCK" -v s="$elapsed" 'BEGIN {printf "%.2f", t / hz / s}')
  for ((i = 0; i < n; i++)); do
    line=$(cat "$WORK/wrk-$i")
    [[ $(field non2xx "$line") == 0 && $(field errors "$line") == 0 ]] || die "refresh failed under load: $line"
    rps=$(field rps "$line")
    p99=$(awk -v p="$(field p99_us "$line")" 'BEGIN {printf "%.2f", p / 1000}')
    sum=$(awk -v a="$sum" -v b="$rps" 'BEGIN {print a + b}')
    worst=$(awk -v a="$worst" -v b="$p99" 'BEGIN {print (b > a) ? b : a}')
    per+="$(printf '%.0f' "$rps")/"
  done
  printf '%.0f %s %s %s %s\n' "$sum" "$worst" "$server_cores" "$pg_cores" "${per%/}"
}

TABLE="$WORK/table.md"
{
  echo "Three instances on one PostgreSQL, \`$SHA\`$DIRTY, $(date -u '+%Y-%m-%d'), load average at the start $LOAD_START; wrk \`${WRK_ARGS[*]}\` per instance, all at once, $RUNS runs (median of the sums); cores = CPU time / elapsed time:"
  echo
  echo "| Identity cache | Instances driven | Refresh req/s (sum) | per instance | worst p99 ms | server cores | PostgreSQL cores | runs (sums) |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$TABLE"

for cache in 100000 0; do
  label=$([[ $cache == 0 ]] && echo "off (IDENTITY_CACHE_SIZE=0)" || echo "on (default)")
  log "identity cache $label: starting three instances"
  start "$cache"
  TOKEN=$(token "http://127.0.0.1:${PORTS[0]}" bench@example.com)
  [[ -n $TOKEN ]] || die "no token"
  for n in 1 3; do
    sums=() results=()
    for ((r = 1; r <= RUNS; r++)); do
      line=$(run_case "$n")
      log "cache $cache, $n instance(s), run $r: $line"
      results+=("$line")
      sums+=("$(cut -d' ' -f1 <<<"$line")")
    done
    med=$(median "${sums[@]}")
    # The run whose sum is the median (the first such).
    for line in "${results[@]}"; do [[ $(cut -d' ' -f1 <<<"$line") == "$med" ]] && break; done
    read -r sum worst sc pgc per <<<"$line"
    echo "| $label | $n | $sum | $per | $worst | $sc | $pgc | ${sums[*]} |" >>"$TABLE"
  done
  stop
done

cat "$TABLE"
[[ -n ${BENCH_INSTANCES_OUT:-} ]] && cp "$TABLE" "$BENCH_INSTANCES_OUT"
exit 0
