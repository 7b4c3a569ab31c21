#!/usr/bin/env bash
# Relay benchmark: Postfix and Herald, one after the other in the same run,
# each relaying the same load from smtp-source to smtp-sink.
#
#   bench/relay.sh [MESSAGES] [SESSIONS] [SIZE]      (defaults 20000 20 4096)
#
# Load: smtp-source, SESSIONS parallel sessions (one connection each, -d),
# MESSAGES messages of SIZE bytes, from a trusted network (no AUTH, no TLS).
# Path: client -> MTA (acknowledges only after its queue file or spool
# record is synced to disk) -> smarthost route -> smtp-sink (accepts all).
# Measured: from the first connection to the sink counting the last message.
# Postfix runs as a private instance in a temp dir with its default
# settings (fsync on, default_destination_concurrency_limit 20); Herald runs
# its release build with the same concurrency limit. Results are appended to
# bench/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-20000}
SESSIONS=${2:-20}
SIZE=${3:-4096}
SINK_PORT=2602
POSTFIX_PORT=2625
HERALD_PORT=2626

if ! command -v smtp-source >/dev/null || ! command -v postfix >/dev/null; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix
fi
cargo build --release --locked -p herald >/dev/null

WORK=$(mktemp -d /tmp/herald-bench.XXXXXX)
chmod 755 "$WORK"   # Postfix's daemons run as the postfix user
cleanup() {
  postfix -c "$WORK/postfix/conf" stop >/dev/null 2>&1 || true
  [ -n "${HERALD_PID:-}" ] && kill "$HERALD_PID" 2>/dev/null || true
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }

start_sink() {
  : > "$WORK/sink.out"
  smtp-sink -c -u nobody "127.0.0.1:$SINK_PORT" 1024 > "$WORK/sink.out" 2>&1 &
  SINK_PID=$!
  sleep 0.3
}

stop_sink() {
  kill "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || true
  SINK_PID=
}

sink_count() {
  tr '\r' '\n' < "$WORK/sink.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true
}

# Runs the load against 127.0.0.1:$1; prints the seconds until the sink
# has every message.
run_load() {
  local port=$1 start count
  start=$(now)
  smtp-source -d -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f bench@bench.test -t rcpt@sink.test "127.0.0.1:$port"
  while :; do
    count=$(sink_count)
    [ "${count:-0}" -ge "$MESSAGES" ] && break
    sleep 0.05
  done
  echo "$(now) - $start" | bc -l
}

# --- Postfix: a private instance whose only job is this relay.
PF="$WORK/postfix"
mkdir -p "$PF/conf" "$PF/queue" "$PF/data"
chown postfix:postfix "$PF/data"
cp /etc/postfix/master.cf "$PF/conf/master.cf"
cat > "$PF/conf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
smtpd_relay_restrictions = permit_mynetworks, reject
maillog_file_prefixes = $PF
maillog_file = $PF/maillog
CONF
postconf -c "$PF/conf" -F '*/*/chroot = n'
postconf -c "$PF/conf" -MX smtp/inet
postconf -c "$PF/conf" -Me "127.0.0.1:$POSTFIX_PORT/inet = 127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd"
postfix -c "$PF/conf" check
postfix -c "$PF/conf" start >/dev/null || { cat "$PF/maillog" >&2; exit 1; }
sleep 1
start_sink
POSTFIX_SECS=$(run_load "$POSTFIX_PORT")
stop_sink
postfix -c "$PF/conf" stop >/dev/null

# --- Herald.
H="$WORK/herald"
mkdir -p "$H"
cat > "$H/herald.toml" <<CONF
[server]
hostname = "bench.test"
data_dir = "$H/data"
[http]
listen = "127.0.0.1:0"
[smtp]
submission = ["127.0.0.1:$HERALD_PORT"]
submission_tls = []
inbound = []
[[smtp.relay_networks]]
cidr = "127.0.0.0/8"
account = "main"
[delivery]
max_connections_per_destination = 20
[[delivery.routes]]
domain = "*"
smarthost = "127.0.0.1:$SINK_PORT"
[log]
level = "warn"
CONF
HERALD=./target/release/herald
(cd "$H" && exec "$OLDPWD/$HERALD" --config herald.toml serve > herald.out 2> herald.log) &
HERALD_PID=$!
for _ in $(seq 1 100); do [ -f "$H/data/api-url" ] && break; sleep 0.1; done
(cd "$H" && "$OLDPWD/$HERALD" --config herald.toml sender add --account main @bench.test --override >/dev/null)
start_sink
HERALD_SECS=$(run_load "$HERALD_PORT")
stop_sink

POSTFIX_RATE=$(echo "$MESSAGES / $POSTFIX_SECS" | bc -l)
HERALD_RATE=$(echo "$MESSAGES / $HERALD_SECS" | bc -l)
RATIO=$(echo "$HERALD_RATE / $POSTFIX_RATE" | bc -l)
printf 'postfix %.0f msg/s (%.2f s)\nherald  %.0f msg/s (%.2f s)\nratio   %.2f\n' \
  "$POSTFIX_RATE" "$POSTFIX_SECS" "$HERALD_RATE" "$HERALD_SECS" "$RATIO"

{
  echo
  echo "### relay, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD)"
  echo
  echo "\`bench/relay.sh $MESSAGES $SESSIONS $SIZE\` on $(nproc) cores: $MESSAGES messages of $SIZE bytes, smtp-source $SESSIONS sessions (-d), trusted network, fsync before every acknowledgement, smarthost route to smtp-sink (accepts everything), 20 connections per destination."
  echo
  echo "| MTA | seconds | messages/s |"
  echo "|---|---|---|"
  printf '| Postfix %s | %.2f | %.0f |\n' "$(postconf -d -h mail_version)" "$POSTFIX_SECS" "$POSTFIX_RATE"
  printf '| Herald %s | %.2f | %.0f |\n' "$(git rev-parse --short HEAD)" "$HERALD_SECS" "$HERALD_RATE"
  echo
  printf 'Herald / Postfix: **%.2f×**\n' "$RATIO"
} >> bench/BENCHMARKS.md
