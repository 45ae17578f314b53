#!/usr/bin/env bash
# bench.sh - `make bench` (quick) / `make bench-full`: one run that measures
# the ceilings (bare paho subscriber, raw binary COPY, bare cJSON) and
# chargewatchd end to end on the same capture, through a private mosquitto
# and PostgreSQL on loopback, and prints each figure beside its ceiling.
# Appends the table, with date, machine and commands, to bench/RESULTS.md.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-quick}
BUILD=${BUILD:-build}
OUT=$PWD/build/bench-run
case "$MODE" in
  quick) S=200 K=10 I=10 D=300 LAT_N=200 BIG_S=10000 ;;
  full) S=2000 K=10 I=10 D=300 LAT_N=1000 BIG_S=10000 ;;
  peers)
    echo "bench: peer comparison (Node-RED, collectd, Python bridge) is not implemented yet" >&2
    exit 1 ;;
  *) echo "usage: bench.sh quick|full" >&2; exit 2 ;;
esac

sh .ci/deps.sh
make -s -j2 BUILD="$BUILD" >/dev/null
. tests/services.sh

DAEMON_PID=""
cleanup() {
  set +e
  if [ -n "$DAEMON_PID" ]; then kill -TERM "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null; fi
  cw_mqtt_stop "$OUT/mq"
  cw_pg_stop "$OUT/pg"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$OUT"
mkdir -p "$OUT"
cw_pg_start "$OUT/pg" "$(cw_free_port 55700)" >/dev/null
cw_mqtt_start "$OUT/mq" "$(cw_free_port 18950)"
HTTP_PORT=$(cw_free_port 19500)
PSQL() { psql -X -q -tA "$CW_PG_CONN" -c "$1"; }
med() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | tail -1; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
say() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- capture
GEN="$BUILD/bench/gen -o $OUT/city.cap -s $S -k $K -i $I -d $D --seed 7 --anomaly-rate 0.01 --truth $OUT/truth.csv --sql $OUT/stations.sql"
say "bench: $GEN"
$GEN >/dev/null

cat >"$OUT/chargewatch.conf" <<CONF
[mqtt]
uri = $CW_MQTT_URI
client_id = cw-bench-daemon
[postgres]
conninfo = $CW_PG_CONN
[pipeline]
deadletter = $OUT/deadletter.log
[spool]
dir = $OUT/spool
[alerts]
log = $OUT/alerts.log
[http]
listen = 127.0.0.1:$HTTP_PORT
[log]
level = warn
CONF

http_get() {
  exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || return 1
  printf 'GET %s HTTP/1.0\r\n\r\n' "$1" >&3
  cat <&3
  exec 3<&-
}
metric() { http_get /metrics | awk -v k="$1" '$1==k {print $2}' | tail -1; }

start_daemon() {
  "$BUILD/chargewatchd" -c "$OUT/chargewatch.conf" 2>>"$OUT/daemon.log" &
  DAEMON_PID=$!
  for _ in $(seq 1 300); do
    http_get /healthz 2>/dev/null | grep -q ' 200 ' && return 0
    sleep 0.1
  done
  say "bench: daemon did not become healthy"; tail "$OUT/daemon.log" >&2; return 1
}
stop_daemon() {
  kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true; DAEMON_PID=""
}

# ---------------------------------------------------------------- ceilings
RUNS=${RUNS:-3}
say "bench: broker ceiling (bare paho subscriber that only counts), $RUNS runs"
NMSG=0
for r in $(seq 1 "$RUNS"); do
  "$BUILD/bench/countsub" -u "$CW_MQTT_URI" -t 'cw/+/+/telemetry' -q 1 -i 3 -c "cw-countsub-$r" >"$OUT/countsub.$r" &
  CS=$!
  sleep 0.5
  "$BUILD/bench/replay" -f "$OUT/city.cap" -u "$CW_MQTT_URI" -q 1 --asap --client-prefix "cw-ceil-$r" >"$OUT/replay-ceil.$r" 2>/dev/null
  wait "$CS" || true
done
NMSG=$(field msgs <"$OUT/replay-ceil.1")
NREAD=$(field readings <"$OUT/replay-ceil.1")
BROKER_RATE=$(for r in $(seq 1 "$RUNS"); do field msgs_per_s <"$OUT/countsub.$r"; done | med)
BROKER_CPU=$(for r in $(seq 1 "$RUNS"); do field cpu_us_per_msg <"$OUT/countsub.$r"; done | med)

say "bench: in-process pipeline and bare cJSON ceiling"
"$BUILD/bench/pipeline" -n 500000 -r 5 >"$OUT/pipeline.txt" 2>&1 || true

# The daemon creates the schema; raw COPY then goes into the same indexed table.
start_daemon
say "bench: raw binary COPY ceiling, $RUNS runs"
for r in $(seq 1 "$RUNS"); do
  "$BUILD/bench/copyraw" -f "$OUT/city.cap" -c "$CW_PG_CONN" -b 5000 >"$OUT/copyraw.$r"
  PSQL "TRUNCATE readings"
done
COPY_RATE=$(for r in $(seq 1 "$RUNS"); do field rows_per_s <"$OUT/copyraw.$r"; done | med)
stop_daemon

# ---------------------------------------------------------------- daemon end to end
say "bench: chargewatchd end to end, $RUNS runs"
PSQL "$(cat "$OUT/stations.sql")" >/dev/null
for r in $(seq 1 "$RUNS"); do
  PSQL "TRUNCATE readings, alert_events, alerts; UPDATE sockets SET last_ts = NULL" >/dev/null
  start_daemon
  c0=$(cpu_ticks "$DAEMON_PID")
  t0=$(date +%s.%N)
  "$BUILD/bench/replay" -f "$OUT/city.cap" -u "$CW_MQTT_URI" -q 1 --asap --client-prefix "cw-e2e-$r" >"$OUT/replay-e2e.$r" 2>/dev/null
  rows=0
  for _ in $(seq 1 1200); do
    rows=$(PSQL "SELECT count(*) FROM readings")
    [ "$rows" -ge "$NREAD" ] && break
    sleep 0.1
  done
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$DAEMON_PID")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
  echo "rows=$rows lost=$((NREAD - rows)) seconds=$(calc "$t1 - $t0") cpu_s=$(calc "($c1 - $c0) / $TCK") hwm_kb=$hwm" >"$OUT/e2e.$r"
  if [ "$r" -eq 1 ]; then
    # Detection against the ground truth of this capture (first run only).
    PSQL "SELECT DISTINCT station || ',' || socket || ',' || kind FROM alerts WHERE station NOT LIKE 'LAT%'" | sort >"$OUT/alerts.found"
  fi
  stop_daemon
done
E2E_RATE=$(for r in $(seq 1 "$RUNS"); do awk '{split($1,a,"=");split($3,b,"="); printf "%.0f\n", a[2]/b[2]}' "$OUT/e2e.$r"; done | med)
E2E_LOST=$(for r in $(seq 1 "$RUNS"); do awk '{split($2,a,"="); print a[2]}' "$OUT/e2e.$r"; done | sort -n | tail -1)
E2E_CPU=$(for r in $(seq 1 "$RUNS"); do awk -v n="$NREAD" '{split($4,a,"="); printf "%.2f\n", a[2]*1e6/n}' "$OUT/e2e.$r"; done | med)
E2E_HWM=$(for r in $(seq 1 "$RUNS"); do awk '{split($5,a,"="); print a[2]}' "$OUT/e2e.$r"; done | sort -n | tail -1)

tail -n +2 "$OUT/truth.csv" | awk -F, '{print $3","$4","$1}' | sort -u >"$OUT/alerts.truth"
TP=$(comm -12 "$OUT/alerts.truth" "$OUT/alerts.found" | wc -l)
FN=$(comm -23 "$OUT/alerts.truth" "$OUT/alerts.found" | wc -l)
FP=$(comm -13 "$OUT/alerts.truth" "$OUT/alerts.found" | wc -l)

# ---------------------------------------------------------------- alert latency under load
say "bench: alert latency ($LAT_N probes) under background replay at 1x..20x recorded rate"
PSQL "TRUNCATE readings, alert_events, alerts; UPDATE sockets SET last_ts = NULL" >/dev/null
start_daemon
"$BUILD/bench/replay" -f "$OUT/city.cap" -u "$CW_MQTT_URI" -q 1 -x 20 --client-prefix cw-bg >"$OUT/replay-bg" 2>/dev/null &
BG=$!
sleep 2
"$BUILD/bench/alertlat" -u "$CW_MQTT_URI" -n "$LAT_N" -g 20 >"$OUT/alertlat.txt" || true
BG_RATE=$(awk -v s="$S" -v k="$K" -v i="$I" 'BEGIN {printf "%.0f", s*k/i*20}')
kill "$BG" 2>/dev/null || true
wait "$BG" 2>/dev/null || true
stop_daemon

# ---------------------------------------------------------------- memory at 100,000 sockets
say "bench: RSS with $((BIG_S * 10)) tracked sockets"
"$BUILD/bench/gen" -o "$OUT/big.cap" -s "$BIG_S" -k 10 -i 60 -d 60 --seed 3 --anomaly-rate 0 >/dev/null
start_daemon
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
"$BUILD/bench/replay" -f "$OUT/big.cap" -u "$CW_MQTT_URI" -q 1 --asap --client-prefix cw-big >/dev/null 2>&1
for _ in $(seq 1 600); do
  t=$(metric cw_sockets_tracked || echo 0)
  [ "${t:-0}" -ge $((BIG_S * 10)) ] && break
  sleep 0.1
done
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
TRACKED=${t:-0}
stop_daemon

# ---------------------------------------------------------------- report
PIPE=$(grep -E '^(pipeline|ceiling|median|cjson|decode)' "$OUT/pipeline.txt" | head -8 || true)
LAT=$(cat "$OUT/alertlat.txt")
NOW=$(date -u +%Y-%m-%dT%H:%MZ)
CPU_MODEL=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
{
  echo
  echo "## make bench ($MODE), $NOW"
  echo
  echo "Machine: $(nproc) cores, $CPU_MODEL; broker and database on the same box."
  echo "Capture: \`$GEN\` = $NMSG messages, $NREAD readings. Median of $RUNS runs."
  echo
  echo "| figure | chargewatchd | ceiling | ratio |"
  echo "|---|---|---|---|"
  echo "| readings/s end to end (publish -> committed) | $E2E_RATE | broker delivery $BROKER_RATE msgs/s (bare paho subscriber) | $(calc "$E2E_RATE / $BROKER_RATE") |"
  echo "| readings/s vs raw binary COPY of the same rows | $E2E_RATE | $COPY_RATE rows/s | $(calc "$E2E_RATE / $COPY_RATE") |"
  echo "| CPU us per reading (daemon process) | $E2E_CPU | $BROKER_CPU us/msg (bare paho subscriber) | $(calc "$E2E_CPU / $BROKER_CPU") |"
  echo "| rows lost (sent valid - stored), worst run | $E2E_LOST | 0 | |"
  echo "| peak RSS (VmHWM) | ${E2E_HWM} KiB | | |"
  echo "| RSS at $TRACKED tracked sockets | $rss1 KiB (idle $rss0 KiB, $(( (rss1 - rss0) * 1024 / (TRACKED > 0 ? TRACKED : 1) )) B/socket) | | |"
  echo "| alert latency publish -> alert on MQTT, background ~$BG_RATE msgs/s | $LAT | | |"
  echo "| detection vs ground truth (station,socket,kind) | TP=$TP FN=$FN FP=$FP | | |"
  echo
  echo "In-process pipeline (\`$BUILD/bench/pipeline -n 500000 -r 5\`):"
  echo
  echo '```'
  cat "$OUT/pipeline.txt"
  echo '```'
} | tee -a bench/RESULTS.md
