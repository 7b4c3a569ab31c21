#!/usr/bin/env bash
# The dashboard bench (issue 17): one account with N events (default 10
# million) loaded through the store with its rollups, then its overview
# page rendered through the real router with a signed-in session, on
# SQLite and on PostgreSQL (HERALD_TEST_POSTGRES_URL, default the
# machine's). Appends the figures to bench/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-10000000}"
export HERALD_TEST_POSTGRES_URL="${HERALD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo build --release -q -p herald-http --example overview_bench
BIN=target/release/examples/overview_bench
OUT=$(mktemp)
for backend in sqlite postgres; do
  "$BIN" "$EVENTS" "$backend" | tee -a "$OUT"
done
{
  echo
  echo "## Dashboard overview ($(date -u +%Y-%m-%d), $(nproc) cores, $(git rev-parse --short HEAD))"
  echo
  echo '`bench/dashboard.sh '"$EVENTS"'`: one account'"'"'s events through `insert_events` (rollups in the same'
  echo 'transaction), then `GET /?range=…` through the router with a session cookie (session, stats,'
  echo 'reputation, alerts, templates and SVG), 21 renders each. Target: < 200 ms.'
  echo
  sed 's/^/    /' "$OUT"
} >> bench/BENCHMARKS.md
rm -f "$OUT"
