#!/usr/bin/env bash
# test_restart.sh - a restart restores per-socket state from the database
# (docs/DETECTORS.md): resending readings already stored adds no row, and an
# alert that is open stays one alert with one "raised" event.
. "$(dirname "$0")/lib.sh"
it_setup

now=$(it_now_ms)
b=$((now - 20000))
r1=$(it_reading "$b" 300 30.0)
r2=$(it_reading $((b + 1000)) 300 95.0) # thermal_runaway critical
it_pub cw/RST/1/telemetry "$r1"
it_pub cw/RST/1/telemetry "$r2"
it_pub cw/RST/2/telemetry "$(it_reading "$b" 300 30.0)"
raised() { it_events RST 1 thermal_runaway raised; }
it_eq "before restart: alert raised" 1 "$(it_wait_eq 15 1 raised)"
it_eq "before restart: rows" 3 "$(it_wait_eq 10 3 it_rows RST)"
id1=$(it_sql "SELECT id FROM alerts WHERE station='RST' AND socket=1 AND kind='thermal_runaway'")

it_daemon_stop
it_eq "exit status after SIGTERM" 0 "$IT_EXIT_RC"
it_daemon_start
it_wait_ready || exit 1

SUB=$IT_DIR/alerts.mqtt
it_sub_bg 'cw/alerts/RST/#' "$SUB"
dups0=$(it_metric 'reason="duplicate"')
# The same two readings again, then three newer ones, still hot.
it_pub cw/RST/1/telemetry "$r1"
it_pub cw/RST/1/telemetry "$r2"
for i in 2 3 4; do it_pub cw/RST/1/telemetry "$(it_reading $((b + i * 1000)) 300 96.0)"; done
# Socket 2: the same reading again, then a newer one that raises a new alert
# (shows that alerting works after the restart, so "no second raised" means something).
it_pub cw/RST/2/telemetry "$(it_reading "$b" 300 30.0)"
it_pub cw/RST/2/telemetry "$(it_reading $((b + 1000)) 300 95.0)"

it_eq "after restart: new readings stored, resent ones not" 7 "$(it_wait_eq 15 7 it_rows RST)"
it_eq "after restart: the three resent readings rejected as duplicate" "$((${dups0:-0} + 3))" \
  "$(it_wait_eq 10 $((${dups0:-0} + 3)) it_metric 'reason="duplicate"')"
it_eq "after restart: the alert raised after the restart is there" 1 \
  "$(it_wait_eq 15 1 it_events RST 2 thermal_runaway raised)"
sleep 1
it_eq "after restart: distinct (station, socket, ts)" 7 \
  "$(it_sql "SELECT count(DISTINCT (station, socket, ts)) FROM readings WHERE station='RST'")"
it_eq "after restart: still one thermal alert on RST/1, same id" "1 $id1" \
  "$(it_sql "SELECT count(*) || ' ' || max(id) FROM alerts WHERE station='RST' AND socket=1 AND kind='thermal_runaway'")"
it_eq "after restart: still one raised event for it" 1 "$(raised)"
it_eq "after restart: no live raised event on MQTT for RST/1" 0 \
  "$(grep -E '^0 cw/alerts/RST/1/thermal_runaway ' "$SUB" | grep -cE '"event"[[:space:]]*:[[:space:]]*"raised"')"
it_eq "alert log: one raised line for RST/1 over both runs" 1 \
  "$(grep -w RST "$IT_DIR/alerts.log" 2>/dev/null | grep -w thermal_runaway | grep -iw raised |
     grep -cE 'socket[=:" ]+1([^0-9]|$)')"
