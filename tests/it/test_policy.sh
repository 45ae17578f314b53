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
offline_min_s = 600"
it_setup

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
