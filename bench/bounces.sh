#!/usr/bin/env bash
# Bounce classification: `herald feedback classify` over a folder of
# returned messages, and the classifier alone.
#
#   bench/bounces.sh [COPIES]      (default 50)
#
# The input: every sample of Sisimai's set-of-emails (../shared/corpora/
# sisimai-set-of-emails/maildir/bsd: DSNs, the human-readable notices of
# some 50 MTAs and ESPs, ARF reports, auto-replies; 1 KB to 73 KB), COPIES
# times over, one folder per copy, so the CLI walks a tree of ~22,000 files.
#
# - `herald feedback classify --jobs N DIR` (release build) with N = 1 and
#   2: every file read through the file system, parsed, each recipient
#   classified, one line per recipient written to a file. Wall clock,
#   process start and the folder walk included. Each run twice: with the
#   files in the page cache (as after they were just written), and cold,
#   the page cache dropped first (when the machine allows it; the report
#   says).
# - The classifier alone, one core: `cargo bench -p herald-bounces --bench
#   classify` (criterion, the 442 samples in memory), with mail-parser's
#   MIME parsing alone over the same bytes as a yardstick for the machine.
#
# Results are appended to bench/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
COPIES=${1:-50}
CORPUS=../shared/corpora/sisimai-set-of-emails/maildir/bsd

cargo build --release --locked -p herald >/dev/null

WORK=$(mktemp -d /tmp/herald-bounces-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
for i in $(seq 1 "$COPIES"); do
  mkdir -p "$WORK/in/$i"
  cp "$CORPUS"/* "$WORK/in/$i/"
done
FILES=$(find "$WORK/in" -type f | wc -l)
SAMPLES=$(find "$CORPUS" -type f | wc -l)
BYTES=$(du -sb "$WORK/in" | cut -f1)

now() { date +%s.%N; }
run() {
  local jobs=$1 cache=$2 t0 t1 lines seconds
  if [ "$cache" = cold ]; then
    sync
    echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || cache="warm: the page cache cannot be dropped here"
  else
    find "$WORK/in" -type f -exec cat {} + > /dev/null
  fi
  t0=$(now)
  ./target/release/herald feedback classify --jobs "$jobs" "$WORK/in" > "$WORK/out-$jobs.tsv"
  t1=$(now)
  lines=$(wc -l < "$WORK/out-$jobs.tsv")
  seconds=$(python3 -c "print($t1 - $t0)")
  printf -- '- `--jobs %s`, %s page cache: %d files, %d result lines in %.2f s = **%.0f messages/s**\n' \
    "$jobs" "$cache" "$FILES" "$lines" "$seconds" "$(python3 -c "print($FILES / $seconds)")"
}

RUNS=$(for jobs in 1 2; do run "$jobs" warm; run "$jobs" cold; done)
cmp -s "$WORK/out-1.tsv" "$WORK/out-2.tsv" || { echo "--jobs 1 and --jobs 2 disagree" >&2; exit 1; }

CRIT=$(cargo bench -q -p herald-bounces --bench classify -- --warm-up-time 2 --measurement-time 10 2>/dev/null \
  | awk '/^bounces\//{name=$0; sub(/ *time:.*/, "", name)} /thrpt:/ && /elem\/s/{sub(/.*thrpt: */, ""); print name ": " $0}')

REPORT=$(printf '### bounces, %s, %s\n- input: %d files, %d bytes (%d copies of the %d samples of maildir/bsd)\n%s\n- criterion, one core (low, estimate, high):\n%s\n' \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git rev-parse --short HEAD)" "$FILES" "$BYTES" "$COPIES" "$SAMPLES" \
  "$RUNS" "$(echo "$CRIT" | sed 's/^/  - /')")
echo "$REPORT"
printf '\n%s\n' "$REPORT" >> bench/BENCHMARKS.md
