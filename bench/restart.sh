#!/usr/bin/env bash
# Restart benchmark: Herald started over a spool of MESSAGES deferred
# messages (each tried once, due again in an hour).
#
#   bench/restart.sh [MESSAGES] [SIZE]      (defaults 1000000 2048)
#
# The spool is filled offline (the herald-spool `fill` example, the same
# code path as acceptance: data segments, journal, group commit). Measured:
# from starting `herald serve` to an SMTP client's EHLO answered on the
# submission listener; the process's peak RSS (VmHWM) then and 20 s later
# (the scheduler holds every message's next attempt). Appended to
# bench/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-1000000}
SIZE=${2:-2048}
PORT=2627
cargo build --release --locked -p herald >/dev/null
cargo build --release --locked -p herald-spool --example fill >/dev/null

WORK=$(mktemp -d /tmp/herald-restart.XXXXXX)
cleanup() {
  [ -n "${HERALD_PID:-}" ] && kill "$HERALD_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/data"
FILL=$(./target/release/examples/fill "$WORK/data/spool" "$MESSAGES" "$SIZE")
echo "$FILL"
SPOOL_BYTES=$(du -sb "$WORK/data/spool" | cut -f1)
cat > "$WORK/herald.toml" <<CONF
[server]
hostname = "bench.test"
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:0"
[smtp]
submission = ["127.0.0.1:$PORT"]
submission_tls = []
inbound = []
[log]
level = "warn"
CONF

now() { date +%s.%N; }
HERALD="$PWD/target/release/herald"
START=$(now)
(cd "$WORK" && exec "$HERALD" --config herald.toml serve > herald.out 2> herald.log) &
HERALD_PID=$!
# Ready: an EHLO answered on the submission port.
until python3 - "$PORT" <<'PY' 2>/dev/null
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=2)
code, _ = s.ehlo("bench.test")
s.quit()
sys.exit(0 if code == 250 else 1)
PY
do
  kill -0 "$HERALD_PID" 2>/dev/null || { cat "$WORK/herald.log" >&2; exit 1; }
  sleep 0.1
done
READY=$(echo "$(now) - $START" | bc -l)
rss() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$HERALD_PID/status"; }
RSS_READY=$(rss)
sleep 20
RSS_LATER=$(rss)
printf 'ready after %.1f s; peak RSS %s MiB at ready, %s MiB 20 s later\n' "$READY" "$RSS_READY" "$RSS_LATER"
{
  echo
  echo "### restart, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD)"
  echo
  echo "\`bench/restart.sh $MESSAGES $SIZE\` on $(nproc) cores, release build: $FILL ($((SPOOL_BYTES / 1048576)) MiB of spool). From \`herald serve\` to an EHLO answered on the submission port, and the process's peak RSS (VmHWM)."
  echo
  echo "| queued (deferred) | ready to accept mail | peak RSS at ready | peak RSS 20 s later |"
  echo "|---|---|---|---|"
  printf '| %s | **%.1f s** | %s MiB | **%s MiB** |\n' "$MESSAGES" "$READY" "$RSS_READY" "$RSS_LATER"
} >> bench/BENCHMARKS.md
