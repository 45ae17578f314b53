#!/usr/bin/env bash
# run-sample.sh - `make run`: the one-command demo. Builds chargewatchd, starts
# a private PostgreSQL and mosquitto on free loopback ports under ./run/,
# runs the daemon on them, replays the sample city (bench/sample/city.cap) in
# about a minute while alerts scroll past, prints what was stored and raised,
# then stops everything it started, by PID (also on Ctrl-C).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
RUN=$ROOT/run
SAMPLE=$ROOT/bench/sample
DEMO_S=${CW_DEMO_SECONDS:-60} # wall-clock length of the replay

DAEMON_PID="" TAIL_PID="" PG_STARTED="" MQ_STARTED=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$TAIL_PID" ]; then kill "$TAIL_PID" 2>/dev/null || true; wait "$TAIL_PID" 2>/dev/null || true; fi
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    echo "run: stopping chargewatchd (pid $DAEMON_PID)"
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
      echo "run: chargewatchd did not exit within 15 s of SIGTERM; killing it" >&2
      kill -KILL "$DAEMON_PID" 2>/dev/null || true
    fi
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  if [ -n "$MQ_STARTED" ]; then cw_mqtt_stop "$RUN/mqtt" || true; fi
  if [ -n "$PG_STARTED" ]; then cw_pg_stop "$RUN/pg" || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "run: interrupted"; exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
sh .ci/deps.sh || echo "run: .ci/deps.sh failed; going on with what is installed" >&2
step "build ($BUILD/)"
make -s BUILD="$BUILD" "$BUILD/chargewatchd" "$BUILD/bench/replay"

# shellcheck source=tests/services.sh
. tests/services.sh
mkdir -p "$RUN"
# A fresh scene each time: old logs, spool, broker session and rows go.
rm -rf "$RUN/spool" "$RUN/alerts.log" "$RUN/deadletter.log"* "$RUN/chargewatchd.log" \
  "$RUN/mqtt/mosquitto.db"
mkdir -p "$RUN/spool"

step "services"
PG_PORT=$(cw_free_port 55432)
cw_pg_start "$RUN/pg" "$PG_PORT"
PG_STARTED=1
PGBIN=$(cw_pg_bindir)
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS chargewatch" -c "CREATE DATABASE chargewatch"
echo "postgresql: pid $CW_PG_PID, $CW_PG_CONN"
MQ_PORT=$(cw_free_port 18830)
cw_mqtt_start "$RUN/mqtt" "$MQ_PORT"
MQ_STARTED=1
echo "mosquitto:  pid $CW_MQTT_PID, $CW_MQTT_URI"
HTTP_PORT=$(cw_free_port 19187)

cw_daemon_conf "$RUN/chargewatch.conf" "$RUN" "$CW_MQTT_URI" chargewatchd-sample "$CW_PG_CONN" "$HTTP_PORT"

http_get() ( # PATH -> the raw HTTP response (status line first); a subshell,
  # so a refused connection is just a failed command
  exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
  timeout 5 cat <&3 || true
)

step "chargewatchd"
: >"$RUN/alerts.log"
"$BUILD/chargewatchd" -f -c "$RUN/chargewatch.conf" >"$RUN/chargewatchd.log" 2>&1 &
DAEMON_PID=$!
echo "chargewatchd: pid $DAEMON_PID, log $RUN/chargewatchd.log, http 127.0.0.1:$HTTP_PORT"
ready=""
for _ in $(seq 1 300); do # up to 30 s
  if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
    echo "run: chargewatchd exited during start-up; its log:" >&2
    tail -30 "$RUN/chargewatchd.log" >&2
    DAEMON_PID=""
    exit 1
  fi
  if http_get /healthz 2>/dev/null | head -1 | grep -q ' 200'; then ready=healthz; break; fi
  if [ "$("${PSQL[@]}" -d chargewatch -tAc "SELECT to_regclass('public.sockets') IS NOT NULL" 2>/dev/null)" = t ]; then
    ready=schema
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { echo "run: chargewatchd not ready after 30 s" >&2; tail -30 "$RUN/chargewatchd.log" >&2; exit 1; }
echo "chargewatchd ready ($ready)"
# The schema may be there before /healthz turns 200 (broker connect): give it a moment.
for _ in $(seq 1 50); do http_get /healthz 2>/dev/null | head -1 | grep -q ' 200' && break; sleep 0.1; done

step "station policies (bench/sample/stations.sql), then SIGHUP"
"${PSQL[@]}" -d chargewatch -f "$SAMPLE/stations.sql"
"${PSQL[@]}" -d chargewatch -c "SELECT s.code AS station, s.overnight_allowed, k.socket, k.forbidden
  FROM stations s LEFT JOIN sockets k ON k.station = s.code AND k.forbidden
  WHERE NOT s.overnight_allowed ORDER BY 1, 3"
kill -HUP "$DAEMON_PID"
sleep 1

step "alerts as they happen ($RUN/alerts.log)"
tail -n +1 -F "$RUN/alerts.log" 2>/dev/null &
TAIL_PID=$!

REC_S=$("$BUILD/bench/replay" -f "$SAMPLE/city.cap" --check | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "s") print $i}')
SPEED=$(awk -v r="$REC_S" -v d="$DEMO_S" 'BEGIN { s = r / d; if (s < 1) s = 1; printf "%.2f", s }')
step "replay: $REC_S s of a 12-station city at ${SPEED}x, timestamps shifted to now"
"$BUILD/bench/replay" -f "$SAMPLE/city.cap" -u "$CW_MQTT_URI" -q 1 -x "$SPEED" \
  --client-prefix cw-sample | tee "$RUN/replay.out"
SENT=$(sed -n 's/.*readings=\([0-9]*\).*/\1/p' "$RUN/replay.out" | tail -1)

# Wait for the last batch: until every reading is stored or the row count
# has not moved for 3 s (bounded: 20 s).
prev=-1 still=0
for _ in $(seq 1 40); do
  n=$("${PSQL[@]}" -d chargewatch -tAc "SELECT count(*) FROM readings" || echo 0)
  [ "$n" -ge "${SENT:-1}" ] && break
  if [ "$n" = "$prev" ]; then still=$((still + 1)); else still=0; fi
  [ "$still" -ge 6 ] && break
  prev=$n
  sleep 0.5
done
sleep 1 # alerts raised by the last readings reach the log
kill "$TAIL_PID" 2>/dev/null || true
wait "$TAIL_PID" 2>/dev/null || true
TAIL_PID=""

step "summary"
STORED=$("${PSQL[@]}" -d chargewatch -tAc "SELECT count(*) FROM readings")
echo "readings sent: ${SENT:-?}   readings stored: $STORED"
echo "alerts by kind and severity (alerts table):"
"${PSQL[@]}" -d chargewatch -c "SELECT kind, severity, count(*) AS alerts,
    string_agg(DISTINCT station || '/' || socket, ' ' ORDER BY station || '/' || socket) AS where_
  FROM alerts GROUP BY 1, 2 ORDER BY 1, 2"
echo "expected by the sample's ground truth (bench/sample/truth.csv):"
while IFS=, read -r kind sev st so _start _end desc; do
  [ "$kind" = kind ] && continue
  got=$("${PSQL[@]}" -d chargewatch -tAc "SELECT string_agg(DISTINCT severity, ',') FROM alerts
        WHERE kind = '$kind' AND station = '$st' AND socket = $so")
  if [ -n "$got" ]; then mark="found ($got)"; else mark="NOT raised"; fi
  [ "$kind" = offline ] && [ -z "$got" ] && mark="not raised (expected: offline runs on receive time, the demo is too short)"
  printf '  %-19s %-8s %s/%-3s %s  - %s\n' "$kind" "$sev" "$st" "$so" "$mark" "${desc//\"/}"
done <"$SAMPLE/truth.csv"
METRICS=$(http_get /metrics 2>/dev/null || true)
REJ=$(printf '%s\n' "$METRICS" | grep -E '^[a-z_]*reject[a-z_]*(\{[^}]*\})? [0-9]' | awk '$2 > 0' || true)
DL=0
[ -f "$RUN/deadletter.log" ] && DL=$(wc -l <"$RUN/deadletter.log")
echo "rejects: $DL dead-letter lines"
[ -n "$REJ" ] && printf '%s\n' "$REJ" | sed 's/^/  /'
cat <<EOF
logs:
  alerts      $RUN/alerts.log
  dead letter $RUN/deadletter.log
  daemon      $RUN/chargewatchd.log
  config      $RUN/chargewatch.conf
  database    $RUN/pg/server.log, broker $RUN/mqtt/mosquitto.log
EOF
