#!/usr/bin/env bash
# Where a refresh's time goes while logins saturate hashing, on PostgreSQL (`just bench-tail`):
# the issue-14 question "why is the refresh p99 55 ms under login load". One release server at
# BCRYPT_COST=12, a login load (wrk -c16) keeping every hashing thread busy, and a refresh load
# (wrk -c16, 10 s) beside it, with the identity cache off (IDENTITY_CACHE_SIZE=0: every refresh
# takes a database turn, a blocking thread and a PostgreSQL round trip, as before issue 14) and
# on (the default: a refresh of a cached identity is answered on the HTTP worker).
#
# For each case it reports the refresh req/s and p99, and per group of threads (the server's
# HTTP workers, its blocking pool, its hashing threads, PostgreSQL's processes) the CPU
# they used and the time they spent runnable but waiting for a core (the run queue: the
# second field of /proc/<pid>/task/<tid>/schedstat), both in seconds over the refresh run.
#
# Settings: BENCH_PG as in run.sh. Needs wrk, psql, curl. Prints a Markdown table (and writes it
# to $BENCH_TAIL_OUT when set).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/xa-tail.XXXXXX)
NAME=tail
# shellcheck source=bench/lib.sh
source bench/lib.sh
pg_isready -q -h 127.0.0.1 || die "PostgreSQL is not answering on 127.0.0.1:5432"

log "building $SHA$DIRTY (release)"
cargo build -q --release -p auth-server --bin xclade-auth

DB="xa_tail_$$"
psql_admin -c "CREATE DATABASE $DB" >/dev/null
DBS+=("$DB")

# The thread group of a server thread, by its name.
group_of() {
  case $1 in
    hash-*) echo hashing ;;
    actix-rt*) echo workers ;;
    tokio-rt-worker*|tokio-runtime-w*) echo blocking ;;
    *) echo other ;;
  esac
}

# snapshot FILE SERVER_PID [PIDS...]: one line per thread: "tid group cpu_ticks runqueue_ns".
snapshot() {
  local out=$1 server=$2 t comm stat sched
  shift 2
  : >"$out"
  for t in /proc/"$server"/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) || continue
    stat=$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $12 + $13}') || continue
    sched=$(awk '{print $2}' "$t/schedstat" 2>/dev/null) || continue
    echo "${t##*/} $(group_of "$comm") $stat $sched" >>"$out"
  done
  local pid
  for pid in $(pgrep -x postgres || true); do
    for t in /proc/"$pid"/task/*; do
      stat=$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $12 + $13}') || continue
      sched=$(awk '{print $2}' "$t/schedstat" 2>/dev/null) || continue
      echo "${t##*/} postgres $stat $sched" >>"$out"
    done
  done
}

# deltas BEFORE AFTER: "group cpu_s/runqueue_s" per group, over the threads in both snapshots.
deltas() {
  awk -v hz="$CLK_TCK" 'NR == FNR {t[$1] = $3; n[$1] = $4; next}
    ($1 in t) {c[$2] += $3 - t[$1]; w[$2] += $4 - n[$1]}
    END {for (g in c) printf "%s %.2f/%.2f\n", g, c[g] / hz, w[g] / 1e9}' "$1" "$2" | sort
}

TABLE="$WORK/table.md"
{
  echo "Where a refresh's time goes while logins saturate hashing, PostgreSQL, \`$SHA\`$DIRTY, $(date -u '+%Y-%m-%d'), load average at the start $LOAD_START; refresh wrk \`-t1 -c16 -d10s\` beside a login load wrk \`-t1 -c16\` at BCRYPT_COST=12; seconds of CPU and of waiting for a core (run queue) over the refresh run, by thread group:"
  echo
  echo "| Identity cache | refresh req/s | p50 ms | p99 ms | logins/s | HTTP workers CPU / waiting | blocking pool | hashing threads | PostgreSQL |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >"$TABLE"

for cache in 0 100000; do
  label=$([[ $cache == 0 ]] && echo "off (every refresh reads PostgreSQL)" || echo "on (default)")
  port=$(free_port)
  mkdir -p "$WORK/data-$cache"
  env -i PATH="$PATH" RUST_LOG=warn RATE_LIMIT_ENABLED=false PASSWORD_MIN_STRENGTH=0 LOG_SINK=false \
    BCRYPT_COST=12 JWT_SECRET="$SECRET" HOST=127.0.0.1 PORT="$port" ADMIN_PORT=0 DATA_DIR="$WORK/data-$cache" \
    DATABASE_URL="$PG_SERVER/$DB" IDENTITY_CACHE_SIZE="$cache" "$BIN" serve >"$WORK/server-$cache.log" 2>&1 &
  server=$!
  PIDS+=("$server")
  url="http://127.0.0.1:$port"
  wait_up "$url" "server" "$WORK/server-$cache.log"
  body="{\"email\":\"tail@example.com\",\"password\":\"$PASSWORD\"}"
  token=$(token "$url" tail@example.com)
  [[ -n $token ]] || die "no token"
  log "identity cache $label: login load, then refresh beside it"
  (exec env BENCH_BODY="$body" wrk -t1 -c16 -d16s --timeout 10s --latency -s bench/post.lua \
    "$url/auth/customer/emailpass") >"$WORK/login-$cache.txt" 2>&1 &
  login=$!
  PIDS+=("$login")
  sleep 3
  (exec env BENCH_AUTH="$token" wrk -t1 -c16 -d10s --timeout 10s --latency -s bench/post.lua \
    "$url/auth/token/refresh") >"$WORK/refresh-$cache.txt" 2>&1 &
  refresh=$!
  PIDS+=("$refresh")
  sleep 0.2
  snapshot "$WORK/before-$cache" "$server"
  started=$(date +%s%N)
  sleep 9.5
  snapshot "$WORK/after-$cache" "$server"
  elapsed=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN {print (b - a) / 1e9}')
  wait "$refresh" || die "the refresh load failed"
  wait "$login" || die "the login load failed"
  line=$(grep '^RESULT' "$WORK/refresh-$cache.txt")
  [[ $(field non2xx "$line") == 0 && $(field errors "$line") == 0 ]] || die "refresh failed under load: $line"
  logins=$(field rps "$(grep '^RESULT' "$WORK/login-$cache.txt")")
  # Per group: CPU seconds / run-queue seconds over the window (threads that came and went
  # between the snapshots are left out).
  deltas "$WORK/before-$cache" "$WORK/after-$cache" >"$WORK/groups-$cache"
  g() { awk -v k="$1" '$1 == k {print $2}' "$WORK/groups-$cache"; }
  printf '| %s | %.0f | %.2f | %.2f | %.1f | %s | %s | %s | %s |\n' "$label" "$(field rps "$line")" \
    "$(awk -v p="$(field p50_us "$line")" 'BEGIN {print p / 1000}')" \
    "$(awk -v p="$(field p99_us "$line")" 'BEGIN {print p / 1000}')" "$logins" \
    "$(g workers)" "$(g blocking)" "$(g hashing)" "$(g postgres)" >>"$TABLE"
  log "window ${elapsed}s: $(tr '\n' ' ' <"$WORK/groups-$cache")"
  kill "$server"
  wait "$server" 2>/dev/null || true
done

cat "$TABLE"
[[ -n ${BENCH_TAIL_OUT:-} ]] && cp "$TABLE" "$BENCH_TAIL_OUT"
exit 0
