#!/usr/bin/env bash
# `just bench-explain [COUNT]`: seeds a fresh SQLite file and a fresh PostgreSQL database with
# COUNT accounts (default 100000; bench/seed.sh), prints the plans of the hot-path queries on
# both (bench/explain.sh) and fails when one scans a table. Both are removed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
COUNT=${1:-100000}
PG_SERVER=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
SECRET=bench-only-jwt-secret-0123456789abcdef0123456789
BIN=target/release/xclade-auth
WORK=$(mktemp -d /tmp/xa-explain.XXXXXX)
NAME=explain
# shellcheck source=bench/lib.sh
source bench/lib.sh
pg_isready -q -h 127.0.0.1 || die "PostgreSQL is not answering on 127.0.0.1:5432"
cargo build -q --release -p auth-server --bin xclade-auth

dbname="xa_explain_$$"
psql_admin -c "CREATE DATABASE $dbname" >/dev/null
DBS+=("$dbname")
status=0
for db in "$WORK/auth.sqlite" "$PG_SERVER/$dbname"; do
  env -i PATH="$PATH" RUST_LOG=warn JWT_SECRET="$SECRET" DATA_DIR="$WORK/data" DATABASE_URL="$db" "$BIN" migrate \
    >>"$WORK/cli.log" 2>&1 || die "migrate $db"
  log "seeding $COUNT accounts into ${db##*/}"
  bench/seed.sh "$db" "$COUNT" >/dev/null
  bench/explain.sh "$db" "$COUNT" || status=1
done
exit "$status"
