#!/usr/bin/env bash
# Refresh throughput of two builds in one run (`just bench-compare BASE`): the release binary of
# the commit BASE and the one of the work tree, each on SQLite and on PostgreSQL, measured with
# wrk in alternation (base, head, head, base, base, head, ...) so that drift on a busy machine
# hits both alike. Prints a Markdown table (and writes it to $BENCH_COMPARE_OUT when set).
#
# It is how a change that must not cost anything on the hot path (a refactoring) shows that it
# does not: the full suite (`just bench`) measures one build; this one puts two side by side.
#
# Needs what bench/run.sh needs (cargo, wrk, python3, curl, psql, PostgreSQL on 127.0.0.1:5432).
# Settings: BENCH_RUNS (wrk runs per build and backend, default 5), BENCH_PG as in run.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BASE=${1:?usage: bench/compare.sh BASE_COMMIT}
BASE_SHA=$(git rev-parse --short "$BASE^{commit}")
HEAD_RUNS=${BENCH_RUNS:-5}
WORK=$(mktemp -d /tmp/xa-compare.XXXXXX)
NAME=compare
# shellcheck source=bench/lib.sh
source bench/lib.sh
# The base build's work tree goes with the rest (bench/lib.sh's cleanup calls this).
on_cleanup() { git worktree remove --force "$WORK/base-tree" >/dev/null 2>&1; }
pg_isready -q -h 127.0.0.1 || die "PostgreSQL is not answering on 127.0.0.1:5432"

# Both builds share target/ (the dependencies are built once); each binary is copied out before
# the other build replaces it.
log "building $BASE_SHA (release)"
git worktree add --detach -q "$WORK/base-tree" "$BASE"
(cd "$WORK/base-tree" && CARGO_TARGET_DIR="$ROOT/target" cargo build -q --release -p auth-server --bin xclade-auth)
cp target/release/xclade-auth "$WORK/xclade-auth-base"
log "building $HEAD_SHA$DIRTY (release)"
cargo build -q --release -p auth-server --bin xclade-auth
cp target/release/xclade-auth "$WORK/xclade-auth-head"

# start NAME BINARY DATABASE_URL: starts a server, sets URL and TOKEN (a signed-in customer's).
start() {
  local name=$1 bin=$2 db=$3 dir="$WORK/$1" port
  mkdir -p "$dir"
  port=$("${CLIENT[@]}" port)
  (cd "$dir" && exec env -i PATH="$PATH" RUST_LOG=warn RATE_LIMIT_ENABLED=false PASSWORD_MIN_STRENGTH=0 \
    LOG_SINK=false BCRYPT_COST=4 JWT_SECRET="$SECRET" HOST=127.0.0.1 PORT="$port" ADMIN_PORT=0 \
    DATA_DIR="$dir/data" DATABASE_URL="$db" "$bin" serve) >>"$dir/server.log" 2>&1 &
  PIDS+=("$!")
  URL="http://127.0.0.1:$port"
  wait_up "$URL" "$name" "$dir/server.log"
  TOKEN=$("${CLIENT[@]}" token "$URL" "bench-$name@example.com" "correct horse battery")
}

ROWS=()
for backend in sqlite postgres; do
  declare -A url=() token=()
  for side in base head; do
    if [[ $backend == sqlite ]]; then
      db="$WORK/$side-$backend/auth.sqlite"
      mkdir -p "$(dirname "$db")"
    else
      name="xa_compare_${side}_$$"
      psql_admin -c "CREATE DATABASE $name" >/dev/null
      DBS+=("$name")
      db="$PG_SERVER/$name"
    fi
    start "$side-$backend" "$WORK/xclade-auth-$side" "$db"
    url[$side]=$URL token[$side]=$TOKEN
  done
  [[ $backend == postgres ]] && for name in "${DBS[@]}"; do psql "$PG_SERVER/$name" -qc ANALYZE; done
  declare -A rps=() p99=()
  rps[base]="" rps[head]="" p99[base]="" p99[head]=""
  for ((i = 1; i <= RUNS; i++)); do
    # base, head on odd runs; head, base on even ones
    order=(base head)
    ((i % 2 == 0)) && order=(head base)
    for side in "${order[@]}"; do
      read -r r p < <(measure "${url[$side]}" "${token[$side]}") || true
      [[ -n ${r:-} ]] || die "the $side $backend measurement failed"
      rps[$side]+="$r " p99[$side]+="$p "
      log "$backend $side run $i: $r req/s, p99 $p ms"
    done
  done
  # shellcheck disable=SC2086
  b=$(median ${rps[base]}) h=$(median ${rps[head]}) bp=$(median ${p99[base]}) hp=$(median ${p99[head]})
  change=$(awk -v b="$b" -v h="$h" 'BEGIN {printf "%+.1f %%", (h - b) * 100 / b}')
  ROWS+=("| refresh, $backend | ${rps[base]% } | ${rps[head]% } | $b (p99 $bp ms) | $h (p99 $hp ms) | $change |")
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
  PIDS=()
  unset url token rps p99
done

{
  echo "Refresh, \`$BASE_SHA\` (base) against \`$HEAD_SHA\`$DIRTY (head), one run on $(date -u +%Y-%m-%d), load average at the start $(cut -d' ' -f1-3 /proc/loadavg); wrk \`${WRK_ARGS[*]}\`, $RUNS runs each, alternating:"
  echo
  echo "| Measure | base runs (req/s) | head runs (req/s) | base median | head median | change |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
} | tee "${BENCH_COMPARE_OUT:-/dev/null}"
