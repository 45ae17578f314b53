#!/usr/bin/env bash
# test_sessions.sh - charging sessions the daemon writes that test_operator
# does not cover: a socket that goes silent mid-session is written as a
# timeout (ended at its last reading) once its offline threshold passes; a
# session that ends while PostgreSQL is stopped is spooled with the alert
# events and stored exactly once when the database is back; a session open
# when the daemon stops is written at the stop as restart with every reading
# it took, and the charge going on after the start is a new session.
. "$(dirname "$0")/lib.sh"
# short offline thresholds (a silent metering socket is overdue after 3 s);
# open sessions written every second
IT_EXTRA_CONF=$'[detectors]\nsession_checkpoint_s = 1\noffline_min_s = 2\noffline_quiet_s = 3\noffline_max_s = 4'
it_setup

sess() { it_sql "SELECT extract(epoch FROM ended_at - started_at)::int || ' ' || energy_wh || ' ' ||
                        coalesce(peak_w::text, '-') || ' ' || coalesce(peak_t::text, '-') || ' ' ||
                        readings || ' ' || end_reason
                 FROM charging_sessions WHERE station = '$1' ORDER BY started_at"; }

# ---------------------------------------------------------------- timeout
now=$(it_now_ms)
for i in 0 1 2; do
  it_pub cw/TMO1/1/telemetry "{\"ts\":$((now - 2000 + 1000 * i)),\"w\":120,\"wh\":$((i + 1)),\"t\":28.5}"
done
written() { [ "$(sess "$1" | awk '{print $NF}' | tail -1)" = "$2" ]; }
it_wait 20 written TMO1 timeout || it_fail "silent socket: session written" "a row" "none"
it_eq "silent socket: timeout at its last reading (2 s, 2 Wh, 120 W, 28.5 C, 3 readings)" \
  "2 2 120 28.5 3 timeout" "$(sess TMO1)"

# ---------------------------------------------------------------- outage
# yesterday 09:00:00 UTC every 60 s: w 250, wh 0, 4 .. 16; the 6th reading
# (+300 s) stop time, 0 W, wh 17: 5 min, 17 Wh, 250 W, no t, 6 readings, time.
d0=$(( ($(date -u +%s) / 86400 - 1) * 86400 + 32400 ))
for i in 0 1 2 3 4; do printf '{"ts":%d000,"w":250,"wh":%d}\n' $((d0 + 60 * i)) $((4 * i)); done >"$IT_DIR/out.lines"
printf '{"ts":%d000,"w":0,"wh":17,"stop":"time"}\n' $((d0 + 300)) >>"$IT_DIR/out.lines"
cw_pg_stop "$IT_PG_DIR"
it_pub_lines cw/OUT1/2/telemetry "$IT_DIR/out.lines"
spooled() { [ -s "$IT_DIR/spool/alerts" ] || [ -n "$(find "$IT_DIR/spool" -path '*alert*' -type f -size +0 2>/dev/null | head -1)" ]; }
it_wait 15 spooled && it_ok "database down: the session is spooled" || it_fail "database down: the session is spooled" "a non-empty alert spool" "$(ls -R "$IT_DIR/spool" | head)"
it_eq "database down: the daemon runs on" 0 "$(it_daemon_alive; echo $?)"
cw_pg_start "$IT_PG_DIR" "$CW_PG_PORT" >/dev/null || it_fail "postgres restarted" running failed
it_wait 30 written OUT1 time || it_fail "after the outage: session stored" "a row" "none"
it_eq "after the outage: the session, exact" "300 17 250 - 6 time" "$(sess OUT1)"
sleep 2
it_eq "after the outage: stored once" 1 "$(it_sql "SELECT count(*) FROM charging_sessions WHERE station = 'OUT1'")"
it_eq "after the outage: every reading stored" 6 "$(it_rows OUT1 2)"

# ---------------------------------------------------------------- restart
now=$(it_now_ms)
it_pub cw/RST1/1/telemetry "{\"ts\":$((now - 2000)),\"w\":150,\"wh\":1,\"t\":31}"
it_pub cw/RST1/1/telemetry "{\"ts\":$((now - 1000)),\"w\":150,\"wh\":2,\"t\":32}"
it_wait 15 written RST1 restart || it_fail "open session: checkpoint row" restart "$(sess RST1)"
# both readings taken (the checkpoint may predate the second): the clean
# stop writes the open session once more, as of its last reading
rows_are() { [ "$(it_rows "$1")" = "$2" ]; }
it_wait 15 rows_are RST1 2 || it_fail "open session: both readings stored" 2 "$(it_rows RST1)"
it_daemon_stop
it_daemon_start
it_wait_ready || exit 1
it_pub cw/RST1/1/telemetry "{\"ts\":$((now + 1000)),\"w\":150,\"wh\":3,\"t\":33}"
it_pub cw/RST1/1/telemetry "{\"ts\":$((now + 3000)),\"w\":0,\"wh\":4,\"t\":33,\"stop\":\"manual\"}"
it_wait 15 written RST1 manual || it_fail "after the restart: a new session ended by the stop" manual "$(sess RST1)"
it_eq "restart: the session open at the stop stays restart; the charge after the start is a new one" \
  "1 1 150 32 2 restart|2 1 150 33 2 manual" "$(sess RST1 | paste -sd'|')"
