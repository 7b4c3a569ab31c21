#!/usr/bin/env bash
# DMARC report import: Herald against parsedmarc, on the same files, in one
# run.
#
#   bench/dmarc.sh [COPIES]      (default 100)
#
# The input: every aggregate report of parsedmarc's own samples
# (../shared/corpora/parsedmarc-samples/aggregate: XML, gzip, zip, emails,
# the quirky ones) plus COPIES copies of its 909 KB report (2,286 records
# each) under distinct report ids, every other one gzipped, so both tools
# read the same mix of sizes and wrappings.
#
# - parsedmarc (PyPI, the version pinned below) in --offline mode: no DNS
#   and no geolocation lookups, only parsing and writing its JSON and CSV
#   output. Its records are the rows of its aggregate.csv.
# - Herald: `herald dmarc import` (release build) into a fresh embedded
#   SQLite store, synchronous=FULL: every report read, checked for
#   duplicates and stored. Its records are those it reports imported.
#
# Both are timed wall clock, process start included, on the same machine
# one after the other. Results are appended to bench/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
COPIES=${1:-100}
PARSEDMARC_VERSION=11.1.0
CORPUS=../shared/corpora/parsedmarc-samples
LARGE="$CORPUS/aggregate/!large-example.com!1711897200!1711983600.xml"
VENV=${PARSEDMARC_VENV:-/tmp/herald-parsedmarc-venv}

if [ ! -x "$VENV/bin/parsedmarc" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "parsedmarc==$PARSEDMARC_VERSION"
fi
cargo build --release --locked -p herald >/dev/null

WORK=$(mktemp -d /tmp/herald-dmarc-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
IN="$WORK/reports"
mkdir -p "$IN"
cp "$CORPUS"/aggregate/* "$IN"/
for i in $(seq 1 "$COPIES"); do
  f="$IN/copy-$i.xml"
  sed "s|<report_id>|<report_id>copy-$i-|" "$LARGE" > "$f"
  if [ $((i % 2)) -eq 0 ]; then gzip "$f"; fi
done
FILES=$(find "$IN" -type f | wc -l)
SAMPLES=$(find "$CORPUS/aggregate" -type f | wc -l)
BYTES=$(du -sb "$IN" | cut -f1)

now() { date +%s.%N; }

# parsedmarc
T0=$(now)
"$VENV/bin/parsedmarc" --offline --silent -o "$WORK/parsedmarc-out" "$IN"/* 2>"$WORK/parsedmarc.err" || true
T1=$(now)
PD_RECORDS=$(( $(wc -l < "$WORK/parsedmarc-out/aggregate.csv") - 1 ))
PD_SECONDS=$(python3 -c "print($T1 - $T0)")

# Herald
mkdir -p "$WORK/herald"
cat > "$WORK/herald/herald.toml" <<CONF
[server]
hostname = "bench.test"
data_dir = "$WORK/herald/data"
CONF
T0=$(now)
./target/release/herald --config "$WORK/herald/herald.toml" --json dmarc import "$IN" > "$WORK/herald.json"
T1=$(now)
H_RECORDS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$WORK/herald.json")
H_REPORTS=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["imported"], d["duplicates"], d["failed"])' "$WORK/herald.json")
H_SECONDS=$(python3 -c "print($T1 - $T0)")

PD_RATE=$(python3 -c "print($PD_RECORDS / $PD_SECONDS)")
H_RATE=$(python3 -c "print($H_RECORDS / $H_SECONDS)")
RATIO=$(python3 -c "print($H_RATE / $PD_RATE)")

REPORT=$(printf '### dmarc, %s, %s\n- input: %d files, %d bytes (%d copies of the 909 KB report, half gzipped, and the %d aggregate samples)\n- parsedmarc %s --offline: %d records in %.2f s = **%.0f records/s**\n- herald dmarc import (SQLite): %d records (imported, duplicates, failed: %s) in %.2f s = **%.0f records/s**\n- ratio: **%.0fx**\n' \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git rev-parse --short HEAD)" "$FILES" "$BYTES" "$COPIES" "$SAMPLES" \
  "$PARSEDMARC_VERSION" "$PD_RECORDS" "$PD_SECONDS" "$PD_RATE" \
  "$H_RECORDS" "$H_REPORTS" "$H_SECONDS" "$H_RATE" "$RATIO")
echo "$REPORT"
printf '\n%s\n' "$REPORT" >> bench/BENCHMARKS.md
