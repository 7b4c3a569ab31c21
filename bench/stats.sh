#!/usr/bin/env bash
# The stats bench (issue 6): N events (default 10 million) loaded through the
# store with its rollups, then a month of per-hour stats timed, on SQLite and
# on PostgreSQL (HERALD_TEST_POSTGRES_URL, default the machine's). Appends
# the figures to bench/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-10000000}"
export HERALD_TEST_POSTGRES_URL="${HERALD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo build --release -q -p herald-testkit --example stats_bench
BIN=target/release/examples/stats_bench
OUT=$(mktemp)
for backend in sqlite postgres; do
  "$BIN" "$EVENTS" "$backend" | tee -a "$OUT"
done
{
  echo
  echo "## Stats rollups ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo '`bench/stats.sh '"$EVENTS"'`: events through `insert_events` (rollups in the same transaction), then'
  echo 'a month of per-hour stats for one account (median and worst of 11 queries). Target: < 100 ms.'
  echo
  sed 's/^/    /' "$OUT"
} >> bench/BENCHMARKS.md
rm -f "$OUT"
