#!/usr/bin/env bash
# run.sh - `make bench-peers`: chargewatchd against what people use today (a
# Python bridge, Node-RED, collectd), each fed the same capture through the
# same private mosquitto into the same PostgreSQL, once with the broker queue
# unlimited (tests/services.sh) and once with mosquitto's defaults, in one run
# so the ratios are fair. Appends the table to bench/RESULTS.md. docs/PEERS.md.
#   bash bench/peers/run.sh [--full] [--batched]
# --batched: the same readings as station-batched messages (one array of the
# station's 10 readings per interval on cw/{station}/telemetry), chargewatchd
# and Node-RED only (the other peers take one reading per message).
# Env: BUILD (default build/peers); RUNS (default 1; the table shows medians);
# CW_PEERS, CW_QUEUES: subsets of the runs;
# CW_PEERS_STATIONS: capture size (10 sockets x 30 readings per station);
# CW_PEERS_APPEND=0: do not append to bench/RESULTS.md (trial runs).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
# Debian's python3-paho-mqtt and python3-psycopg2 live under the system
# interpreter, whatever python3 comes first in PATH.
PY=/usr/bin/python3
MODE=quick
SHAPE=socket
for a in "$@"; do
  case "$a" in
    --full) MODE=full ;;
    --batched) SHAPE=batched ;;
    *) echo "usage: bench/peers/run.sh [--full] [--batched]" >&2; exit 2 ;;
  esac
done
BUILD=${BUILD:-build/peers}
OUT=$ROOT/build/peers/run
NR=$ROOT/build/peers/node-red
if [ "$SHAPE" = batched ]; then
  PEERS=${CW_PEERS:-chargewatchd nodered}
  QUEUES=${CW_QUEUES:-unlimited}
else
  PEERS=${CW_PEERS:-chargewatchd bridge nodered collectd collectd-flush}
  QUEUES=${CW_QUEUES:-unlimited default}
fi
RUNS=${RUNS:-1}
# quick: 200 stations x 10 sockets every 10 s for 5 min = 60,000 readings;
# full: 1,000 stations = 300,000. Five minutes at most, because replay shifts
# the first reading to now and chargewatchd rejects readings more than 5 min
# in the future (docs/ARCHITECTURE.md section 7), which --asap would otherwise produce.
case "$MODE" in
  quick) S=200 ;;
  full) S=1000 ;;
esac
S=${CW_PEERS_STATIONS:-$S}
K=10 I=10 D=300
STALL_S=30          # no new row for this long, counted from the end of the
                    # replay: done (Node-RED stores nothing for ~25 s at first)
MAX_WAIT_S=600      # hard bound on one measurement

say() { printf '%s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
gt() { awk "BEGIN { exit !(($1) > ($2)) }"; }

# ---------------------------------------------------------------- install on demand
need=""
$PY -c 'import paho.mqtt.client, psycopg2.extras' 2>/dev/null ||
  need="$need python3-paho-mqtt python3-psycopg2"
{ command -v collectd >/dev/null && [ -f /usr/lib/collectd/mqtt.so ] &&
  [ -f /usr/lib/collectd/postgresql.so ]; } || need="$need collectd-core"
command -v node >/dev/null || need="$need nodejs"
command -v npm >/dev/null || need="$need npm"
if [ -n "$need" ]; then
  say "peers: apt-get install$need"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -qq $need >/dev/null 2>&1 || {
    as_root apt-get update -qq >/dev/null
    as_root apt-get install -y -qq $need >/dev/null
  }
fi
if [ ! -f "$NR/node_modules/node-red/red.js" ] || [ ! -f "$NR/node_modules/pg/package.json" ]; then
  say "peers: npm install node-red pg into $NR"
  mkdir -p "$NR"
  (cd "$NR" && npm install --no-audit --no-fund --loglevel=error node-red pg >/dev/null)
fi
NODE_RED_VER=$(node -p "require('$NR/node_modules/node-red/package.json').version")
PG_JS_VER=$(node -p "require('$NR/node_modules/pg/package.json').version")

make -s -j2 BUILD="$BUILD" "$BUILD/chargewatchd" "$BUILD/bench/gen" "$BUILD/bench/replay" >/dev/null || {
  [ -x "$BUILD/chargewatchd" ] && [ -x "$BUILD/bench/gen" ] && [ -x "$BUILD/bench/replay" ] || exit 1
  say "peers: make failed; measuring the binaries already in $BUILD"
}
. tests/services.sh

# ---------------------------------------------------------------- process bookkeeping
PEER_PIDS=""       # processes whose CPU and RSS are the peer's
MQ_DIR=""
cleanup() {
  set +e
  for p in $PEER_PIDS; do kill -TERM "$p" 2>/dev/null; done
  for p in $PEER_PIDS; do wait "$p" 2>/dev/null; done
  [ -n "$MQ_DIR" ] && cw_mqtt_stop "$MQ_DIR"
  cw_pg_stop "$OUT/pg"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stop one process we started: TERM, up to 20 s, then KILL.
stop_pid() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cpu_ticks() { # utime+stime of the given pids (fields 14, 15 of /proc/PID/stat)
  local s=0 p
  for p in "$@"; do s=$((s + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$s"
}
db_ticks() { # the postmaster and all its children (backends, walwriter, ...)
  # cat skips processes that exit while it reads; comm is "postgres" (no space).
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } |
    awk -v pp="$CW_PG_PID" '($1 == pp || $4 == pp) {s += $14 + $15} END {print s + 0}'
}
hwm_kb() {
  local m=0 p v
  for p in "$@"; do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$m" ] && m=$v
  done
  echo "$m"
}
TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- services
rm -rf "$OUT"
mkdir -p "$OUT"
cw_pg_start "$OUT/pg" "$(cw_free_port 55800)" >/dev/null
PGPORT=$CW_PG_PORT
DAEMON_CONN=$CW_PG_CONN
PEERS_CONN="host=127.0.0.1 port=$PGPORT user=postgres dbname=peers"
PSQL() { psql -X -q -tA "$1" -c "$2"; }
PSQL "$DAEMON_CONN" "CREATE DATABASE peers" >/dev/null
# The table every peer writes: the daemon's column shape and index, as a plain
# table (the daemon's is day-partitioned with a unique index it needs for
# idempotent replay; a peer would not have one).
PSQL "$PEERS_CONN" "
CREATE TABLE readings (ts timestamptz NOT NULL, station text NOT NULL, socket smallint NOT NULL,
  v real, a real, w real, wh double precision, t real, t_amb real, smoke bool, state smallint);
CREATE INDEX readings_station_socket_ts ON readings (station, socket, ts);
-- collectd's postgresql writer calls one statement per value list with
-- (time, host, plugin, plugin_instance, type, type_instance, ds names, ds
-- types, values); this maps a cw_reading value list onto a row.
CREATE FUNCTION collectd_insert(timestamptz, text, text, text, text, text, text[], text[],
  double precision[]) RETURNS void LANGUAGE sql AS \$\$
  INSERT INTO readings VALUES (\$1, \$2, \$4::smallint, \$9[1], \$9[2], \$9[3], \$9[4], \$9[5],
    NULLIF(\$9[6], 'NaN'), \$9[7] <> 0, NULLIF(\$9[8], 'NaN')::smallint);
\$\$;" >/dev/null

# mosquitto: "unlimited" is tests/services.sh's configuration; "default" is the
# same file without its two limits, i.e. mosquitto's stock max_inflight_messages
# 20 and max_queued_messages 1000 per client.
mq_start() {
  MQ_DIR=$OUT/mq-$2-$1
  rm -rf "$MQ_DIR"
  mkdir -p "$MQ_DIR"
  local port limits=""
  port=$(cw_free_port 18990)
  [ "$1" = unlimited ] && limits="max_queued_messages 0
max_inflight_messages 0"
  cat >"$MQ_DIR/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $MQ_DIR/
autosave_interval 1
$limits
max_packet_size 1048576
sys_interval 1
log_dest file $MQ_DIR/mosquitto.log
user $(id -un)
CONF
  mosquitto -c "$MQ_DIR/mosquitto.conf" >/dev/null 2>&1 &
  echo $! >"$MQ_DIR/mosquitto.pid"
  for _ in $(seq 1 100); do cw_port_busy "$port" && break; sleep 0.05; done
  cw_port_busy "$port" || { say "peers: mosquitto did not start"; cat "$MQ_DIR/mosquitto.log" >&2; return 1; }
  MQ_PORT=$port
  MQ_URI=tcp://127.0.0.1:$port
}
mq_stop() { cw_mqtt_stop "$MQ_DIR"; MQ_DIR=""; }

# Wait until client id $1 is connected to the broker, then a second for its
# SUBSCRIBE to be handled (each peer subscribes in its connect callback).
wait_connected() {
  for _ in $(seq 1 600); do
    grep -q " as $1 " "$MQ_DIR/mosquitto.log" 2>/dev/null && { sleep 1; return 0; }
    for p in $PEER_PIDS; do kill -0 "$p" 2>/dev/null || { say "peers: $2 exited"; return 1; }; done
    sleep 0.1
  done
  say "peers: $2 did not connect as $1"
  return 1
}

# ---------------------------------------------------------------- the peers
# Each start_X starts the peer against $MQ_PORT, sets PEER_PIDS, COUNT_CONN
# (where its rows land) and CLIENT (its MQTT client id), and waits until it
# is subscribed.
HTTP_PORT=$(cw_free_port 19600)
start_chargewatchd() {
  CLIENT=cw-peers-daemon COUNT_CONN=$DAEMON_CONN
  # A fresh database each time: the daemon restores each socket's last ts at
  # start and would drop this replay's readings as duplicates of the last's.
  PSQL "$PEERS_CONN" "DROP DATABASE IF EXISTS chargewatch" >/dev/null
  PSQL "$PEERS_CONN" "CREATE DATABASE chargewatch" >/dev/null
  rm -rf "$OUT/spool"
  cw_daemon_conf "$OUT/chargewatch.conf" "$OUT" "$MQ_URI" "$CLIENT" "$DAEMON_CONN" "$HTTP_PORT" warn
  "$BUILD/chargewatchd" -c "$OUT/chargewatch.conf" 2>>"$LOG" &
  PEER_PIDS=$!
  wait_connected "$CLIENT" chargewatchd
}
start_bridge() {
  CLIENT=cw-peers-bridge COUNT_CONN=$PEERS_CONN
  "$PY" bench/peers/bridge.py --port "$MQ_PORT" --dsn "$PEERS_CONN" --client-id "$CLIENT" >>"$LOG" 2>&1 &
  PEER_PIDS=$!
  wait_connected "$CLIENT" bridge
}
start_nodered() {
  CLIENT=cw-peers-nodered COUNT_CONN=$PEERS_CONN
  rm -rf "$OUT/nodered-user"
  mkdir -p "$OUT/nodered-user"
  CW_MQTT_PORT=$MQ_PORT CW_MQTT_CLIENT=$CLIENT CW_NODE_PG=$NR/node_modules/pg \
    CW_PG_URL="postgresql://postgres@127.0.0.1:$PGPORT/peers" \
    node "$NR/node_modules/node-red/red.js" -u "$OUT/nodered-user" \
    -s "$ROOT/bench/peers/nodered-settings.js" "$ROOT/bench/peers/nodered-flow.json" >>"$LOG" 2>&1 &
  PEER_PIDS=$!
  wait_connected "$CLIENT" node-red
}
start_collectd_common() { # $1 = extra LoadPlugin postgresql options
  CLIENT=cw-peers-collectd COUNT_CONN=$PEERS_CONN
  mkdir -p "$OUT/collectd"
  cat >"$OUT/collectd.conf" <<CONF
Hostname "cw-peers"
FQDNLookup false
BaseDir "$OUT/collectd"
PIDFile "$OUT/collectd/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db" "$ROOT/bench/peers/types.db"
Interval 10
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "$LOG"
  Timestamp true
</Plugin>
LoadPlugin mqtt
<LoadPlugin postgresql>
$1
</LoadPlugin>
<Plugin mqtt>
  <Subscribe "cw">
    Host "127.0.0.1"
    Port "$MQ_PORT"
    ClientId "$CLIENT"
    QoS 1
    Topic "collectd/#"
    CleanSession true
  </Subscribe>
</Plugin>
<Plugin postgresql>
  <Writer cw>
    Statement "SELECT collectd_insert(\$1, \$2, \$3, \$4, \$5, \$6, \$7, \$8, \$9);"
    StoreRates false
  </Writer>
  <Database peers>
    Host "127.0.0.1"
    Port "$PGPORT"
    User "postgres"
    SSLMode "disable"
    Writer cw
    CommitInterval 1
  </Database>
</Plugin>
CONF
  collectd -f -C "$OUT/collectd.conf" >>"$LOG" 2>&1 &
  PEER_PIDS=$!
  wait_connected "$CLIENT" collectd
}
start_collectd() { start_collectd_common ""; }
start_collectd-flush() { start_collectd_common "  FlushInterval 1"; }

stop_peer() {
  for p in $PEER_PIDS; do stop_pid "$p"; done
  PEER_PIDS=""
}

# ---------------------------------------------------------------- capture
GEN="$BUILD/bench/gen -o $OUT/city.cap -s $S -k $K -i $I -d $D --seed 11 --anomaly-rate 0"
[ "$SHAPE" = batched ] && GEN="$GEN --batched"
say "peers: $GEN"
$GEN >/dev/null
case " $PEERS " in
  *" collectd"*) "$PY" bench/peers/tocollectd.py "$OUT/city.cap" "$OUT/city-collectd.cap" >/dev/null ;;
esac
NMSG=$("$BUILD/bench/replay" --check -f "$OUT/city.cap" | sed -n 's/.*: \([0-9]*\) msgs,.*/\1/p')
NREAD=$("$BUILD/bench/replay" --check -f "$OUT/city.cap" | sed -n 's/.*, \([0-9]*\) readings,.*/\1/p')
REPLAY="$BUILD/bench/replay -f CAP -u URI -q 1 --asap"

# ---------------------------------------------------------------- measure
# One measurement: broker fresh, table empty, peer subscribed; clock and CPU
# from just before the first publish to the last new row seen (polled every
# 0.2 s) once all rows are in or none arrived for STALL_S seconds.
RES=$OUT/results.tsv
: >"$RES"
measure() { # $1 peer, $2 queue
  local peer=$1 q=$2 cap=$OUT/city.cap
  LOG=$OUT/$peer-$q.log
  : >"$LOG"
  mq_start "$q" "$peer"
  "start_$peer"
  [ "$COUNT_CONN" = "$PEERS_CONN" ] && PSQL "$PEERS_CONN" "TRUNCATE readings"
  case "$peer" in collectd*) cap=$OUT/city-collectd.cap ;; esac
  local c0 d0 m0 m1 t0 t1 c1 d1 n last=-1 tlast ref rc=0 hwm after dropped mqpid
  mqpid=$(cat "$MQ_DIR/mosquitto.pid")
  c0=$(cpu_ticks $PEER_PIDS)
  d0=$(db_ticks)
  m0=$(cpu_ticks "$mqpid")
  t0=$(now)
  tlast=$t0
  "$BUILD/bench/replay" -f "$cap" -u "$MQ_URI" -q 1 --asap --client-prefix "cw-peers-pub" \
    >"$OUT/replay-$peer-$q.txt" 2>/dev/null || rc=$?
  local tpub
  tpub=$(now)
  while :; do
    n=$(PSQL "$COUNT_CONN" "SELECT count(*) FROM readings")
    t1=$(now)
    if [ "$n" != "$last" ]; then last=$n; tlast=$t1; fi
    [ "$n" -ge "$NREAD" ] && break
    if gt "$tlast" "$tpub"; then ref=$tlast; else ref=$tpub; fi
    gt "$t1 - $ref" "$STALL_S" && break
    gt "$t1 - $t0" "$MAX_WAIT_S" && break
    sleep 0.2
  done
  c1=$(cpu_ticks $PEER_PIDS)
  d1=$(db_ticks)
  m1=$(cpu_ticks "$mqpid")
  hwm=$(hwm_kb $PEER_PIDS)
  # What the broker discarded for want of queue room ($SYS, retained, 1 s).
  dropped=$(timeout 15 mosquitto_sub -h 127.0.0.1 -p "$MQ_PORT" -C 1 -W 10 \
    -t '$SYS/broker/publish/messages/dropped' 2>/dev/null || echo '?')
  stop_peer
  # Rows a peer commits only when it is stopped are counted apart.
  after=$(PSQL "$COUNT_CONN" "SELECT count(*) FROM readings")
  # Same content whatever wrote it (ts aside: replay shifts it per run).
  say "peers: run $r: $peer queue=$q content: $(PSQL "$COUNT_CONN" "SELECT count(*),
    round(sum(v)::numeric, 1), round(sum(w)::numeric, 1), round(sum(wh)::numeric, 1),
    round(sum(t)::numeric, 1), count(t_amb), count(*) FILTER (WHERE smoke), sum(state),
    count(DISTINCT (station, socket)) FROM readings" | tr '|' ' ')"
  mq_stop
  local secs rate cpu dbcpu mqcpu
  secs=$(calc "$tlast - $t0" 3)
  rate=$( [ "$n" -gt 0 ] && calc "$n / $secs" 0 || echo 0)
  cpu=$( [ "$n" -gt 0 ] && calc "($c1 - $c0) * 1000000 / $TCK / $n" 1 || echo -)
  dbcpu=$( [ "$n" -gt 0 ] && calc "($d1 - $d0) * 1000000 / $TCK / $n" 1 || echo -)
  mqcpu=$(calc "($m1 - $m0) * 1000000 / $TCK / $NMSG" 1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$peer" "$q" "$n" "$rate" "$cpu" "$hwm" \
    "$((NREAD - n))" "$((NREAD - after))" "$dbcpu" "$secs" "$rc" "${dropped:-?}" "$(calc "$tpub - $t0" 2)" "$mqcpu" >>"$RES"
  say "peers: run $r: $peer queue=$q stored=$n/$NREAD in ${secs}s = $rate rows/s, cpu ${cpu} us/row," \
    "db ${dbcpu} us/row, broker ${mqcpu} us/msg, hwm ${hwm} KiB, after stop $after, broker dropped $dropped, publish $(calc "$tpub - $t0" 2)s (replay rc=$rc)"
}

# Runs interleaved, so a noisy neighbour on the machine hits every peer alike.
for r in $(seq 1 "$RUNS"); do
  for q in $QUEUES; do
    for p in $PEERS; do
      measure "$p" "$q"
    done
  done
done

# ---------------------------------------------------------------- report
NOW=$(date -u +%Y-%m-%dT%H:%MZ)
CPU_MODEL=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
COLLECTD_VER=$(dpkg-query -W -f '${Version}' collectd-core 2>/dev/null || echo '?')
PAHO_PY_VER=$($PY -c 'import paho.mqtt; print(paho.mqtt.__version__)')
PSYCOPG_VER=$($PY -c 'import psycopg2; print(psycopg2.__version__.split()[0])')
MOSQ_VER=$({ mosquitto -h 2>/dev/null || true; } | sed -n 's/^mosquitto version //p' | head -1)
PG_VER=$(psql -X -tA "$DAEMON_CONN" -c 'SHOW server_version' | awk '{print $1}')
TABLE=$("$PY" bench/peers/table.py "$RES" "$NREAD")
{
  echo
  echo "## make bench-peers ($MODE$([ "$SHAPE" = batched ] && echo ", station-batched")), $NOW"
  echo
  echo "Machine: $(nproc) cores, $CPU_MODEL, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo);" \
    "mosquitto $MOSQ_VER and PostgreSQL $PG_VER on the same box, loopback."
  if [ "$SHAPE" = batched ]; then
    echo "Capture: \`$GEN\` = $NREAD readings in $NMSG station messages (arrays of $K on cw/{station}/telemetry); published with \`$REPLAY\`."
  else
    echo "Capture: \`$GEN\` = $NREAD readings, one message each; published with \`$REPLAY\`"
    echo "(collectd gets the same readings rewritten by \`bench/peers/tocollectd.py\`)."
  fi
  echo "Peers: chargewatchd ($BUILD/chargewatchd); bridge = bench/peers/bridge.py (python3-paho-mqtt $PAHO_PY_VER," \
    "psycopg2 $PSYCOPG_VER, execute_values 1000 rows/200 ms); nodered = Node-RED $NODE_RED_VER + pg $PG_JS_VER" \
    "(bench/peers/nodered-flow.json, multi-row INSERT 1000 rows/200 ms); collectd = collectd $COLLECTD_VER mqtt +" \
    "postgresql writer, CommitInterval 1; collectd-flush = the same plus FlushInterval 1. Queue unlimited =" \
    "tests/services.sh (max_queued_messages 0, max_inflight_messages 0); default = mosquitto's 1000 queued / 20 in flight."
  echo "publish s: how long replay took to publish everything (a peer that keeps up cannot beat it). rows/s: first publish to last row committed. CPU: utime+stime of the peer process per row stored;" \
    "DB CPU: the PostgreSQL server's processes per row stored (includes the harness's count(*) every 0.2 s); broker CPU: mosquitto per message sent. Median of $RUNS run(s), interleaved; command: \`RUNS=$RUNS bash bench/peers/run.sh${*:+ $*}\`."
  echo
  echo "$TABLE"
} >"$OUT/report.md"
cat "$OUT/report.md"
if [ "${CW_PEERS_APPEND:-1}" = 1 ]; then
  cat "$OUT/report.md" >>bench/RESULTS.md
fi
