#!/usr/bin/env bash
# test_alerts.sh - each alert kind reaches all three sinks: the alert log, MQTT
# (cw/alerts/{station}/{socket}/{kind}, retained) and the alerts/alert_events
# tables, with the kind, severity, station and socket the readings call for
# (docs/DETECTORS.md). One station per kind so that counts are exact.
#   thermal_runaway: t >= 90 C -> critical          (THR1/1)
#   overload:        w > rated_w 1000 for >= 10 s  -> critical (OVL1/1)
#   overnight:       charging at a forbidden socket -> warning  (FRB1/2)
#   offline:         socket silent > offline_min_s  -> warning  (OFF1/1, OFF1/2 alive)
. "$(dirname "$0")/lib.sh"
OFFLINE_MIN_S=10
IT_EXTRA_CONF="[detectors]
offline_min_s = $OFFLINE_MIN_S"
it_setup

SUB=$IT_DIR/alerts.mqtt
it_sub_bg 'cw/alerts/#' "$SUB"
now=$(it_now_ms)

# thermal_runaway: two normal readings, then 95 C
it_pub cw/THR1/1/telemetry "$(it_reading $((now - 3000)) 300 30.0)"
it_pub cw/THR1/1/telemetry "$(it_reading $((now - 2000)) 300 31.0)"
it_pub cw/THR1/1/telemetry "$(it_reading $((now - 1000)) 300 95.0)"

# overload: 1500 W on a 1000 W socket for 20 s of event time
for i in $(seq 20 -1 0); do
  echo "{\"ts\":$((now - i * 1000)),\"v\":230.0,\"a\":6.5,\"w\":1500,\"state\":\"charging\"}"
done >"$IT_DIR/ovl.lines"
it_pub_lines cw/OVL1/1/telemetry "$IT_DIR/ovl.lines"

# overnight_charging at a forbidden socket: policy in the database, SIGHUP
it_sql "INSERT INTO stations (code) VALUES ('FRB1') ON CONFLICT (code) DO NOTHING;
        INSERT INTO sockets (station, socket, forbidden) VALUES ('FRB1', 2, true)
        ON CONFLICT (station, socket) DO UPDATE SET forbidden = true" >/dev/null
kill -HUP "$IT_DAEMON_PID"
sleep 1
frb_raised() { [ "$(it_events FRB1 2 overnight_charging raised)" = 1 ]; }
for i in $(seq 1 20); do
  it_pub cw/FRB1/2/telemetry "$(it_reading "$(it_now_ms)" 200)"
  frb_raised && break
  sleep 1
done

# offline: both sockets report for 4 s, then only socket 2 goes on
for i in 1 2 3 4; do
  t=$(it_now_ms)
  it_pub cw/OFF1/1/telemetry "$(it_reading "$t" 100)"
  it_pub cw/OFF1/2/telemetry "$(it_reading "$t" 100)"
  sleep 1
done
off_raised() { [ "$(it_events OFF1 1 offline raised)" -ge 1 ]; }
for i in $(seq 1 $((OFFLINE_MIN_S * 4))); do
  it_pub cw/OFF1/2/telemetry "$(it_reading "$(it_now_ms)" 100)"
  off_raised && break
  sleep 1
done
sleep 1 # let the log and MQTT sinks catch up with the table

# check_kind STATION SOCKET KIND SEVERITY
check_kind() {
  local st=$1 so=$2 kind=$3 sev=$4 line id
  # table
  it_eq "$kind: raised event in alert_events" 1 "$(it_events "$st" "$so" "$kind" raised)"
  it_eq "$kind: one alert row, severity $sev" "1 $sev" \
    "$(it_sql "SELECT count(*) || ' ' || coalesce(max(severity), '-') FROM alerts
               WHERE station='$st' AND socket=$so AND kind='$kind'")"
  id=$(it_sql "SELECT max(id) FROM alerts WHERE station='$st' AND socket=$so AND kind='$kind'")
  # MQTT (live delivery: retain flag 0)
  line=$(grep -E "^0 cw/alerts/$st/$so/$kind " "$SUB" | grep -E '"event"[[:space:]]*:[[:space:]]*"raised"' | head -1)
  it_eq "$kind: raised event on MQTT cw/alerts/$st/$so/$kind" 1 \
    "$(grep -E "^0 cw/alerts/$st/$so/$kind " "$SUB" | grep -cE '"event"[[:space:]]*:[[:space:]]*"raised"')"
  it_eq "$kind: MQTT JSON kind/severity/station/socket/state" "$kind $sev $st $so open" \
    "$(for k in kind severity station socket state; do echo "$line" | it_json $k; done | xargs)"
  it_eq "$kind: MQTT id = alerts.id" "${id:-none}" "$(echo "$line" | it_json id)"
  # alert log: one line for the raised event
  it_eq "$kind: raised line in the alert log" 1 \
    "$(grep -w "$st" "$IT_DIR/alerts.log" 2>/dev/null | grep -w "$kind" | grep -E "socket[=:\" ]+$so([^0-9]|\$)" | grep -ciw raised)"
  it_eq "$kind: alert log line names the severity" 1 \
    "$(grep -w "$st" "$IT_DIR/alerts.log" 2>/dev/null | grep -w "$kind" | grep -E "socket[=:\" ]+$so([^0-9]|\$)" | grep -iw raised | grep -ciw "$sev")"
}
check_kind THR1 1 thermal_runaway critical
check_kind OVL1 1 overload critical
check_kind FRB1 2 overnight_charging warning
check_kind OFF1 1 offline warning
it_eq "offline: no alert for the socket that kept reporting" 0 \
  "$(it_sql "SELECT count(*) FROM alerts WHERE station='OFF1' AND socket=2")"
it_eq "only the provoked alerts (offline of silent stations aside)" 4 \
  "$(it_sql "SELECT count(*) FROM alerts WHERE (station IN ('THR1','OVL1','FRB1','OFF1') AND kind <> 'offline')
             OR (station='OFF1' AND socket=1 AND kind='offline')")"

# A subscriber connecting now still sees the open alert (retained).
late=$(it_sub_once cw/alerts/THR1/1/thermal_runaway 1 5)
it_eq "late subscriber gets the retained thermal alert (retain flag, kind)" "1 thermal_runaway" \
  "$(echo "$late" | awk '{print $1}') $(echo "$late" | it_json kind)"
late=$(it_sub_once cw/alerts/OVL1/1/overload 1 5)
it_eq "late subscriber gets the retained overload alert" "1 overload" \
  "$(echo "$late" | awk '{print $1}') $(echo "$late" | it_json kind)"

# Operator actions (docs/DETECTORS.md, alert lifecycle): acknowledge THR1/1 over
# MQTT, close OVL1/1 from SQL (cw_close -> NOTIFY -> daemon). Each event goes
# to the three sinks; closing also clears the retained copy.
thr_id=$(it_sql "SELECT id FROM alerts WHERE station='THR1' AND socket=1 AND kind='thermal_runaway'")
ovl_id=$(it_sql "SELECT id FROM alerts WHERE station='OVL1' AND socket=1 AND kind='overload'")
it_pub cw/ops/cmd "{\"id\":${thr_id:-0},\"action\":\"ack\",\"by\":\"it-op\"}"
it_eq "ack over MQTT: acknowledged event stored" 1 \
  "$(it_wait_eq 15 1 it_events THR1 1 thermal_runaway acknowledged)"
it_eq "ack over MQTT: alert state and acked_by" "acknowledged it-op" \
  "$(it_wait_eq 10 "acknowledged it-op" it_sql "SELECT state || ' ' || coalesce(acked_by, '-') FROM alerts WHERE id=${thr_id:-0}")"
it_eq "close from SQL: cw_close returns true" t "$(it_sql "SELECT cw_close(${ovl_id:-0}, 'it-op')")"
it_eq "close from SQL: closed event stored" 1 "$(it_wait_eq 15 1 it_events OVL1 1 overload closed)"
sleep 1
it_eq "operator events on MQTT (acknowledged THR1, closed OVL1)" "1 1" \
  "$(grep -E '^0 cw/alerts/THR1/1/thermal_runaway ' "$SUB" | grep -cE '"event"[[:space:]]*:[[:space:]]*"acknowledged"') $(grep -E '^0 cw/alerts/OVL1/1/overload ' "$SUB" | grep -cE '"event"[[:space:]]*:[[:space:]]*"closed"')"
it_eq "operator events in the alert log" "1 1" \
  "$(grep -w THR1 "$IT_DIR/alerts.log" | grep -w thermal_runaway | grep -ciw acknowledged) $(grep -w OVL1 "$IT_DIR/alerts.log" | grep -w overload | grep -ciw closed)"
it_eq "closed alert: retained copy cleared (late subscriber gets nothing)" "" \
  "$(it_sub_once cw/alerts/OVL1/1/overload 1 3 | grep -v '^1 cw/alerts/OVL1/1/overload $')"
it_eq "acknowledged alert: still retained, now acknowledged" "1 acknowledged" \
  "$(it_sub_once cw/alerts/THR1/1/thermal_runaway 1 5 | awk '{print $1}') $(it_sub_once cw/alerts/THR1/1/thermal_runaway 1 5 | it_json event)"

# OFF1 taught the detector a 1 s interval on both sockets; socket 2 stopped
# with the offline loop above, so the whole station is silent once both are
# overdue: one critical alert on socket 0 (docs/DETECTORS.md).
it_eq "offline: silent station raises critical on socket 0" "1 critical" \
  "$(it_wait_eq $((OFFLINE_MIN_S * 3)) "1 critical" it_sql "SELECT count(*) || ' ' || coalesce(max(severity), '-')
     FROM alerts WHERE station='OFF1' AND socket=0 AND kind='offline'")"

# An alert named by its short reference over MQTT (as typed: lower case, no
# zeros): THR1/1 rectified with a note; the reference travels in the
# published JSON.
thr_ref=$(it_sql "SELECT ref FROM alerts WHERE id=${thr_id:-0}")
typed=$(echo "$thr_ref" | tr 'A' 'a' | sed -E 's/-0+([0-9])/-\1/2')
it_eq "the retained alert JSON carries the reference" "$thr_ref" \
  "$(it_sub_once cw/alerts/THR1/1/thermal_runaway 1 5 | it_json ref)"
it_pub cw/ops/cmd "{\"ref\":\"$typed\",\"action\":\"rectify\",\"by\":\"it-op\",\"note\":\"new socket\"}"
it_eq "rectify by reference over MQTT: state, by, note" "rectified it-op new socket" \
  "$(it_wait_eq 10 "rectified it-op new socket" it_sql "SELECT state || ' ' || rectified_by || ' ' || rectify_note FROM alerts WHERE id=${thr_id:-0}")"

# Commands for alerts this daemon does not hold are rejected in words,
# never logged as applied: an id that does not exist, an alert closed
# already (OVL1, closed from SQL above), a reference that does not exist.
it_pub cw/ops/cmd '{"id":987654321,"action":"close","by":"it-op"}'
it_pub cw/ops/cmd "{\"id\":${ovl_id:-0},\"action\":\"close\",\"by\":\"it-op\"}"
it_pub cw/ops/cmd '{"ref":"A-0101-9999","action":"ack","by":"it-op"}'
in_log() { it_wait 10 grep -qF -- "$1" "$IT_DIR/daemon.log"; }
it_eq "unknown id: rejected, saying so" 0 \
  "$(in_log 'close of alert 987654321 by it-op (from cw/ops/cmd) rejected: is not held by this daemon'; echo $?)"
it_eq "closed alert: rejected, saying it is already closed" 0 \
  "$(in_log "close of alert ${ovl_id:-0} by it-op (from cw/ops/cmd) rejected: is already closed"; echo $?)"
it_eq "unknown reference: rejected, saying so" 0 \
  "$(in_log 'ack of alert A-0101-9999 by it-op (from cw/ops/cmd) rejected: is not held by this daemon'; echo $?)"
it_eq "none of them logged as applied" 0 \
  "$(grep -cE "operator (close|ack) of alert (987654321|${ovl_id:-0}) .*from cw/ops/cmd" "$IT_DIR/daemon.log")"

# After a restart the open alerts come back from the database and take
# commands: the offline alert of OFF1 closed by its reference over MQTT.
off_id=$(it_sql "SELECT id FROM alerts WHERE station='OFF1' AND socket=0 AND kind='offline'")
off_ref=$(it_sql "SELECT ref FROM alerts WHERE id=${off_id:-0}")
it_daemon_stop
it_daemon_start
it_wait_ready
it_wait 20 grep -q 'writer: restored [1-9][0-9]* alerts not closed' "$IT_DIR/daemon.log"
it_pub cw/ops/cmd "{\"ref\":\"$off_ref\",\"action\":\"close\",\"by\":\"it-op\"}"
it_eq "restored alert: closed by reference after a restart" "closed it-op" \
  "$(it_wait_eq 15 "closed it-op" it_sql "SELECT state || ' ' || coalesce(closed_by, '-') FROM alerts WHERE id=${off_id:-0}")"
