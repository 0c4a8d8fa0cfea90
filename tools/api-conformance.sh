#!/usr/bin/env bash
# API conformance: schemathesis (from PyPI) against /openapi.json of a running server.
#
# Builds xclade-auth (debug by default; API_CONFORMANCE_PROFILE=release for the release build),
# starts it on a free loopback port with SQLite in a temporary directory, and runs schemathesis
# with a bounded number of examples per operation. Fails when any check fails:
#   not_a_server_error            no 5xx, ever
#   status_code_conformance       every status is documented for its operation
#   content_type_conformance      every content type is documented for its status
#   response_schema_conformance   every body matches its schema
#   response_headers_conformance  documented headers are present and match their schemas
#   unsupported_method            a method the document does not list is a 405
#   allow_header_conformance      and that 405's Allow header lists the documented methods
#
# The virtual environment lives in target/api-conformance/venv (not in the repository) and is
# reused while it has the pinned version.
#
# Settings (environment): API_CONFORMANCE_EXAMPLES (examples per operation, default 50),
# API_CONFORMANCE_SEED (default 1: the same cases each run), API_CONFORMANCE_PROFILE
# (debug|release), API_CONFORMANCE_VENV (where the virtual environment goes).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
examples=${API_CONFORMANCE_EXAMPLES:-50}
seed=${API_CONFORMANCE_SEED:-1}
profile=${API_CONFORMANCE_PROFILE:-debug}
work=$PWD/target/api-conformance
venv=$(realpath -m "${API_CONFORMANCE_VENV:-$work/venv}")

say() { printf '=== %s\n' "$*"; }
die() { printf 'api-conformance FAILED: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is missing (schemathesis runs on Python 3.9+)"
python3 -c 'import venv, ensurepip' 2>/dev/null ||
  die "python3 cannot create virtual environments with pip (Debian: apt-get install python3-venv)"

if ! "$venv/bin/st" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
  say "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  if [ -e "$venv" ]; then
    [ -f "$venv/pyvenv.cfg" ] || die "$venv exists and is not a virtual environment"
    rm -rf "$venv"
  fi
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" ||
    die "pip could not install schemathesis==$SCHEMATHESIS_VERSION"
fi
"$venv/bin/st" --version

say "building xclade-auth ($profile)"
case "$profile" in
  release) cargo build --release -p auth-server --bin xclade-auth; binary=target/release/xclade-auth ;;
  debug) cargo build -p auth-server --bin xclade-auth; binary=target/debug/xclade-auth ;;
  *) die "API_CONFORMANCE_PROFILE must be debug or release, not $profile" ;;
esac

data=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
say "starting xclade-auth on 127.0.0.1:$port (SQLite in $data)"
env HOST=127.0.0.1 PORT="$port" ADMIN_PORT=0 DATA_DIR="$data" \
  RATE_LIMIT_ENABLED=false PASSWORD_MIN_STRENGTH=0 BCRYPT_COST=4 LOG_SINK=false RUST_LOG=warn \
  "$binary" serve >"$data/server.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$base/health" 2>/dev/null; then
    break
  fi
  kill -0 "$server" 2>/dev/null || { cat "$data/server.log" >&2; die "the server exited at start"; }
  sleep 0.2
done

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method,allow_header_conformance
# Run from target/api-conformance, where hypothesis and schemathesis keep their state
# (.hypothesis, .schemathesis) and the reports, out of the repository.
mkdir -p "$work"
schemathesis() {
  (cd "$work" && "$venv/bin/st" "$@" \
    --checks "$checks" --max-examples "$examples" --seed "$seed" --request-timeout 10 \
    --suppress-health-check too_slow --report junit --report-dir "$work/report")
}
failed=()

# Pass 1: every operation, parameters as the document allows them (unknown actor types and
# providers included), no credentials. One worker: hypothesis is not thread-safe on every Python.
say "pass 1: every operation, no credentials ($examples examples per operation, seed $seed)"
schemathesis run "$base/openapi.json" --workers 1 || failed+=("pass 1")

# Pass 2: as a storefront calls the routes: actor customer, provider emailpass, the auth token
# of a customer with an account and a session cookie, so the guarded routes answer 200 too
# (once the session is ended, the token still serves: session first, then bearer). logout-all
# is left out: it would revoke the token for the rest of the pass.
say "pass 2: customer routes with a customer's token and session"
read -r token session < <(python3 - "$base" <<'PY'
import json, secrets, sys, urllib.request
base = sys.argv[1]
def post(path, body, token=None):
    headers = {"content-type": "application/json", "accept": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, json.dumps(body).encode() if body is not None else b"", headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        cookie = r.headers.get("set-cookie", "")
        return json.load(r), cookie
# A password no example of the document has: change-password must not find it.
creds = {"email": "conformance@example.com", "password": secrets.token_hex(16)}
registration = post("/auth/customer/emailpass/register", creds)[0]["token"]
post("/store/customers", {"email": creds["email"], "first_name": "Conformance"}, registration)
token = post("/auth/customer/emailpass", creds)[0]["token"]
cookie = post("/auth/session", None, token)[1]
print(token, cookie.split(";")[0].split("=", 1)[1])
PY
) && [ -n "${session:-}" ] || die "could not create the customer of pass 2"
cat >"$data/schemathesis.toml" <<TOML
[parameters]
"path.actor" = "customer"
"path.provider" = "emailpass"
TOML
schemathesis --config-file "$data/schemathesis.toml" run "$base/openapi.json" --workers 1 \
  -H "Authorization: Bearer $token" -H "Cookie: connect.sid=$session" --exclude-path /auth/logout-all ||
  failed+=("pass 2")

if [ "${#failed[@]}" != 0 ]; then
  echo "--- server log (warnings and errors)" >&2
  tail -n 50 "$data/server.log" >&2
  die "${failed[*]}: responses that do not conform to /openapi.json (report: target/api-conformance/report)"
fi
say "API conformance passed"
