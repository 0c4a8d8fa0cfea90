# Development recipes for Xclade Auth. `just --list` shows them.
# Each recipe line runs in its own bash with -euo pipefail.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes
default:
    @just --list

# Serve on 127.0.0.1:9000 with SQLite in ./data (zero configuration)
run:
    cargo run --release -p auth-server

# Run every test on SQLite (and on PostgreSQL when it is reachable)
test:
    cargo test --workspace

# Run every test and require PostgreSQL; starts the local cluster if it is not up
test-pg:
    pg_isready -q -h 127.0.0.1 || pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
    XCLADE_REQUIRE=pg cargo test --workspace

# The API suite in tenant mode (every request for alpha.api.test, rows checked), PostgreSQL required
test-tenants:
    pg_isready -q -h 127.0.0.1 || pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
    XCLADE_TEST_TENANTS=1 XCLADE_REQUIRE=pg cargo test -p auth-server --test api

# The storefront in headless Chromium (tests/api/browser.rs); screenshot in target/browser-artifacts/
test-browser:
    XCLADE_REQUIRE=browser cargo test -p auth-server --test api browser::

# The fault tests: PostgreSQL cut under load, SQLite on a full disk (root: a tmpfs), SIGKILL mid-write
test-faults:
    pg_isready -q -h 127.0.0.1 || pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
    XCLADE_REQUIRE=pg,mount cargo test -p auth-server --test api faults::

# Formatting, clippy with warnings as errors, and the layer check
lint: && layers
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# auth-domain must not depend on diesel, r2d2 or actix-web
layers:
    #!/usr/bin/env bash
    set -euo pipefail
    # The tree is captured first, so a failing `cargo tree` fails the recipe. Piped straight
    # into `! grep`, that failure would be hidden, because grep finding nothing is success here.
    tree=$(cargo tree -p auth-domain -e normal --prefix none)
    ! grep -E '^(diesel|r2d2|actix-web) ' <<<"$tree"

# Format the workspace
fmt:
    cargo fmt --all

# Screenshot of /docs in Debian's headless Chromium, other hosts unreachable (docs/img/api-reference.png)
docs-screenshot:
    bash tools/docs-screenshot.sh

# schemathesis against /openapi.json of a server it starts (venv under target/); fails on any finding
api-conformance:
    bash tools/api-conformance.sh

# What CI runs
ci:
    bash .ci/run

# Benchmark suite on a release build (SQLite, PostgreSQL, the floor): writes docs/benchmarks.md
bench:
    bash bench/run.sh

# Refresh of the commit BASE against the work tree, in one run, alternating (a refactoring's proof)
bench-compare BASE:
    bash bench/compare.sh {{BASE}}

# Refresh with tenant resolution off and on, alternating in one run (prints a Markdown table)
bench-tenancy:
    bash bench/tenancy.sh

# Import COUNT (100,000) synthetic Medusa accounts into SQLite and PostgreSQL (prints a Markdown table)
bench-import:
    bash bench/medusa-import.sh

# Refresh signed with HS256, EdDSA and ES256 beside the floor, in one run (prints a Markdown table)
bench-signing:
    bash bench/signing.sh

# Seed 10k, 100k and 1M accounts (bulk insert) per backend and measure refresh, login, reset, session lookup and the janitor
bench-scale:
    bash bench/scale.sh

# Three release instances on one PostgreSQL: aggregate refresh throughput and PostgreSQL's CPU, identity cache on and off
bench-instances:
    bash bench/instances.sh

# Where a refresh's time goes while logins saturate hashing (PostgreSQL; identity cache off and on)
bench-tail:
    bash bench/tail.sh

# What the identity cache costs in memory: every seeded account (100,000 by default) cached, RSS before and after
bench-cache-memory:
    bash bench/cache-memory.sh

# Plans of the hot-path queries over COUNT seeded accounts on both backends; fails on a full table scan
bench-explain COUNT="100000":
    bash bench/explain-check.sh {{COUNT}}
