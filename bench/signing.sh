#!/usr/bin/env bash
# What the signature algorithm costs on the hot path (`just bench-signing`): one release build,
# refresh measured with wrk in alternation on four servers:
#   floor   the storage-free actix-web floor (crates/auth-server/examples/refresh_floor.rs, HS256);
#   HS256   Xclade on SQLite, the tenant without a key (signs with JWT_SECRET);
#   EdDSA   the same with an active Ed25519 key (`xclade-auth keys create --algorithm EdDSA`);
#   ES256   the same with an active P-256 key.
# A refresh verifies the presented token and signs a new one, so it pays both. Prints a Markdown
# table with each median as a share of the floor's (and writes it to $BENCH_SIGNING_OUT when set).
#
# Needs cargo, wrk (installed with apt-get when missing), python3 and curl. Settings: BENCH_RUNS
# (wrk runs per server, default 5).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RUNS=${BENCH_RUNS:-5}
FLOOR=target/release/examples/refresh_floor

WORK=$(mktemp -d /tmp/xa-signing.XXXXXX)
NAME=signing
# shellcheck source=bench/lib.sh
source bench/lib.sh

log "building $SHA$DIRTY (release)"
cargo build -q --release -p auth-server --bin xclade-auth --example refresh_floor

# start SIDE: a server on SQLite (the floor for SIDE=floor); sets URL and TOKEN.
start() {
  local side=$1 dir="$WORK/$1" port
  mkdir -p "$dir"
  port=$("${CLIENT[@]}" port)
  URL="http://127.0.0.1:$port"
  if [[ $side == floor ]]; then
    (cd "$dir" && exec env -i PATH="$PATH" JWT_SECRET="$SECRET" HOST=127.0.0.1 PORT="$port" "$ROOT/$FLOOR") \
      >>"$dir/server.log" 2>&1 &
    PIDS+=("$!")
    wait_up "$URL" "$side" "$dir/server.log"
    TOKEN=$(env JWT_SECRET="$SECRET" "$ROOT/$FLOOR" --token)
    return
  fi
  local vars=(PATH="$PATH" RUST_LOG=warn RATE_LIMIT_ENABLED=false PASSWORD_MIN_STRENGTH=0 LOG_SINK=false
    BCRYPT_COST=4 JWT_SECRET="$SECRET" HOST=127.0.0.1 PORT="$port" ADMIN_PORT=0 DATA_DIR="$dir/data"
    TENANT_REFRESH_INTERVAL=50ms)
  if [[ $side != HS256 ]]; then
    (cd "$dir" && env -i "${vars[@]}" "$ROOT/$BIN" keys create --algorithm "$side") >>"$dir/cli.log" 2>&1 \
      || die "creating the $side key"
  fi
  (cd "$dir" && exec env -i "${vars[@]}" "$ROOT/$BIN" serve) >>"$dir/server.log" 2>&1 &
  PIDS+=("$!")
  wait_up "$URL" "$side" "$dir/server.log"
  TOKEN=$("${CLIENT[@]}" token "$URL" "bench-$side@example.com" "correct horse battery")
  local alg
  alg=$(python3 -c 'import base64,json,sys; h=sys.argv[1].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h+"="*(-len(h)%4)))["alg"])' "$TOKEN")
  [[ $alg == "$side" ]] || die "the $side server signs with $alg"
}

SIDES=(floor HS256 EdDSA ES256)
declare -A url=() token=() rps=() p99=()
for side in "${SIDES[@]}"; do
  start "$side"
  url[$side]=$URL token[$side]=$TOKEN rps[$side]="" p99[$side]=""
done
for ((i = 1; i <= RUNS; i++)); do
  # Each run in another order, so that drift hits every side alike.
  order=("${SIDES[@]:i % 4}" "${SIDES[@]:0:i % 4}")
  for side in "${order[@]}"; do
    read -r r p < <(measure "${url[$side]}" "${token[$side]}") || true
    [[ -n ${r:-} ]] || die "the $side measurement failed"
    rps[$side]+="$r " p99[$side]+="$p "
    log "$side run $i: $r req/s, p99 $p ms"
  done
done

# shellcheck disable=SC2086
floor=$(median ${rps[floor]})
{
  echo "Refresh by signature algorithm, \`$SHA\`$DIRTY, SQLite, one run on $(date -u +%Y-%m-%d), load average at the start $(cut -d' ' -f1-3 /proc/loadavg); wrk \`${WRK_ARGS[*]}\`, $RUNS runs each, rotating the order:"
  echo
  echo "| Server | runs (req/s) | median (req/s) | p99 (ms, median) | share of the floor |"
  echo "|---|---|---|---|---|"
  for side in "${SIDES[@]}"; do
    # shellcheck disable=SC2086
    m=$(median ${rps[$side]}) p=$(median ${p99[$side]})
    share=$(awk -v m="$m" -v f="$floor" 'BEGIN {printf "%.0f %%", m * 100 / f}')
    label=$side
    [[ $side == floor ]] && label="floor (no storage, HS256)"
    echo "| $label | ${rps[$side]% } | $m | $p | $share |"
  done
} | tee "${BENCH_SIGNING_OUT:-/dev/null}"
