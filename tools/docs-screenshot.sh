#!/usr/bin/env bash
# A screenshot of the API reference (/docs) in headless Chromium from Debian's packages, taken
# with the network closed to the page: every address but loopback goes to a proxy that does not
# exist, so the page renders only if everything it needs comes from the server.
#
# Builds the release binary, starts it on a free loopback port with SQLite in a temporary
# directory, checks that Swagger UI rendered the document (the DOM holds its operation blocks,
# no loading or error notice) and that the browser refused nothing under the page's
# Content-Security-Policy (it logs every refusal, which would also be any load from another
# host), and writes the screenshot (default docs/img/api-reference.png).
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
    --proxy-server=127.0.0.1:9 --user-data-dir="$data/profile" --virtual-time-budget=10000 "$@"
}

say "rendering $url with the network closed"
# The page's console goes to the log (--log-level=0): a refusal of the policy is a line there.
dom=$(browser --dump-dom --enable-logging=stderr --log-level=0 "$url" 2>"$data/browser.log")
# Swagger UI's markup: one `opblock` per operation, under the title of the document.
operations=$(grep -o 'class="opblock opblock-[a-z]*' <<<"$dom" | wc -l || true)
[ "$operations" -ge 20 ] || die "the page rendered $operations operation blocks (Swagger UI's opblock), not the document's"
grep -q 'Register an email and password' <<<"$dom" || die "the page did not render the operations' summaries"
grep -q '<h2 class="title">Xclade Auth' <<<"$dom" || die "the page did not render the document's title"
grep -q 'class="loading-container"' <<<"$dom" && die "the page is still loading the document"
grep -q 'Failed to load API definition' <<<"$dom" && die "the page could not load the document"
grep -q 'class="errors-wrapper"' <<<"$dom" && die "Swagger UI reports errors in the document"
if grep -q 'Content Security Policy' "$data/browser.log"; then
  grep 'Content Security Policy' "$data/browser.log" >&2
  die "the browser refused something under the page's Content-Security-Policy"
fi
say "$operations operations rendered, nothing refused by the policy"

mkdir -p "$(dirname "$out")"
browser --screenshot="$out" --window-size=1280,1600 "$url" 2>/dev/null
[ -s "$out" ] || die "chromium wrote no screenshot"
say "wrote $out"
