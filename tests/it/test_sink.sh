#!/usr/bin/env bash
# test_sink.sh - the MQTT alert sink is as durable as the database. Two
# thermal alerts are raised and published (retained, open). The broker is
# stopped; one alert is closed and the other acknowledged from SQL
# (cw_close/cw_ack), which the daemon stores while its publishes wait in the
# outbox; the daemon also raises its own `ingest` alert while blind. Then the
# daemon is killed (SIGKILL: stored in the database, never acknowledged by
# the broker). Broker back, daemon started again: the retained messages under
# cw/alerts/# must equal the database: each alert not closed with its id and
# state, nothing for the closed one. Run twice: with the publisher's outbox
# (spool/mqtt-out) kept, and with it deleted, when the reconciliation at
# start alone must repair the broker's stale retained messages.
. "$(dirname "$0")/lib.sh"
IT_EXTRA_CONF='[detectors]
ingest_alert_s = 3'
it_setup

run_case() { # STATION WIPE
local st=$1 wipe=$2 id1 id2
it_note "case $st: outbox $([ "$wipe" = 1 ] && echo deleted || echo kept) after SIGKILL"
it_pub "cw/$st/1/telemetry" "$(it_reading "$(it_now_ms)" 200 97.0)"
it_pub "cw/$st/2/telemetry" "$(it_reading "$(it_now_ms)" 200 97.0)"
alert_id() { it_sql "SELECT id FROM alerts WHERE station='$st' AND socket=$1 AND kind='thermal_runaway'"; }
it_wait 20 test -n "$(alert_id 2)"
id1=$(alert_id 1)
id2=$(alert_id 2)
retained() { # FILTER: "topic id state" per retained message, sorted
  mosquitto_sub -h 127.0.0.1 -p "$CW_MQTT_PORT" -t "$1" --retained-only -W 2 -F '%t %p' 2>/dev/null |
    sed -n 's/^\([^ ]*\) .*"id":\([0-9]*\),.*"state":"\([a-z]*\)".*/\1 \2 \3/p' | sort
}
has_two() { [ "$(retained "cw/alerts/$st/#" | wc -l)" = 2 ]; }
it_wait 20 has_two && it_ok "two alerts retained on the broker" ||
  it_fail "two alerts retained on the broker" 2 "$(retained "cw/alerts/$st/#" | wc -l)"

cw_mqtt_stop "$IT_DIR/mqtt"
it_eq "cw_close during the outage" t "$(it_sql "SELECT cw_close($id1, 'op1')")"
it_eq "cw_ack during the outage" t "$(it_sql "SELECT cw_ack($id2, 'op2')")"
stored() { [ "$(it_sql "SELECT count(*) FROM alert_events WHERE (alert_id=$id1 AND event='closed')
  OR (alert_id=$id2 AND event='acknowledged')")" = 2 ]; }
it_wait 20 stored && it_ok "both events stored by the daemon" || it_fail "both events stored" 2 "fewer"
daemon_open() { [ "$(it_sql "SELECT count(*) FROM alerts WHERE kind='ingest' AND state='open'")" -ge 1 ]; }
it_wait 20 daemon_open && it_ok "ingest alert stored while the broker is down" ||
  it_fail "ingest alert stored while the broker is down" open none
kill -KILL "$IT_DAEMON_PID"
wait "$IT_DAEMON_PID" 2>/dev/null
IT_DAEMON_PID=""
it_note "outbox after SIGKILL: $(find "$IT_DIR/spool/mqtt-out" -type f 2>/dev/null | wc -l) files"
[ "$wipe" = 1 ] && rm -rf "$IT_DIR/spool/mqtt-out"
n0=$(grep -c "retained alerts reconciled" "$IT_DIR/daemon.log")

cw_mqtt_start "$IT_DIR/mqtt" "$CW_MQTT_PORT" || it_fail "mosquitto restarted" running failed
it_daemon_start
it_wait_ready || exit 1
reconciled() { [ "$(grep -c "retained alerts reconciled" "$IT_DIR/daemon.log")" -gt "$n0" ]; }
it_wait 30 reconciled &&
  it_ok "reconciliation ran" || it_fail "reconciliation ran" "a log line" "none"
grep "retained alerts reconciled" "$IT_DIR/daemon.log" | tail -1 | sed 's/^/# /'
want=$(it_sql "SELECT 'cw/alerts/' || station || '/' || socket || '/' || kind || ' ' || id || ' ' || state
               FROM alerts WHERE state <> 'closed'" | sort)
got=$(retained 'cw/alerts/#')
it_eq "retained state equals the database (topic id state)" "$want" "$got"
it_eq "nothing retained for the alert closed during the outage" "" \
  "$(retained "cw/alerts/$st/1/thermal_runaway")"
it_eq "the acknowledged one shows acknowledged" "cw/alerts/$st/2/thermal_runaway $id2 acknowledged" \
  "$(retained "cw/alerts/$st/2/thermal_runaway")"
}
run_case SK1 0
run_case SK2 1
