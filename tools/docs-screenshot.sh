#!/usr/bin/env bash
# A screenshot of the API reference (/docs) in headless Chromium from Debian's packages, taken
# with the network closed to the page: every address but loopback goes to a proxy that does not
# exist, so the page renders only if everything it needs comes from the server.
#
# Builds the release binary, starts it on a free loopback port with SQLite in a temporary
# directory, checks that the page rendered the document (the DOM holds the operations and not
# the loading notice), and writes the screenshot (default docs/img/api-reference.png).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-docs/img/api-reference.png}

say() { printf '=== %s\n' "$*"; }
die() { printf 'docs-screenshot FAILED: %s\n' "$*" >&2; exit 1; }

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    die "chromium is missing (Debian: apt-get install chromium)"
  fi
fi
# Debian's package, not a browser build fetched from elsewhere.
dpkg -S "$(readlink -f "$(command -v chromium)")" 2>/dev/null | grep -q '^chromium' ||
  die "$(command -v chromium) does not come from Debian's chromium package"
chromium --version

say "building xclade-auth (release)"
cargo build --release -p auth-server --bin xclade-auth

data=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env HOST=127.0.0.1 PORT="$port" ADMIN_PORT=0 DATA_DIR="$data" LOG_SINK=false RUST_LOG=warn \
  target/release/xclade-auth serve >"$data/server.log" 2>&1 &
server=$!
url="http://127.0.0.1:$port/docs"
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$data/server.log" >&2; die "the server exited at start"; }
  sleep 0.2
done

# Loopback is never proxied; everything else goes to 127.0.0.1:9, where nothing listens.
browser() {
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-extensions \
    --proxy-server=127.0.0.1:9 --user-data-dir="$data/profile" --virtual-time-budget=10000 "$@" 2>/dev/null
}

say "rendering $url with the network closed"
dom=$(browser --dump-dom "$url")
grep -q 'Register an email and password' <<<"$dom" || die "the page did not render the operations"
grep -q 'Loading the OpenAPI document' <<<"$dom" && die "the page is still loading the document"
grep -q 'Could not load the OpenAPI document' <<<"$dom" && die "the page could not load the document"

mkdir -p "$(dirname "$out")"
browser --screenshot="$out" --window-size=1280,1600 "$url"
[ -s "$out" ] || die "chromium wrote no screenshot"
say "wrote $out"
