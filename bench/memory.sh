#!/usr/bin/env bash
# Memory benchmark: one send API request for RECIPIENTS recipients with
# substitutions and an attachment, each copy about SIZE_MIB MiB, delivered
# through a smarthost to Postfix's smtp-sink (accepts and discards).
#
#   bench/memory.sh [RECIPIENTS] [SIZE_MIB]      (defaults 1000 25)
#
# Measured: the Herald process's peak resident memory (VmHWM) from start to
# the last copy delivered, the time the request took to answer 202, and the
# time until the sink counted every copy. Herald's release build on the
# embedded SQLite store, spool synced before 202, no DKIM (the domain is not
# registered), one connection to the sink at a time per destination up to
# the default concurrency. Results are appended to bench/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPIENTS=${1:-1000}
SIZE_MIB=${2:-25}
SINK_PORT=2612
HTTP_PORT=2680

if ! command -v smtp-sink >/dev/null; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix
fi
cargo build --release --locked -p herald >/dev/null
HERALD=$PWD/target/release/herald

WORK=$(mktemp -d /tmp/herald-memory.XXXXXX)
cleanup() {
  [ -n "${HERALD_PID:-}" ] && kill "$HERALD_PID" 2>/dev/null || true
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }

smtp-sink -c -u nobody "127.0.0.1:$SINK_PORT" 256 > "$WORK/sink.out" 2>&1 &
SINK_PID=$!
sink_count() { tr '\r' '\n' < "$WORK/sink.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true; }

cat > "$WORK/herald.toml" <<CONF
[server]
hostname = "mta.bench.test"
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:$HTTP_PORT"
[smtp]
submission = []
submission_tls = []
inbound = []
[log]
level = "warn"
[[delivery.routes]]
domain = "*"
smarthost = "127.0.0.1:$SINK_PORT"
CONF
cd "$WORK"
"$HERALD" --config herald.toml serve > herald.log 2>&1 &
HERALD_PID=$!
for _ in $(seq 1 100); do [ -f data/api-url ] && break; sleep 0.1; done
"$HERALD" --config herald.toml sender add --account main @bench.test --override >/dev/null
KEY=$(cat data/bootstrap-admin-key)

# The request: RECIPIENTS people, each with their own name, and one
# attachment that makes each copy about SIZE_MIB MiB once in base64.
python3 - "$RECIPIENTS" "$SIZE_MIB" > request.json <<'PY'
import base64, json, os, sys
n, mib = int(sys.argv[1]), int(sys.argv[2])
# base64 is 4/3 of the bytes, and MIME breaks its lines at 76 (+2 per line).
raw = os.urandom(int(mib * 1024 * 1024 * 3 / 4 * 76 / 78) - 100_000)
json.dump({
    "from": "news@bench.test",
    "to": [{"email": f"r{i}@sink.test", "substitutions": {"name": f"Reader {i}"}} for i in range(n)],
    "subject": "Your report, {{name}}",
    "html": "<html><body><p>Hello {{name}}, your report is attached.</p></body></html>",
    "attachments": [{"filename": "report.bin", "content": base64.b64encode(raw).decode()}],
}, sys.stdout)
PY
REQUEST_BYTES=$(stat -c %s request.json)

start=$(now)
status=$(curl -s -o answer.json -w '%{http_code}' -H "Authorization: Bearer $KEY" \
  -H 'content-type: application/json' --data-binary @request.json "http://127.0.0.1:$HTTP_PORT/api/v1/messages")
accepted=$(echo "$(now) - $start" | bc -l)
[ "$status" = 202 ] || { echo "send answered $status: $(head -c 300 answer.json)"; exit 1; }
while :; do
  count=$(sink_count)
  [ "${count:-0}" -ge "$RECIPIENTS" ] && break
  kill -0 "$HERALD_PID" || { echo "herald died"; tail herald.log; exit 1; }
  sleep 0.2
done
delivered=$(echo "$(now) - $start" | bc -l)
peak_kib=$(grep VmHWM "/proc/$HERALD_PID/status" | awk '{print $2}')
spool_kib=$(du -sk data/spool | cut -f1)
cd - >/dev/null

line=$(printf '| %s | %d recipients x %d MiB (request %d MiB) | 202 after %.1f s | all delivered after %.1f s | peak RSS %d MiB |' \
  "$(date -u +%Y-%m-%d)" "$RECIPIENTS" "$SIZE_MIB" $((REQUEST_BYTES / 1048576)) "$accepted" "$delivered" $((peak_kib / 1024)))
echo "$line"
{
  echo
  echo "### Memory: \`bench/memory.sh $RECIPIENTS $SIZE_MIB\`"
  echo
  echo "One send API request with substitutions, each copy about $SIZE_MIB MiB (a random attachment in base64), through a smarthost to smtp-sink; release build, SQLite, spool synced before 202, no DKIM. Peak RSS is the Herald process's VmHWM from start to the last copy delivered."
  echo
  echo "| date | load | answered | delivered | memory |"
  echo "|---|---|---|---|---|"
  echo "$line"
} >> bench/BENCHMARKS.md
