#!/usr/bin/env bash
# test_blind.sh - the daemon knows when it is blind. Three stations report
# every 2 s (offline_min_s 15); mosquitto is stopped for 25 s (longer than
# offline_min_s) and started again. Expected: no offline alert for any
# station, one daemon-level `ingest` alert (station _daemon) raised and
# closed when the daemon sees again; then a station that really falls silent
# still gets its offline alert.
. "$(dirname "$0")/lib.sh"
IT_EXTRA_CONF='[detectors]
offline_min_s = 15
hold_s = 5
ingest_alert_s = 5'
it_setup

STATIONS="BL1 BL2 BL3"
# voltage and temperature only: a socket that meters no power keeps the plain
# offline threshold (offline_min_s), not the report-on-change allowance
pub_loop() { # STATION STOPFILE
  while [ ! -e "$2" ]; do
    it_pub "cw/$1/1/telemetry" "{\"ts\":$(it_now_ms),\"v\":230.0,\"t\":25.0}" 2>/dev/null
    sleep 2
  done
}
for s in $STATIONS; do
  pub_loop "$s" "$IT_DIR/stop.$s" &
  IT_BG_PIDS="$IT_BG_PIDS $!"
done
rows_ge() { [ "$(it_rows "$1")" -ge "$2" ] 2>/dev/null; }
it_wait 30 rows_ge BL3 5 && it_ok "stations reporting" ||
  it_fail "stations reporting" ">= 5 rows" "$(it_rows BL3)"

offline_raised() {
  it_sql "SELECT count(*) FROM alerts WHERE kind='offline' AND station LIKE 'BL%'"
}

cw_mqtt_stop "$IT_DIR/mqtt"
t0=$(it_now_ms)
sleep 25
cw_mqtt_start "$IT_DIR/mqtt" "$CW_MQTT_PORT" || it_fail "mosquitto restarted" running failed
# the second "sighted" line: the first one is the start-up connect
sighted_twice() { [ "$(grep -c "ingest: sighted after" "$IT_DIR/daemon.log")" -ge 2 ]; }
it_wait 60 sighted_twice &&
  it_ok "daemon sighted again after the broker restart" ||
  it_fail "daemon sighted again" "an 'ingest: sighted after' log line" "none"
t1=$(it_now_ms)
# past offline_min_s after the resume: a false alert would have come by now
sleep 20
it_eq "no offline alert for any station across a 25 s broker outage" 0 "$(offline_raised)"
it_eq "one daemon-level ingest alert raised" 1 "$(it_events _daemon 0 ingest raised)"
it_eq "and closed once sighted" 1 "$(it_events _daemon 0 ingest closed)"
it_eq "ingest alert in the alert log" 1 \
  "$(grep -c 'ingest.*raised' "$IT_DIR/alerts.log")"
it_note "figures: broker down $((t1 - t0)) ms incl. reconnect; $(grep -o 'sighted after [0-9.]* s blind' "$IT_DIR/daemon.log" | tail -1)"

# A real silence during normal operation still alerts.
touch "$IT_DIR/stop.BL2"
got=$(it_wait_eq 60 1 it_events BL2 0 offline raised)
it_eq "a station silenced afterwards gets its offline alert" 1 "$got"
it_eq "and only that one" 1 "$(offline_raised)"
