#!/usr/bin/env bash
# test_shared_db.sh - two daemons outside cluster mode on one database, with
# disjoint stations (docs/RELIABILITY.md): A reads cw/{station}/..., B reads
# b/{station}/... (own client id, spool, alert log, HTTP port). Each raises
# an alert on its own station; after a restart of each, each restores only
# its own alerts (alerts.raised_by, schema/006_alert_owner.sql), so an
# operator's ack over MQTT (which both hear) and a close from SQL (which both
# hear) are recorded once: one row per alert, no doubled event.
. "$(dirname "$0")/lib.sh"
it_setup

B_DIR=$IT_DIR/b
mkdir -p "$B_DIR"
B_HTTP=$(cw_free_port $((IT_HTTP_PORT + 1)))
sed -e "s|^client_id = .*|client_id = cw-it-shared-b\ntopic = b/{station}/{socket}/telemetry\nstation_topic = b/{station}/telemetry|" \
  -e "s|^dir = .*|dir = $B_DIR/spool|" -e "s|^log = $IT_DIR/alerts.log|log = $B_DIR/alerts.log|" \
  -e "s|^deadletter = .*|deadletter = $B_DIR/deadletter.log|" -e "s|^listen = .*|listen = 127.0.0.1:$B_HTTP|" \
  "$IT_DIR/chargewatch.conf" >"$B_DIR/chargewatch.conf"
B_PID=""
b_start() {
  "$CW_DAEMON" -f -c "$B_DIR/chargewatch.conf" >>"$B_DIR/daemon.log" 2>&1 &
  B_PID=$!
}
b_stop() {
  [ -n "$B_PID" ] || return 0
  kill -TERM "$B_PID" 2>/dev/null
  wait "$B_PID" 2>/dev/null
  B_RC=$?
  B_PID=""
}
B_PROBES=0
b_ready() { # a new probe of B's own stored
  it_pub b/PROBEB/1/telemetry "{\"ts\":$(it_now_ms),\"v\":230.0}"
  [ "$(it_rows PROBEB)" -gt "$B_PROBES" ] 2>/dev/null
}
trap 'b_stop; it_teardown' EXIT
b_start
it_eq "daemon B ready" 0 "$(it_wait 30 b_ready; echo $?)"

hot() { # TOPIC-PREFIX STATION
  local now
  now=$(it_now_ms)
  it_pub "$1/$2/1/telemetry" "$(it_reading $((now - 2000)) 300 30.0)"
  it_pub "$1/$2/1/telemetry" "$(it_reading $((now - 1000)) 300 95.0)"
}
hot cw TA1
hot b TB1
alert_of() { it_sql "SELECT id FROM alerts WHERE station='$1' AND kind='thermal_runaway'"; }
it_eq "A's alert, raised by A" "open cw-it-shared_db" \
  "$(it_wait_eq 15 "open cw-it-shared_db" it_sql "SELECT state || ' ' || raised_by FROM alerts WHERE station='TA1'")"
it_eq "B's alert, raised by B" "open cw-it-shared-b" \
  "$(it_wait_eq 15 "open cw-it-shared-b" it_sql "SELECT state || ' ' || raised_by FROM alerts WHERE station='TB1'")"
ta=$(alert_of TA1)
tb=$(alert_of TB1)

# Restart both: each takes back only its own alert.
b_stop
it_eq "B stops cleanly" 0 "$B_RC"
B_PROBES=$(it_rows PROBEB)
b_start
it_eq "B ready again" 0 "$(it_wait 30 b_ready; echo $?)"
it_daemon_stop
it_daemon_start
it_wait_ready || exit 1
# (lib.sh's probe of A was stored before the restart: wait for the line)
it_eq "A restored only its own alert" 0 \
  "$(it_wait 20 grep -q 'writer: restored 1 alerts not closed' "$IT_DIR/daemon.log"; echo $?)"
it_eq "B restored only its own alert" 0 \
  "$(it_wait 20 grep -q 'writer: restored 1 alerts not closed' "$B_DIR/daemon.log"; echo $?)"
it_eq "neither restored more" 0 "$(cat "$IT_DIR/daemon.log" "$B_DIR/daemon.log" | grep -c 'restored [2-9]')"
sleep 1 # both subscribed again (persistent sessions keep what arrives meanwhile)

# An ack over MQTT reaches both daemons; only A holds TA1.
it_pub cw/ops/cmd "{\"id\":$ta,\"action\":\"ack\",\"by\":\"it-op\"}"
it_eq "ack applied by A" acknowledged "$(it_wait_eq 15 acknowledged it_sql "SELECT state FROM alerts WHERE id=$ta")"
it_eq "B says it does not hold A's alert" 0 \
  "$(it_wait 10 grep -q "ack of alert $ta by it-op (from cw/ops/cmd) rejected: is not held by this daemon" "$B_DIR/daemon.log"; echo $?)"
# A close from SQL is heard by both (NOTIFY); only B holds TB1.
it_eq "close from SQL" t "$(it_sql "SELECT cw_close($tb, 'it-op')")"
it_eq "B applied the close" 0 \
  "$(it_wait 10 grep -q "operator close of alert $tb by postgres (from cw_alert_cmd)" "$B_DIR/daemon.log"; echo $?)"
it_eq "A: not applied here (info)" 0 \
  "$(it_wait 10 grep -q "info: control: close of alert $tb by postgres (from cw_alert_cmd) not applied here" "$IT_DIR/daemon.log"; echo $?)"
sleep 2

it_eq "one alert row per station and kind" "" \
  "$(it_sql "SELECT station || '/' || kind || ' x' || count(*) FROM alerts GROUP BY station, socket, kind HAVING count(*) > 1")"
it_eq "no doubled event" "" \
  "$(it_sql "SELECT alert_id || ' ' || event || ' x' || count(*) FROM alert_events GROUP BY alert_id, event HAVING count(*) > 1")"
it_eq "TA1: raised, acknowledged (once each)" "acknowledged raised" \
  "$(it_sql "SELECT string_agg(event, ' ' ORDER BY event) FROM alert_events WHERE alert_id=$ta")"
it_eq "TB1: raised, closed (once each)" "closed raised" \
  "$(it_sql "SELECT string_agg(event, ' ' ORDER BY event) FROM alert_events WHERE alert_id=$tb")"
b_stop
it_eq "B exits 0 on SIGTERM" 0 "$B_RC"
