#!/usr/bin/env bash
# The scheduled blocklist check at scale (issue 16: 10,000 targets against
# 12 lists within a minute against the loopback DNS server, with bounded
# concurrency).
#
#   bench/blocklists.sh [TARGETS] [LISTS]      (default 10000 12)
#
# `crates/monitor/examples/scale.rs`: TARGETS sending addresses in the
# operator's pools, LISTS IPv4 lists served by testkit's DNS server
# (hickory-server) on 127.0.0.1 in the same process; 1 address in 100
# listed (A and TXT), 1 in 1,000 answered with Spamhaus' refusal
# (127.255.255.254), the rest NXDOMAIN. The whole `Monitor::run_once` is
# timed: targets gathered, every lookup (uncached resolver, as the server
# uses for blocklists), listings and monitored targets written to SQLite,
# alerts raised. Run at 16, 64 (the default) and 256 lookups in flight.
# Results are appended to bench/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=${1:-10000}
LISTS=${2:-12}
cargo build --release --locked -q -p herald-monitor --example scale
commit=$(git rev-parse --short HEAD)
when=$(date -u +%Y-%m-%dT%H:%MZ)
rows=""
for c in 16 64 256; do
  line=$(target/release/examples/scale "$TARGETS" "$LISTS" "$c" | tail -1)
  echo "$line"
  lookups=$(sed -E 's/.*: ([0-9]+) lookups.*/\1/' <<<"$line")
  secs=$(sed -E 's/.* in ([0-9.]+) s.*/\1/' <<<"$line")
  rate=$(sed -E 's/.*\(([0-9]+)\/s\).*/\1/' <<<"$line")
  listed=$(sed -E 's/.*listed ([0-9]+) .*/\1/' <<<"$line")
  rows+="| $c | $lookups | $secs | $rate | $listed |"$'\n'
done
{
  echo
  echo "### blocklists, $when, $commit"
  echo
  echo "\`bench/blocklists.sh $TARGETS $LISTS\` on 2 cores: one scheduled check (\`Monitor::run_once\`) of $TARGETS addresses against $LISTS lists, DNS server and Herald in one process on loopback; 1% of addresses listed, 0.1% refused."
  echo
  echo "| lookups in flight | lookups | seconds | lookups/s | listings found |"
  echo "|---|---|---|---|---|"
  printf "%s" "$rows"
} >> bench/BENCHMARKS.md
