#!/usr/bin/env bash
# Realistic relay benchmark: Postfix (signing through OpenDKIM) and Herald
# (signing with its own keys), one after the other in the same run, each
# relaying the same load to a sink that answers like a real server: of
# every 20 recipients 2 get 451 4.7.1 and 1 gets 550 5.1.1.
#
#   bench/realistic.sh [MESSAGES] [SESSIONS] [SIZE]     (defaults 20000 20 4096)
#
# Two rounds: a new connection to the sink for every message, then
# connections reused. Load: smtp-source, SESSIONS parallel sessions, from a
# trusted network. Measured: from the first connection to the sink having
# answered every message's recipient once (retries of the 4xx come minutes
# later for both). Both MTAs acknowledge only after an fsync; both sign:
# Postfix through OpenDKIM's milter with one RSA-2048 key, Herald with the
# RSA-2048 and Ed25519 keys `herald domain add` makes. Appended to
# bench/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-20000}
SESSIONS=${2:-20}
SIZE=${3:-4096}
SINK_PORT=2602
POSTFIX_PORT=2625
HERALD_PORT=2626
MILTER_PORT=8891

need=()
command -v smtp-source >/dev/null || need+=(postfix)
command -v opendkim >/dev/null || need+=(opendkim opendkim-tools)
if [ ${#need[@]} -gt 0 ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release --locked -p herald >/dev/null
cargo build --release --locked -p herald-testkit --example bench_sink >/dev/null

WORK=$(mktemp -d /tmp/herald-realistic.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  postfix -c "$WORK/postfix/conf" stop >/dev/null 2>&1 || true
  [ -n "${DKIM_PID:-}" ] && kill "$DKIM_PID" 2>/dev/null || true
  [ -n "${HERALD_PID:-}" ] && kill "$HERALD_PID" 2>/dev/null || true
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }

start_sink() {
  echo 0 > "$WORK/sink.count"
  ./target/release/examples/bench_sink "127.0.0.1:$SINK_PORT" "$WORK/sink.count" &
  SINK_PID=$!
  sleep 0.3
}
stop_sink() {
  kill "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || true
  SINK_PID=
}
run_load() {
  local port=$1 start
  start=$(now)
  smtp-source -d -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f news@bench.test -t rcpt@sink.test "127.0.0.1:$port"
  until [ "$(cat "$WORK/sink.count" 2>/dev/null || true)" -ge "$MESSAGES" ] 2>/dev/null; do
    if [ "$(echo "$(now) - $start > 900" | bc -l)" = 1 ]; then
      echo "the sink saw only $(cat "$WORK/sink.count") of $MESSAGES in 900 s" >&2
      exit 1
    fi
    sleep 0.05
  done
  echo "$(now) - $start" | bc -l
}

# --- OpenDKIM: one RSA-2048 key for bench.test.
mkdir -p "$WORK/dkim"
opendkim-genkey -b 2048 -d bench.test -s bench -D "$WORK/dkim"
chown -R opendkim:opendkim "$WORK/dkim"
cat > "$WORK/dkim/opendkim.conf" <<CONF
Syslog no
Mode s
Domain bench.test
Selector bench
KeyFile $WORK/dkim/bench.private
Canonicalization relaxed/relaxed
Socket inet:$MILTER_PORT@127.0.0.1
UserID opendkim:opendkim
PidFile $WORK/dkim/opendkim.pid
# The key lives under /tmp (writable by others), which OpenDKIM refuses
# by default.
RequireSafeKeys false
CONF
opendkim -f -x "$WORK/dkim/opendkim.conf" &
DKIM_PID=$!
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$MILTER_PORT) 2>/dev/null && break; sleep 0.1; done
kill -0 "$DKIM_PID" || { echo "opendkim did not start" >&2; exit 1; }

# --- Postfix, with the milter.
PF="$WORK/postfix"
postfix_start() {
  local reuse=$1
  rm -rf "$PF"
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
smtpd_milters = inet:127.0.0.1:$MILTER_PORT
non_smtpd_milters = inet:127.0.0.1:$MILTER_PORT
milter_default_action = tempfail
maillog_file_prefixes = $PF
maillog_file = $PF/maillog
CONF
  if [ "$reuse" = yes ]; then
    postconf -c "$PF/conf" "smtp_connection_cache_destinations = [127.0.0.1]:$SINK_PORT"
  else
    postconf -c "$PF/conf" "smtp_connection_cache_on_demand = no"
  fi
  postconf -c "$PF/conf" -F '*/*/chroot = n'
  postconf -c "$PF/conf" -MX smtp/inet
  postconf -c "$PF/conf" -Me "127.0.0.1:$POSTFIX_PORT/inet = 127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd"
  postfix -c "$PF/conf" check
  postfix -c "$PF/conf" start >/dev/null || { cat "$PF/maillog" >&2; exit 1; }
  sleep 1
}

# --- Herald, with bench.test registered (its keys sign at once).
H="$WORK/herald"
herald_start() {
  local per_connection=$1
  rm -rf "$H"
  mkdir -p "$H"
  cat > "$H/herald.toml" <<CONF
[server]
hostname = "mta.herald-bench.test"
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
max_messages_per_connection = $per_connection
[[delivery.routes]]
domain = "*"
smarthost = "127.0.0.1:$SINK_PORT"
[log]
level = "warn"
CONF
  (cd "$H" && exec "$OLDPWD/target/release/herald" --config herald.toml serve > herald.out 2> herald.log) &
  HERALD_PID=$!
  for _ in $(seq 1 100); do [ -f "$H/data/api-url" ] && break; sleep 0.1; done
  (cd "$H" && "$OLDPWD/target/release/herald" --config herald.toml domain add bench.test --account main >/dev/null) || {
    cat "$H/herald.log" >&2
    exit 1
  }
  (cd "$H" && "$OLDPWD/target/release/herald" --config herald.toml sender add --account main @bench.test --override >/dev/null)
  # smtp-source sends every message to one address: suppressing it after
  # its first 550 5.1.1 (as Herald should) would drop the rest of the load.
  (cd "$H" && "$OLDPWD/target/release/herald" --config herald.toml account set main --hard-bounces 4000000000 --soft-bounces 4000000000 >/dev/null)
}
herald_stop() {
  kill "$HERALD_PID" 2>/dev/null || true
  wait "$HERALD_PID" 2>/dev/null || true
  HERALD_PID=
}

declare -A SECS
for mode in new reuse; do
  if [ "$mode" = new ]; then reuse=no; per=1; else reuse=yes; per=100; fi
  postfix_start "$reuse"
  start_sink
  SECS[postfix-$mode]=$(run_load "$POSTFIX_PORT")
  stop_sink
  signed=$(grep -c "DKIM-Signature field added" "$PF/maillog" || true)
  postfix -c "$PF/conf" stop >/dev/null
  herald_start "$per"
  start_sink
  SECS[herald-$mode]=$(run_load "$HERALD_PORT")
  stop_sink
  herald_stop
  echo "$mode: postfix ${SECS[postfix-$mode]} s, herald ${SECS[herald-$mode]} s (opendkim log lines: $signed)"
done

{
  echo
  echo "### realistic relay, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD)"
  echo
  echo "\`bench/realistic.sh $MESSAGES $SESSIONS $SIZE\` on $(nproc) cores: $MESSAGES messages of $SIZE bytes, smtp-source $SESSIONS sessions, trusted network, fsync before every acknowledgement, smarthost to a sink answering 10% 451 4.7.1 and 5% 550 5.1.1 (\`crates/testkit/examples/bench_sink.rs\`), until every recipient was answered once. Postfix $(postconf -d -h mail_version) signs through OpenDKIM $(opendkim -V 2>/dev/null | head -1 | awk '{print $NF}') (RSA-2048); Herald signs with RSA-2048 and Ed25519."
  echo
  echo "| connections to the sink | Postfix s | Postfix msg/s | Herald s | Herald msg/s | Herald / Postfix |"
  echo "|---|---|---|---|---|---|"
  for mode in new reuse; do
    p=${SECS[postfix-$mode]}; h=${SECS[herald-$mode]}
    label=$([ "$mode" = new ] && echo "one per message" || echo "reused")
    printf '| %s | %.2f | %.0f | %.2f | %.0f | **%.2f×** |\n' "$label" "$p" "$(echo "$MESSAGES / $p" | bc -l)" "$h" "$(echo "$MESSAGES / $h" | bc -l)" "$(echo "$p / $h" | bc -l)"
  done
} >> bench/BENCHMARKS.md
tail -8 bench/BENCHMARKS.md
