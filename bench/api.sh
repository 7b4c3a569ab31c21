#!/usr/bin/env bash
# Send API and tracking endpoint benchmarks, against the release build on
# its embedded SQLite store.
#
#   bench/api.sh [SECONDS] [CONNECTIONS]      (defaults 15 8)
#
# 1. Send API: wrk POSTs one message to 1,000 recipients per request from
#    CONNECTIONS connections for SECONDS. Each 202 comes after the message
#    is synced to the spool. Delivery runs meanwhile, through a smarthost
#    route to smtp-sink. Measured: recipients accepted per second.
# 2. Tracking: wrk GETs open pixels and click redirects, half each, every
#    path a distinct recipient (no open is a repeat that coalescing
#    folds), from 64 connections for SECONDS. Then every answered request
#    must have its event in the store or be counted as shed: `opened` and `clicked`
#    events and the shed count are compared with the server's own count
#    of answers.
# Results are appended to bench/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-15}
CONNECTIONS=${2:-8}
SINK_PORT=2612
HTTP_PORT=2680

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v smtp-sink >/dev/null || need+=(postfix)
if [ ${#need[@]} -gt 0 ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release --locked -p herald >/dev/null
cargo build --release --locked -p herald-tracking --example tokens >/dev/null

WORK=$(mktemp -d /tmp/herald-api-bench.XXXXXX)
cleanup() {
  [ -n "${HERALD_PID:-}" ] && kill "$HERALD_PID" 2>/dev/null || true
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1024 > /dev/null 2>&1 &
SINK_PID=$!

# Each phase gets a fresh server, so the tracking load does not compete
# with delivering what the send load queued.
start_herald() {
  H="$WORK/$1"
  mkdir -p "$H"
  cat > "$H/herald.toml" <<CONF
[server]
hostname = "bench.test"
data_dir = "$H/data"
shutdown_timeout = "2s"
[http]
listen = "127.0.0.1:$HTTP_PORT"
public_url = "http://127.0.0.1:$HTTP_PORT"
[smtp]
submission = []
submission_tls = []
inbound = []
[delivery]
max_connections_per_destination = 20
[[delivery.routes]]
domain = "*"
smarthost = "127.0.0.1:$SINK_PORT"
[log]
level = "warn"
CONF
  (cd "$H" && exec "$HERALD" --config herald.toml serve > herald.out 2> herald.log) &
  HERALD_PID=$!
  for _ in $(seq 1 100); do [ -f "$H/data/api-url" ] && break; sleep 0.1; done
  herald sender add --account main @bench.test --override >/dev/null
  KEY=$(cat "$H/data/bootstrap-admin-key")
}
stop_herald() {
  kill "$HERALD_PID" 2>/dev/null || true
  wait "$HERALD_PID" 2>/dev/null || true
  HERALD_PID=
}
HERALD="$PWD/target/release/herald"
herald() { (cd "$H" && "$HERALD" --config herald.toml "$@"); }
BASE="http://127.0.0.1:$HTTP_PORT"
count_events() {
  python3 - "$H/data/herald.db" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
kinds = sys.argv[2].split(",")
q = "SELECT count(*) FROM events WHERE kind IN (%s)" % ",".join("?" * len(kinds))
print(db.execute(q, kinds).fetchone()[0])
PY
}

# Parses wrk's summary: requests/s and the count of answers that were not 2xx/3xx.
wrk_rate() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
wrk_errors() { awk '/Non-2xx or 3xx responses:/ {print $5}' "$1" | grep . || echo 0; }
wrk_total() { awk '/requests in/ {print $1}' "$1"; }

# --- 1. Send API.
start_herald send
python3 - "$WORK/send.json" <<'PY'
import json, sys
body = {
    "from": "news@bench.test",
    "to": [f"reader{i}@example.test" for i in range(1000)],
    "subject": "Benchmark",
    "text": "Hello from the benchmark.\n" * 20,
    "stream": "newsletter",
}
json.dump(body, open(sys.argv[1], "w"))
PY
cat > "$WORK/send.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("HERALD_KEY")
local f = io.open(os.getenv("SEND_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
LUA
HERALD_KEY="$KEY" SEND_BODY="$WORK/send.json" \
  wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --timeout 10s --latency -s "$WORK/send.lua" "$BASE/api/v1/messages" > "$WORK/send.out"
cat "$WORK/send.out"
SEND_RATE=$(wrk_rate "$WORK/send.out")
SEND_ERRORS=$(wrk_errors "$WORK/send.out")
RCPT_RATE=$(echo "$SEND_RATE * 1000" | bc -l)
SEND_P50=$(awk '$1 == "50%" {print $2}' "$WORK/send.out")
SEND_P99=$(awk '$1 == "99%" {print $2}' "$WORK/send.out")
ACCEPTED_EVENTS=$(count_events accepted)
stop_herald

# --- 2. Tracking. A real message gives the account and message the tokens name.
start_herald track
SENT=$(curl -fsS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"from":"news@bench.test","to":["one@example.test"],"subject":"t","text":"t","stream":"newsletter"}' \
  "$BASE/api/v1/messages")
MESSAGE=$(echo "$SENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
ACCOUNT=$(herald --json account show main | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
PATHS=1200000
./target/release/examples/tokens "$H/data/secret.key" "$ACCOUNT" "$MESSAGE" $((PATHS / 2)) "$WORK"
paste -d '\n' "$WORK/opens.txt" "$WORK/clicks.txt" > "$WORK/paths.txt"
cat > "$WORK/track.lua" <<'LUA'
-- Each thread walks its own stride of the path list: no path is asked twice.
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
  thread:set("stride", 2)
end
function init(args)
  paths = {}
  for line in io.lines(os.getenv("TRACK_PATHS")) do paths[#paths + 1] = line end
  i = id + 1
end
function request()
  local p = paths[i]
  i = i + stride
  if p == nil then p = "/t/o/exhausted" end
  return wrk.format("GET", p, {["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) bench"})
end
LUA
BEFORE=$(count_events opened,clicked)
TRACK_PATHS="$WORK/paths.txt" wrk -t2 -c64 -d"${SECONDS_EACH}s" --latency -s "$WORK/track.lua" "$BASE" > "$WORK/track.out"
cat "$WORK/track.out"
TRACK_RATE=$(wrk_rate "$WORK/track.out")
TRACK_ERRORS=$(wrk_errors "$WORK/track.out")
TRACK_TOTAL=$(wrk_total "$WORK/track.out")
TRACK_P99=$(awk '$1 == "99%" {print $2}' "$WORK/track.out")
# The server's own count of answered tracking requests.
ANSWERED=$(curl -fsS "$BASE/metrics" | awk '
  /^herald_http_requests_total/ && (/route="\/t\/o\/\{token\}"/ && /status="200"/ || /route="\/t\/c\/\{token\}"/ && /status="30[23]"/) {s += $NF}
  END {print s + 0}')
# Events are written in batches, and an open or click is held for the
# coalescing window (60 s by default) before it leaves (past 100,000 held,
# a new reader's goes at once); while the event pipeline is behind,
# engagement is shed and counted (herald_engagement_shed_total). Wait until
# every answer is an event or counted as shed, or 100 s.
shed_count() {
  curl -fsS "$BASE/metrics" | awk '/^herald_engagement_shed_total/ {s += $NF} END {print s + 0}'
}
RECORDED=-1
for _ in $(seq 1 200); do
  NOW=$(( $(count_events opened,clicked) - BEFORE ))
  SHED=$(shed_count)
  [ "$NOW" -eq "$RECORDED" ] && [ $((NOW + SHED)) -ge "$ANSWERED" ] && break
  RECORDED=$NOW
  sleep 0.5
done
printf 'send API: %.1f requests/s = %.0f recipients/s (non-2xx: %s), %s accepted events stored\n' "$SEND_RATE" "$RCPT_RATE" "$SEND_ERRORS" "$ACCEPTED_EVENTS"
printf 'tracking: %.0f requests/s (non-2xx/3xx: %s), %s answered, %s events recorded, %s shed\n' \
  "$TRACK_RATE" "$TRACK_ERRORS" "$ANSWERED" "$RECORDED" "$SHED"

{
  echo
  echo "### api, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD)"
  echo
  echo "\`bench/api.sh $SECONDS_EACH $CONNECTIONS\` on $(nproc) cores, release build, embedded SQLite, delivery running meanwhile (smarthost to smtp-sink)."
  echo
  echo "| load | requests/s | figure | errors | p50 | p99 |"
  echo "|---|---|---|---|---|---|"
  printf '| send API, 1,000 recipients per request, %s connections | %.1f | **%.0f recipients/s**; %s accepted events stored by the end | %s | %s | %s |\n' \
    "$CONNECTIONS" "$SEND_RATE" "$RCPT_RATE" "$ACCEPTED_EVENTS" "$SEND_ERRORS" "$SEND_P50" "$SEND_P99"
  printf '| tracking, opens and clicks half each, 64 connections | **%.0f** | %s requests, %s answered, %s events recorded, %s shed while the pipeline was behind | %s | - | %s |\n' \
    "$TRACK_RATE" "$TRACK_TOTAL" "$ANSWERED" "$RECORDED" "$SHED" "$TRACK_ERRORS" "$TRACK_P99"
} >> bench/BENCHMARKS.md
[ $((RECORDED + SHED)) -eq "$ANSWERED" ] || { echo "events recorded ($RECORDED) + shed ($SHED) != answers ($ANSWERED)" >&2; exit 1; }
