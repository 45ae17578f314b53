#!/usr/bin/env bash
# test_policy.sh - station and socket policies changed in the database are
# honoured after SIGHUP (docs/DETECTORS.md, docs/OPERATIONS.md), both ways:
#   POL1/2: charging, not forbidden -> no alert; forbidden + HUP -> raised;
#           allowed again + HUP -> cleared after hold_s, no second raised.
#   NGT1/1: charging inside the night window (set around "now", UTC) at a
#           station with overnight_allowed = true -> no alert; false + HUP ->
#           raised; true + HUP -> cleared, no second raised.
. "$(dirname "$0")/lib.sh"
NIGHT_MIN_S=60
IT_EXTRA_CONF="[detectors]
night_min_s = $NIGHT_MIN_S
hold_s = 2
offline_min_s = 600
[alerts]
default_timezone = Europe/Berlin"
it_setup

# A station registered by its first reading (PROBE) gets [alerts]
# default_timezone and that zone's offset (CET +60 or CEST +120).
it_eq "auto-registered station: default_timezone and its offset" "Europe/Berlin 1" \
  "$(it_sql "SELECT timezone || ' ' || (utc_offset_min IN (60, 120))::int FROM stations WHERE code = 'PROBE'")"

hup() { kill -HUP "$IT_DAEMON_PID"; sleep 2; }
ns=$(date -u -d '-60 min' +%H:%M)
ne=$(date -u -d '+60 min' +%H:%M)
it_sql "INSERT INTO stations (code) VALUES ('POL1'), ('NGT1') ON CONFLICT (code) DO NOTHING;
        INSERT INTO sockets (station, socket, forbidden) VALUES ('POL1', 2, false)
        ON CONFLICT (station, socket) DO UPDATE SET forbidden = false;
        UPDATE stations SET utc_offset_min = 0, night_start = '$ns', night_end = '$ne',
                            overnight_allowed = true WHERE code = 'NGT1'" >/dev/null
hup

# Phase A: charging everywhere, nothing is against policy. Event time spans
# 200 s in the night window (> night_min_s).
now=$(it_now_ms)
for i in $(seq 0 20); do it_reading $((now - 400000 + i * 10000)) 200; echo; done >"$IT_DIR/a.lines"
it_pub_lines cw/POL1/2/telemetry "$IT_DIR/a.lines"
it_pub_lines cw/NGT1/1/telemetry "$IT_DIR/a.lines"
it_eq "phase A: rows stored" 42 "$(it_wait_eq 15 42 it_sql "SELECT count(*) FROM readings WHERE station IN ('POL1','NGT1')")"
sleep 1
it_eq "phase A: no overnight alert while allowed" 0 \
  "$(it_sql "SELECT count(*) FROM alerts WHERE station IN ('POL1','NGT1') AND kind='overnight_charging'")"

# Phase B: forbid, HUP; keep charging (event time goes on from phase A).
it_sql "UPDATE sockets SET forbidden = true WHERE station='POL1' AND socket=2;
        UPDATE stations SET overnight_allowed = false WHERE code='NGT1'" >/dev/null
# logrotate moves the alert log away, then reloads: the daemon must reopen it.
mv "$IT_DIR/alerts.log" "$IT_DIR/alerts.log.1"
hup
t=$((now - 200000))
for i in $(seq 1 20); do it_reading $((t + i * 10000)) 200; echo; done >"$IT_DIR/b.lines"
it_pub_lines cw/POL1/2/telemetry "$IT_DIR/b.lines"
it_pub_lines cw/NGT1/1/telemetry "$IT_DIR/b.lines"
both_raised() {
  [ "$(it_events POL1 2 overnight_charging raised)" -ge 1 ] && [ "$(it_events NGT1 1 overnight_charging raised)" -ge 1 ]
}
for i in $(seq 1 20); do
  both_raised && break
  t=$(it_now_ms)
  it_pub cw/POL1/2/telemetry "$(it_reading "$t" 200)"
  it_pub cw/NGT1/1/telemetry "$(it_reading "$t" 200)"
  sleep 1
done
it_eq "phase B: forbidden socket raises overnight_charging after HUP" 1 "$(it_events POL1 2 overnight_charging raised)"
it_eq "phase B: overnight_allowed=false raises overnight_charging after HUP" 1 "$(it_events NGT1 1 overnight_charging raised)"
it_eq "phase B: raised lines went to the reopened alert log (SIGHUP reopen)" "2 0" \
  "$(grep -ciw raised "$IT_DIR/alerts.log" 2>/dev/null) $(grep -ciw raised "$IT_DIR/alerts.log.1" 2>/dev/null)"

# Phase C: allowed again, HUP; charging goes on; the alerts clear (hold_s 2).
it_sql "UPDATE sockets SET forbidden = false WHERE station='POL1' AND socket=2;
        UPDATE stations SET overnight_allowed = true WHERE code='NGT1'" >/dev/null
hup
both_cleared() {
  [ "$(it_events POL1 2 overnight_charging cleared)" -ge 1 ] && [ "$(it_events NGT1 1 overnight_charging cleared)" -ge 1 ]
}
for i in $(seq 1 20); do
  t=$(it_now_ms)
  it_pub cw/POL1/2/telemetry "$(it_reading "$t" 200)"
  it_pub cw/NGT1/1/telemetry "$(it_reading "$t" 200)"
  both_cleared && break
  sleep 1
done
# a few more readings after the clear: they must not raise again
for i in 1 2 3; do
  t=$(it_now_ms)
  it_pub cw/POL1/2/telemetry "$(it_reading "$t" 200)"
  it_pub cw/NGT1/1/telemetry "$(it_reading "$t" 200)"
  sleep 1
done
it_eq "phase C: forbidden lifted -> cleared" 1 "$(it_events POL1 2 overnight_charging cleared)"
it_eq "phase C: overnight allowed -> cleared" 1 "$(it_events NGT1 1 overnight_charging cleared)"
it_eq "phase C: no second raised (socket)" 1 "$(it_events POL1 2 overnight_charging raised)"
it_eq "phase C: no second raised (station)" 1 "$(it_events NGT1 1 overnight_charging raised)"
it_eq "alerts state after phase C" "cleared cleared" \
  "$(it_sql "SELECT state FROM alerts WHERE kind='overnight_charging' AND station IN ('POL1','NGT1')
             ORDER BY station" | xargs)"

# Phase D: charger limits (charge_max_w, schema 002) are loaded with the
# policies: 400 W for 400 s (event time) is above a 300 W limit set on the
# station (CMX1) or on the socket (CMX2) -> overload warning; without a limit
# (CMX3) the 700 W default applies -> nothing.
it_sql "INSERT INTO stations (code, charge_max_w) VALUES ('CMX1', 300), ('CMX2', NULL), ('CMX3', NULL)
          ON CONFLICT (code) DO NOTHING;
        INSERT INTO sockets (station, socket, charge_max_w) VALUES ('CMX2', 1, 300)
          ON CONFLICT (station, socket) DO UPDATE SET charge_max_w = 300" >/dev/null
hup
now=$(it_now_ms)
for i in $(seq 0 40); do it_reading $((now - 400000 + i * 10000)) 400; echo; done >"$IT_DIR/d.lines"
for st in CMX1 CMX2 CMX3; do it_pub_lines cw/$st/1/telemetry "$IT_DIR/d.lines"; done
it_eq "phase D: rows stored" 123 "$(it_wait_eq 15 123 it_sql "SELECT count(*) FROM readings WHERE station LIKE 'CMX%'")"
sleep 1
it_eq "phase D: overload per station limit, per socket limit, none without" "1 1 0" \
  "$(it_events CMX1 1 overload raised) $(it_events CMX2 1 overload raised) $(it_events CMX3 1 overload raised)"
it_eq "phase D: threshold is the limit" "300" \
  "$(it_sql "SELECT DISTINCT threshold FROM alerts WHERE kind='overload' AND station IN ('CMX1','CMX2')")"
