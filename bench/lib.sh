# Shared by the benchmarks that run beside bench/run.sh (compare, tenancy, signing, scale,
# instances, tail): sourced, not run.
# The caller sets NAME (the log prefix) and WORK (a temporary folder), and fills PIDS (processes
# to stop) and DBS (databases to drop); everything is cleaned up on exit, and `on_cleanup`, when
# the script defines it, runs then too. It sets PG_SERVER (BENCH_PG, unless the caller set it),
# SECRET, PASSWORD, BIN (the release binary), SHA and DIRTY (what is measured) and LOAD_START.
#
# free_port: a free TCP port on 127.0.0.1.
# token URL EMAIL: registers EMAIL (PASSWORD) at the server at URL if need be, prints a login token.
# measure URL TOKEN [HOST]: one wrk run of refresh, prints "rps p99_ms".
# median N...: the median of the numbers.
# wait_up URL NAME LOG: waits until the server at URL answers HTTP (60 s), or dies with the log's tail.

WRK_ARGS=(-t1 -c16 -d10s --timeout 10s --latency)
CLIENT=(python3 bench/client.py)
PG_SERVER=${PG_SERVER:-${BENCH_PG:-postgres://postgres@127.0.0.1:5432}}
SECRET=bench-only-jwt-secret-0123456789abcdef0123456789
PASSWORD="correct horse battery"
BIN=target/release/xclade-auth
SHA=$(git rev-parse --short HEAD)
DIRTY=$(git status --porcelain --untracked-files=no | grep -q . && echo " (with uncommitted changes)" || true)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
PIDS=()
DBS=()

log() { printf '[%s %s] %s\n' "$NAME" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
psql_admin() { psql "$PG_SERVER/postgres" -v ON_ERROR_STOP=1 -qAtX "$@"; }

cleanup() {
  local rc=$? pid db
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  for db in "${DBS[@]}"; do psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; done
  # A script's own clean-up, when it defines one.
  declare -F on_cleanup >/dev/null && on_cleanup
  if ((rc == 0)); then rm -rf "$WORK"; else log "failed (exit $rc); logs kept in $WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! command -v wrk >/dev/null; then
  log "installing wrk (apt-get)"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null || die "could not install wrk"
fi

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

measure() {
  local line host=()
  [[ -n ${3:-} ]] && host=(-H "Host: $3")
  line=$(BENCH_AUTH="$2" wrk "${WRK_ARGS[@]}" "${host[@]}" -s bench/post.lua "$1/auth/token/refresh" | grep '^RESULT') \
    || die "no result from wrk"
  [[ $(field non2xx "$line") == 0 && $(field errors "$line") == 0 ]] || die "refresh failed under load: $line"
  awk -v r="$(field rps "$line")" -v p="$(field p99_us "$line")" 'BEGIN {printf "%.0f %.2f\n", r, p / 1000}'
}

wait_up() {
  local i
  # Any HTTP answer will do (the floor has no /health: it answers 404).
  for ((i = 0; i < 600; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1/health" 2>/dev/null) != 000 ]] && return 0
    sleep 0.1
  done
  tail -n 20 "$3" >&2
  die "$2 did not start"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

token() {
  local body="{\"email\":\"$2\",\"password\":\"$PASSWORD\"}"
  curl -s -o /dev/null -X POST -H 'content-type: application/json' -d "$body" "$1/auth/customer/emailpass/register"
  curl -s -X POST -H 'content-type: application/json' -d "$body" "$1/auth/customer/emailpass" \
    | sed -n 's/.*"token":"\([^"]*\)".*/\1/p'
}
