#!/usr/bin/env bash
# Cost as data grows (`just bench-scale`): for each backend and each size, a fresh database is
# migrated and seeded by bulk insert (bench/seed.sh: COUNT accounts with customers, 5 sessions
# each of which one expired, a reset token for every tenth), the hot-path plans are checked
# (bench/explain.sh, fails on a full scan), and a release server over it is measured:
#   janitor    its first pass (1 s after start) over the COUNT expired sessions: how long until
#              none is left (minus the 1 s wait), and refresh under wrk meanwhile, in 2 s runs
#              (the worst run's p99 and the median req/s);
#   refresh    POST /auth/token/refresh, wrk, BENCH_RUNS runs (median);
#   session    GET /store/customers/me with a session cookie (session by hash, its identity,
#              the customer), wrk, BENCH_RUNS runs (median), alternating with refresh;
#   login      POST /auth/customer/emailpass and POST .../reset-password for seeded accounts,
#              sequential on one connection (bench/client.py seq), interleaved: p50 and p99.
# Prints a Markdown table (and writes it to $BENCH_SCALE_OUT when set).
#
# Settings: BENCH_SCALES (default "10000 100000 1000000"), BENCH_BACKENDS (default
# "sqlite postgres"), BENCH_RUNS (3), BENCH_SEQ (300 sequential requests per case), BENCH_PG
# as in run.sh. Needs wrk, sqlite3, psql, curl, python3. Every database and file it creates is
# removed on exit (SQLite files even when it fails: they are gigabytes at 1M).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SCALES=${BENCH_SCALES:-10000 100000 1000000}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
RUNS=${BENCH_RUNS:-3}
SEQ=${BENCH_SEQ:-300}

WORK=$(mktemp -d /tmp/xa-scale.XXXXXX)
NAME=scale
# shellcheck source=bench/lib.sh
source bench/lib.sh
WRK_ARGS=(-t1 -c16 -d5s --timeout 10s --latency)
on_cleanup() { find "$WORK" -name '*.sqlite*' -delete 2>/dev/null || true; }
command -v sqlite3 >/dev/null || die "sqlite3 (the CLI) is needed: apt-get install sqlite3"
pg_isready -q -h 127.0.0.1 || die "PostgreSQL is not answering on 127.0.0.1:5432"

log "building $SHA$DIRTY (release)"
cargo build -q --release -p auth-server --bin xclade-auth

server_env() {
  echo PATH="$PATH" RUST_LOG=warn RATE_LIMIT_ENABLED=false PASSWORD_MIN_STRENGTH=0 LOG_SINK=false \
    BCRYPT_COST=4 JWT_SECRET="$SECRET" HOST=127.0.0.1 PORT="$3" ADMIN_PORT=0 DATA_DIR="$1/data" \
    DATABASE_URL="$2" JANITOR_INTERVAL=1h
}

# wrk_get URL COOKIE: one wrk run of GET with the cookie, prints "rps p99_ms".
wrk_get() {
  local line
  line=$(BENCH_METHOD=GET BENCH_COOKIE="$2" wrk "${WRK_ARGS[@]}" -s bench/post.lua "$1" | grep '^RESULT') || die "no result from wrk"
  [[ $(field non2xx "$line") == 0 && $(field errors "$line") == 0 ]] || die "GET failed under load: $line"
  awk -v r="$(field rps "$line")" -v p="$(field p99_us "$line")" 'BEGIN {printf "%.0f %.2f\n", r, p / 1000}'
}

# expired_left URL: 1 while an expired session remains, else 0.
expired_left() {
  if [[ $1 == postgres://* ]]; then
    psql "$1" -qAtX -c "SELECT count(*) FROM (SELECT 1 FROM auth_session WHERE expires_at <= (now() AT TIME ZONE 'UTC') LIMIT 1) s"
  else
    sqlite3 -cmd ".timeout 10000" "$1" \
      "SELECT count(*) FROM (SELECT 1 FROM auth_session WHERE expires_at <= strftime('%Y-%m-%d %H:%M:%f', 'now') LIMIT 1)"
  fi
}

ROWS=()
for backend in $BACKENDS; do
  for count in $SCALES; do
    tag="$backend-$count" dir="$WORK/$backend-$count"
    mkdir -p "$dir"
    if [[ $backend == sqlite ]]; then
      db="$dir/auth.sqlite"
    else
      dbname="xa_scale_${count}_$$"
      psql_admin -c "CREATE DATABASE $dbname" >/dev/null
      DBS+=("$dbname")
      db="$PG_SERVER/$dbname"
    fi
    port=$("${CLIENT[@]}" port)
    # shellcheck disable=SC2046
    (cd "$dir" && env -i $(server_env "$dir" "$db" "$port") "$ROOT/$BIN" migrate) >>"$dir/cli.log" 2>&1 || die "migrate ($tag)"
    log "$tag: seeding"
    t0=$(date +%s.%N)
    bench/seed.sh "$db" "$count" >>"$dir/seed.log" 2>&1 || { tail "$dir/seed.log" >&2; die "seeding ($tag)"; }
    seed_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')
    log "$tag: seeded in $seed_s s; EXPLAIN"
    bench/explain.sh "$db" "$count" >"$dir/explain.txt" 2>&1 || { cat "$dir/explain.txt" >&2; die "a hot-path query scans a table ($tag)"; }
    [[ $count == "${SCALES##* }" ]] && cp "$dir/explain.txt" "$WORK/explain-$backend.txt"

    # The server; its janitor's first pass starts one second after it does.
    started=$(date +%s.%N)
    # shellcheck disable=SC2046
    (cd "$dir" && exec env -i $(server_env "$dir" "$db" "$port") "$ROOT/$BIN" serve) >>"$dir/server.log" 2>&1 &
    PIDS+=("$!")
    url="http://127.0.0.1:$port"
    wait_up "$url" "$tag" "$dir/server.log"
    login_body=$(printf '{"email":"seed%d@example.com","password":"%s"}' 1 "$PASSWORD")
    token=$(curl -sf -H 'Content-Type: application/json' -d "$login_body" "$url/auth/customer/emailpass" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])') || die "login of seed1 ($tag)"
    # The janitor pass: a poller records when no expired session is left; refresh meanwhile.
    (while [[ $(expired_left "$db") != 0 ]]; do sleep 0.1; done
      awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f\n", b - a - 1}' >"$dir/pass") &
    poller=$!
    pass_rps="" pass_p99=""
    WRK_ARGS=(-t1 -c16 -d2s --timeout 10s --latency)
    while kill -0 "$poller" 2>/dev/null; do
      read -r r p < <(measure "$url" "$token") || die "refresh during the janitor pass ($tag)"
      pass_rps+="$r " pass_p99+="$p "
    done
    WRK_ARGS=(-t1 -c16 -d5s --timeout 10s --latency)
    wait "$poller" || true
    pass_s=$(cat "$dir/pass")
    # shellcheck disable=SC2086
    pass_worst=$(printf '%s\n' $pass_p99 | sort -g | tail -1)
    # shellcheck disable=SC2086
    pass_med=$(median $pass_rps)
    log "$tag: janitor pass ${pass_s} s; refresh meanwhile $pass_med req/s, worst p99 $pass_worst ms (runs: $pass_p99)"

    # A session cookie for seed1.
    cookie=$(curl -sf -D - -o /dev/null -X POST -H "Authorization: Bearer $token" "$url/auth/session" |
      sed -n 's/^[Ss]et-[Cc]ookie: \(connect\.sid=[^;]*\).*/\1/p') || die "session ($tag)"
    [[ -n $cookie ]] || die "no session cookie ($tag)"
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$url/store/customers/me") == 200 ]] ||
      die "GET /store/customers/me with the cookie did not answer 200 ($tag)"

    rr="" rp="" sr="" sp=""
    for ((i = 1; i <= RUNS; i++)); do
      read -r r p < <(measure "$url" "$token") || die "refresh ($tag)"
      rr+="$r " rp+="$p "
      read -r s q < <(wrk_get "$url/store/customers/me" "$cookie") || die "session lookup ($tag)"
      sr+="$s " sp+="$q "
      log "$tag run $i: refresh $r req/s (p99 $p ms), session lookup $s req/s (p99 $q ms)"
    done
    mid=$((count / 2))
    seq_out=$("${CLIENT[@]}" seq "$url" "$SEQ" \
      "login=/auth/customer/emailpass=$(printf '{"email":"seed%d@example.com","password":"%s"}' "$mid" "$PASSWORD")" \
      "reset=/auth/customer/emailpass/reset-password=$(printf '{"identifier":"seed%d@example.com"}' "$((mid + 1))")")
    grep -q 'case=login .*statuses=200x' <<<"$seq_out" && grep -q 'case=reset .*statuses=201x' <<<"$seq_out" ||
      die "login or reset-password failed ($tag): $seq_out"
    grep -qE 'statuses=[0-9]+x[0-9]+,' <<<"$seq_out" && die "a sequential case saw another status ($tag): $seq_out"
    lp50=$(field p50_ms "$(grep case=login <<<"$seq_out")") lp99=$(field p99_ms "$(grep case=login <<<"$seq_out")")
    xp50=$(field p50_ms "$(grep case=reset <<<"$seq_out")") xp99=$(field p99_ms "$(grep case=reset <<<"$seq_out")")
    # shellcheck disable=SC2086
    refresh=$(median $rr) refresh_p99=$(median $rp) session=$(median $sr) session_p99=$(median $sp)
    log "$tag: refresh $refresh (p99 $refresh_p99 ms), session $session (p99 $session_p99 ms), login p50 $lp50 ms, reset p50 $xp50 ms"
    ROWS+=("| $backend | $count | $seed_s s | $refresh (p99 $refresh_p99) | $session (p99 $session_p99) | $lp50 / $lp99 | $xp50 / $xp99 | $pass_s s | $pass_med (worst p99 $pass_worst) |")
    eval "R_${backend}_$count=$refresh L_${backend}_$count=$lp50 S_${backend}_$count=$session"

    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
    PIDS=()
    if [[ $backend == sqlite ]]; then rm -f "$db" "$db"-*; else psql_admin -c "DROP DATABASE $dbname WITH (FORCE)" >/dev/null; fi
  done
done

first=${SCALES%% *} last=${SCALES##* }
{
  echo "Cost as data grows, \`$SHA\`$DIRTY, one run on $(date -u +%Y-%m-%d), load average at the start $LOAD_START; wrk \`${WRK_ARGS[*]}\` ($RUNS runs, median), login and reset-password $SEQ sequential requests each (p50 / p99 ms):"
  echo
  echo "| Backend | Accounts | Seed | Refresh req/s (p99 ms) | Session lookup req/s (p99 ms) | Login ms | Reset-password ms | Janitor pass | Refresh during the pass req/s (ms) |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  for backend in $BACKENDS; do
    a="R_${backend}_$first" b="R_${backend}_$last" c="L_${backend}_$first" d="L_${backend}_$last" e="S_${backend}_$first" f="S_${backend}_$last"
    awk -v be="$backend" -v n0="$first" -v n1="$last" -v r0="${!a}" -v r1="${!b}" -v l0="${!c}" -v l1="${!d}" -v s0="${!e}" -v s1="${!f}" \
      'BEGIN {printf "- %s, %s against %s accounts: refresh throughput %+.1f %%, session lookup %+.1f %%, login p50 %+.1f %%\n", be, n1, n0, (r1 - r0) * 100 / r0, (s1 - s0) * 100 / s0, (l1 - l0) * 100 / l0}'
  done
} | tee "${BENCH_SCALE_OUT:-/dev/null}"
if [[ -n ${BENCH_EXPLAIN_OUT:-} ]]; then cat "$WORK"/explain-*.txt >"$BENCH_EXPLAIN_OUT"; fi
