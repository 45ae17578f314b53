# lib.sh - shared part of the integration tests: each tests/it/test_*.sh
# sources it, gets its own mosquitto + PostgreSQL on free loopback ports and a
# running chargewatchd, and reports every check as "ok  <test>: <check>" or
# "FAIL <test>: <check> (expected X got Y)". Everything a test starts is
# stopped by PID when it exits. Requires bash (uses /dev/tcp for HTTP).
# Environment: CW_DAEMON (binary, default build/chargewatchd), CW_IT_LABEL
# (prefix for result lines and the work dir, e.g. "asan"), CW_IT_SAN=1 (also
# check the daemon log for sanitizer reports).

IT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../services.sh
. "$IT_ROOT/tests/services.sh"

IT_NAME=$(basename "$0" .sh)
IT_NAME=${IT_NAME#test_}
IT_LABEL=${CW_IT_LABEL:+$CW_IT_LABEL }
IT_DIR=$IT_ROOT/build/it/${CW_IT_LABEL:+$CW_IT_LABEL-}$IT_NAME
CW_DAEMON=${CW_DAEMON:-$IT_ROOT/build/chargewatchd}
case $CW_DAEMON in /*) ;; *) CW_DAEMON=$IT_ROOT/$CW_DAEMON ;; esac
IT_FAILS=0
IT_PASSES=0
IT_BG_PIDS=""
IT_DAEMON_PID=""
IT_PG_DIR=""
IT_PG_TMP=""
IT_SHUTDOWN_S=10 # [pipeline] shutdown_timeout_s written to the config
IT_PSQL=$(cw_pg_bindir)/psql
[ -x "$IT_PSQL" ] || IT_PSQL=psql
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID # sd_notify must be a no-op here

# ------------------------------------------------------------- reporting
it_ok() {
  IT_PASSES=$((IT_PASSES + 1))
  echo "ok  ${IT_LABEL}$IT_NAME: $1"
}
it_fail() { # CHECK EXPECTED GOT
  IT_FAILS=$((IT_FAILS + 1))
  echo "FAIL ${IT_LABEL}$IT_NAME: $1 (expected $2 got ${3:-<nothing>})"
}
it_eq() { # CHECK EXPECTED GOT
  if [ "$2" = "$3" ]; then it_ok "$1"; else it_fail "$1" "$2" "$3"; fi
}
it_ge() { # CHECK MIN GOT (integers)
  if [ -n "$3" ] && [ "$3" -ge "$2" ] 2>/dev/null; then it_ok "$1"; else it_fail "$1" ">= $2" "$3"; fi
}
it_note() { echo "# ${IT_LABEL}$IT_NAME: $*"; }

# ------------------------------------------------------------- helpers
it_now_ms() { date +%s%3N; }

# it_wait_eq TIMEOUT_S EXPECTED CMD... : poll CMD (every 0.2 s) until its
# output equals EXPECTED; prints the last output. Returns 0 on match.
it_wait_eq() {
  local limit=$1 want=$2 got="" end
  shift 2
  end=$(($(date +%s%N) / 1000000 + limit * 1000))
  while :; do
    got=$("$@" 2>/dev/null)
    [ "$got" = "$want" ] && { echo "$got"; return 0; }
    [ "$(($(date +%s%N) / 1000000))" -ge "$end" ] && { echo "$got"; return 1; }
    sleep 0.2
  done
}
# it_wait TIMEOUT_S CMD... : poll CMD until it succeeds. Returns 0 or 1.
it_wait() {
  local limit=$1 end
  shift
  end=$(($(date +%s%N) / 1000000 + limit * 1000))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(($(date +%s%N) / 1000000))" -ge "$end" ] && return 1
    sleep 0.2
  done
}

# SQL against the test database; one value per line, fields separated by |.
it_sql() {
  "$IT_PSQL" -X -q -h 127.0.0.1 -p "$CW_PG_PORT" -U postgres -d chargewatch -tAc "$1" 2>>"$IT_DIR/psql.err"
}

# MQTT. Every publish is QoS 1 and waits for the PUBACK before returning.
it_pub() { # TOPIC PAYLOAD
  mosquitto_pub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -t "$1" -m "$2"
}
it_pub_file() { # TOPIC FILE : the whole file is one message
  mosquitto_pub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -t "$1" -f "$2"
}
it_pub_empty() { # TOPIC : zero-length payload
  mosquitto_pub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -t "$1" -n
}
it_pub_lines() { # TOPIC FILE : one message per line of FILE
  mosquitto_pub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -t "$1" -l <"$2"
}
# Background subscriber; lines "RETAIN TOPIC PAYLOAD" into FILE. Remembers the
# PID for the teardown; waits until the subscription is acknowledged.
it_sub_bg() { # FILTER FILE
  mosquitto_sub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -t "$1" -F '%r %t %p' >"$2" 2>>"$IT_DIR/sub.err" &
  IT_BG_PIDS="$IT_BG_PIDS $!"
  # A probe subscriber with -E returns once its own SUBACK arrives: by then
  # the broker has long processed the earlier connection's SUBSCRIBE.
  mosquitto_sub -h 127.0.0.1 -p "$CW_MQTT_PORT" -t "$1" -E >/dev/null 2>&1
  sleep 0.3
}
# One-shot subscriber: prints up to COUNT lines "RETAIN TOPIC PAYLOAD" that
# arrive within TIMEOUT_S.
it_sub_once() { # FILTER COUNT TIMEOUT_S
  mosquitto_sub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -t "$1" -C "$2" -W "$3" -F '%r %t %p' 2>/dev/null
}

# Value of a JSON field in a flat object (string or number), from stdin.
it_json() { # KEY
  sed -nE "s/.*\"$1\"[[:space:]]*:[[:space:]]*(\"([^\"]*)\"|([^,}[:space:]]*)).*/\2\3/p" | head -1
}

# HTTP GET over bash's /dev/tcp (curl is not on a fresh Debian). Sets
# IT_HTTP_STATUS; prints the body. Returns 1 when nothing answered.
it_http() { # PATH
  local line len=-1 body=""
  IT_HTTP_STATUS=0
  { exec 3<>"/dev/tcp/127.0.0.1/$IT_HTTP_PORT"; } 2>/dev/null || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&3
  if IFS= read -r -t 5 line <&3; then
    line=${line%$'\r'}
    IT_HTTP_STATUS=$(echo "$line" | awk '{print $2}')
    while IFS= read -r -t 5 line <&3; do
      line=${line%$'\r'}
      [ -z "$line" ] && break
      case ${line,,} in content-length:*) len=${line#*:} && len=${len// /} ;; esac
    done
    if [ "$len" -ge 0 ] 2>/dev/null; then
      [ "$len" -gt 0 ] && IFS= read -r -d '' -N "$len" -t 5 body <&3
    else
      body=$(timeout 5 cat <&3)
    fi
  fi
  exec 3<&-
  printf '%s\n' "$body"
}
# Value of the first /metrics sample line containing PATTERN (e.g.
# 'reason="duplicate"'), as an integer; empty when absent.
it_metric() { # PATTERN
  it_http /metrics | grep -v '^#' | grep -F -- "$1" | head -1 | awk '{printf "%.0f\n", $NF}'
}

# ------------------------------------------------------------- services
# IT_EXTRA_CONF (INI text) is appended; a section may appear twice (inih
# reads keys section by section), so [pipeline] or [detectors] keys can be
# added there without editing the generated file.
it_write_config() {
  cat >"$IT_DIR/chargewatch.conf" <<CONF
# written by tests/it/lib.sh for test $IT_NAME
[mqtt]
uri = tcp://127.0.0.1:$CW_MQTT_PORT
client_id = cw-it-$IT_NAME

[postgres]
conninfo = host=127.0.0.1 port=$CW_PG_PORT user=postgres dbname=chargewatch
batch_rows = 2000
batch_ms = 100

[pipeline]
deadletter = $IT_DIR/deadletter.log
shutdown_timeout_s = $IT_SHUTDOWN_S

[spool]
dir = $IT_DIR/spool

[alerts]
log = $IT_DIR/alerts.log
topic_prefix = cw/alerts

[http]
listen = 127.0.0.1:$IT_HTTP_PORT

[log]
level = info
CONF
  [ -n "${IT_EXTRA_CONF:-}" ] && printf "\n%s\n" "$IT_EXTRA_CONF" >>"$IT_DIR/chargewatch.conf"
  return 0
}

it_start_services() {
  local pgport mqport
  rm -rf "$IT_DIR"
  mkdir -p "$IT_DIR"
  # PostgreSQL runs as user postgres when we are root: it must be able to
  # reach its directory, which a checkout under /root does not allow.
  IT_PG_DIR=$IT_DIR/pg
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$IT_DIR"; then
    IT_PG_TMP=$(mktemp -d /tmp/cw-it-pg.XXXXXX)
    chmod 755 "$IT_PG_TMP"
    IT_PG_DIR=$IT_PG_TMP/pg
  fi
  pgport=$(cw_free_port $((25432 + RANDOM % 2000)))
  cw_pg_start "$IT_PG_DIR" "$pgport" || { it_fail "postgres started" "running" "start failure"; exit 1; }
  mqport=$(cw_free_port $((21883 + RANDOM % 2000)))
  cw_mqtt_start "$IT_DIR/mqtt" "$mqport" || { it_fail "mosquitto started" "running" "start failure"; exit 1; }
  IT_HTTP_PORT=$(cw_free_port $((29187 + RANDOM % 2000)))
}

it_daemon_start() {
  [ -x "$CW_DAEMON" ] || { it_fail "daemon binary" "$CW_DAEMON" "missing"; exit 1; }
  echo "=== start $(date -u +%T.%N)" >>"$IT_DIR/daemon.log"
  "$CW_DAEMON" -f -c "$IT_DIR/chargewatch.conf" >>"$IT_DIR/daemon.log" 2>&1 &
  IT_DAEMON_PID=$!
}

# SIGTERM the daemon and wait for it. Sets IT_EXIT_RC and IT_EXIT_MS (time
# from the signal to the exit). After IT_SHUTDOWN_S + 5 s it is killed
# (IT_EXIT_RC = "killed").
it_daemon_stop() {
  local t0 i
  IT_EXIT_RC=""
  IT_EXIT_MS=""
  [ -n "$IT_DAEMON_PID" ] || return 0
  t0=$(it_now_ms)
  kill -TERM "$IT_DAEMON_PID" 2>/dev/null
  for i in $(seq 1 $(((IT_SHUTDOWN_S + 5) * 20))); do
    kill -0 "$IT_DAEMON_PID" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$IT_DAEMON_PID" 2>/dev/null; then
    kill -KILL "$IT_DAEMON_PID" 2>/dev/null
    wait "$IT_DAEMON_PID" 2>/dev/null
    IT_EXIT_RC=killed
  else
    wait "$IT_DAEMON_PID" 2>/dev/null
    IT_EXIT_RC=$?
  fi
  IT_EXIT_MS=$(($(it_now_ms) - t0))
  IT_DAEMON_PID=""
}

it_daemon_alive() { [ -n "$IT_DAEMON_PID" ] && kill -0 "$IT_DAEMON_PID" 2>/dev/null; }

# Ready = a probe reading went all the way to the readings table. The probe
# station PROBE is excluded from every count the tests make. /healthz may say
# 200 a moment before the subscription is in place, so it is not enough.
it_wait_ready() {
  local i n
  for i in $(seq 1 60); do
    if ! it_daemon_alive; then
      wait "$IT_DAEMON_PID" 2>/dev/null
      it_fail "daemon running" "alive" "exited with status $?"
      IT_DAEMON_PID=""
      tail -20 "$IT_DIR/daemon.log" | sed 's/^/#   /'
      return 1
    fi
    it_pub "cw/PROBE/1/telemetry" "{\"ts\":$(it_now_ms),\"v\":230.0}" 2>/dev/null
    n=$(it_sql "SELECT count(*) FROM readings WHERE station='PROBE'")
    [ -n "$n" ] && [ "$n" -gt 0 ] 2>/dev/null && return 0
    sleep 0.5
  done
  it_fail "daemon ready (probe reading stored within 30 s)" "stored" "not stored"
  tail -20 "$IT_DIR/daemon.log" | sed 's/^/#   /'
  return 1
}

# Full setup: services, config (plus IT_EXTRA_CONF), daemon, readiness.
# Exits the test when the daemon does not become ready.
it_setup() {
  trap it_teardown EXIT
  trap 'exit 130' INT TERM
  it_start_services
  it_write_config
  it_daemon_start
  it_wait_ready || exit 1
}

it_teardown() {
  local p rc=$?
  for p in $IT_BG_PIDS; do kill "$p" 2>/dev/null; done
  for p in $IT_BG_PIDS; do wait "$p" 2>/dev/null; done
  if [ -n "$IT_DAEMON_PID" ] && ! it_daemon_alive; then
    wait "$IT_DAEMON_PID" 2>/dev/null
    it_fail "daemon still running at the end" "running" "exited with status $?"
  elif [ -n "$IT_DAEMON_PID" ]; then
    it_daemon_stop
    it_eq "daemon exits 0 on SIGTERM at the end" 0 "$IT_EXIT_RC"
  fi
  if [ "${CW_IT_SAN:-0}" = 1 ] && [ -f "$IT_DIR/daemon.log" ]; then
    it_eq "no sanitizer report in the daemon log" 0 \
      "$(grep -cE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$IT_DIR/daemon.log")"
  fi
  cw_mqtt_stop "$IT_DIR/mqtt" 2>/dev/null
  [ -n "$IT_PG_DIR" ] && cw_pg_stop "$IT_PG_DIR" 2>/dev/null
  [ -n "$IT_PG_TMP" ] && rm -rf "$IT_PG_TMP"
  if [ "$IT_FAILS" -gt 0 ] && [ -f "$IT_DIR/daemon.log" ]; then
    echo "# ${IT_LABEL}$IT_NAME: last lines of $IT_DIR/daemon.log:"
    tail -15 "$IT_DIR/daemon.log" | sed 's/^/#   /'
  fi
  echo "# ${IT_LABEL}$IT_NAME: $IT_PASSES passed, $IT_FAILS failed"
  [ "$IT_FAILS" -gt 0 ] && exit 1
  exit "$rc"
}

# ------------------------------------------------------------- readings
# One reading as JSON: TS W [T]. v/a are derived so that they stay in range.
it_reading() {
  printf '{"ts":%s,"v":230.0,"a":%s,"w":%s,"t":%s,"smoke":0,"state":"charging"}' \
    "$1" "$(awk -v w="$2" 'BEGIN{printf "%.3f", w/230.0}')" "$2" "${3:-25.0}"
}
# Rows stored for a station (exact) and socket (optional).
it_rows() { # STATION [SOCKET]
  it_sql "SELECT count(*) FROM readings WHERE station='$1'${2:+ AND socket=$2}"
}
# Alert events stored for station/socket/kind/event.
it_events() { # STATION SOCKET KIND EVENT
  it_sql "SELECT count(*) FROM alert_events e JOIN alerts a ON a.id=e.alert_id
          WHERE a.station='$1' AND a.socket=$2 AND a.kind='$3' AND e.event='$4'"
}
