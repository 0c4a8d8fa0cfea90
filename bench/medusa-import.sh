#!/usr/bin/env bash
# Scale run of `xclade-auth import medusa` (issue 13): COUNT synthetic Medusa accounts (real
# scrypt-kdf hashes at a low logN, bench/medusa_accounts.py) in a Medusa-shaped PostgreSQL
# database, imported by the release binary into a fresh SQLite file and into a fresh PostgreSQL
# database, RUNS times each, then once more over the imported data (every account unchanged).
# Each run is timed as a whole process by /usr/bin/time (wall seconds and peak resident memory),
# and includes opening and migrating the fresh target. Prints a Markdown table for
# docs/benchmarks.md.
#
# usage: bench/medusa-import.sh   (COUNT=100000 LOG_N=4 RUNS=3 PG_SERVER=postgres://postgres@127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=medusa-import
COUNT=${COUNT:-100000}
LOG_N=${LOG_N:-4}
RUNS=${RUNS:-3}
PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}
WORK=$(mktemp -d)
source bench/lib.sh

[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian: time)"
command -v psql >/dev/null || die "psql is missing"

log "generating $COUNT Medusa accounts (logN $LOG_N)"
python3 bench/medusa_accounts.py "$COUNT" "$LOG_N" "$WORK"

SOURCE=xa_bench_medusa_source
DBS+=("$SOURCE")
psql_admin -c "DROP DATABASE IF EXISTS $SOURCE WITH (FORCE)" -c "CREATE DATABASE $SOURCE" >/dev/null
# Medusa's tables as the real dump creates them (with its five accounts), then the synthetic ones.
grep -v '^\\\(un\)\?restrict' crates/auth-server/tests/fixtures/medusa-2.21.2-auth-tables.sql \
  | psql "$PG_SERVER/$SOURCE" -v ON_ERROR_STOP=1 -qAtX >/dev/null
for table in auth_identity customer provider_identity; do
  psql "$PG_SERVER/$SOURCE" -v ON_ERROR_STOP=1 -qAtX -c "\\copy $table FROM '$WORK/$table.tsv'"
done
psql "$PG_SERVER/$SOURCE" -qAtX -c "VACUUM ANALYZE" >/dev/null
TOTAL=$((COUNT + 5))

log "building the release binary"
cargo build --release -q -p auth-server
BIN=target/release/xclade-auth
TARGET_PG=xa_bench_medusa_target
DBS+=("$TARGET_PG")

# one_run TARGET FRESH: prints "wall_s peak_kib imported unchanged".
one_run() {
  local url
  if [[ $1 == sqlite ]]; then
    url="$WORK/target.sqlite"
    [[ $2 == fresh ]] && rm -f "$WORK"/target.sqlite*
  else
    url="$PG_SERVER/$TARGET_PG"
    [[ $2 == fresh ]] && psql_admin -c "DROP DATABASE IF EXISTS $TARGET_PG WITH (FORCE)" -c "CREATE DATABASE $TARGET_PG" >/dev/null
  fi
  DATABASE_URL=$url DATA_DIR=$WORK JWT_SECRET=bench-secret-0123456789abcdef0123456789 RUST_LOG=warn \
    /usr/bin/time -o "$WORK/time" -f '%e %M' "$BIN" import medusa --from "$PG_SERVER/$SOURCE" --json >"$WORK/summary.json"
  python3 - "$WORK/summary.json" "$(cat "$WORK/time")" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
wall, rss = sys.argv[2].split()
print(wall, rss, s["imported"], s["unchanged"])
PY
}

printf '| target | run | accounts | wall s (median of %s; min–max) | accounts/s | peak memory |\n|---|---|---|---|---|---|\n' "$RUNS"
for target in sqlite postgres; do
  walls=() rsss=()
  for ((i = 1; i <= RUNS; i++)); do
    read -r wall rss imported unchanged < <(one_run "$target" fresh)
    [[ $imported == "$TOTAL" && $unchanged == 0 ]] || die "$target: imported $imported, unchanged $unchanged of $TOTAL"
    log "$target fresh run $i: ${wall}s, ${rss} KiB"
    walls+=("$wall") rsss+=("$rss")
  done
  read -r again_wall again_rss imported unchanged < <(one_run "$target" again)
  [[ $imported == 0 && $unchanged == "$TOTAL" ]] || die "$target again: imported $imported, unchanged $unchanged"
  med=$(median "${walls[@]}")
  lo=$(printf '%s\n' "${walls[@]}" | sort -g | head -n1) hi=$(printf '%s\n' "${walls[@]}" | sort -g | tail -n1)
  peak=$(printf '%s\n' "${rsss[@]}" | sort -g | tail -n1)
  printf '| %s | fresh | %s | %s (%s–%s) | %.0f | %.0f MiB |\n' "$target" "$TOTAL" "$med" "$lo" "$hi" \
    "$(awk -v n="$TOTAL" -v s="$med" 'BEGIN {print n / s}')" "$(awk -v k="$peak" 'BEGIN {print k / 1024}')"
  printf '| %s | again (all unchanged) | %s | %s | %.0f | %.0f MiB |\n' "$target" "$TOTAL" "$again_wall" \
    "$(awk -v n="$TOTAL" -v s="$again_wall" 'BEGIN {print n / s}')" "$(awk -v k="$again_rss" 'BEGIN {print k / 1024}')"
done
