#!/usr/bin/env bash
# test_operator.sh - the operator command chargewatch(1) against the real
# daemon and PostgreSQL: a thermal anomaly raised by the daemon is listed,
# acknowledged by its short reference (as typed: lower case, no zeros),
# rectified and closed with the database role recorded; an unknown reference
# fails; station shows what is stored; charging sessions the daemon wrote
# from a replay are exact (device stop, idle, checkpoint then stop); tail prints events live
# in the alert log's format; and in a real terminal (a private tmux server
# of fixed size) the table is coloured, cut to the width, and tail follows.
. "$(dirname "$0")/lib.sh"
CW_CLI=${CW_CLI:-$IT_ROOT/build/chargewatch}
[ -x "$CW_CLI" ] || make -s -C "$IT_ROOT" build/chargewatch >/dev/null 2>&1
# open sessions are written every second (the default is 5 min)
IT_EXTRA_CONF=$'[detectors]\nsession_checkpoint_s = 1'
it_setup
export PGHOST=127.0.0.1 PGPORT=$CW_PG_PORT PGUSER=postgres
unset PGDATABASE PGSERVICE NO_COLOR
cw() { "$CW_CLI" "$@"; }

# ---------------------------------------------------------------- tail (piped)
TAIL=$IT_DIR/tail.out
"$CW_CLI" tail -n 0 >"$TAIL" 2>"$IT_DIR/tail.err" &
TAIL_PID=$!
IT_BG_PIDS="$IT_BG_PIDS $TAIL_PID"
listening() { [ "$(it_sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'chargewatch'
                           AND query = 'LISTEN cw_alert_events'")" = 1 ]; }
it_wait 10 listening || it_fail "tail is listening" "LISTEN cw_alert_events" "not seen"

# ---------------------------------------------------------------- a thermal alert
now=$(it_now_ms)
it_pub cw/THR1/1/telemetry "$(it_reading $((now - 3000)) 300 30.0)"
it_pub cw/THR1/1/telemetry "$(it_reading $((now - 2000)) 300 31.0)"
it_pub cw/THR1/1/telemetry "$(it_reading $((now - 1000)) 300 95.0)"
raised() { [ "$(it_events THR1 1 thermal_runaway raised)" = 1 ]; }
it_wait 15 raised || it_fail "thermal alert raised by the daemon" 1 "$(it_events THR1 1 thermal_runaway raised)"
REF=$(it_sql "SELECT ref FROM alerts WHERE station = 'THR1'")
it_eq "the alert has a short reference A-MMDD-NNNN" 1 "$(echo "$REF" | grep -cE '^A-[0-9]{4}-[0-9]{4,}$')"
# The daemon gave it (not the database's trigger): its own log line carries
# it, and it is the first of the UTC day.
it_eq "the daemon's reference: today's first, in its alert log" "A-$(date -u +%m%d)-0001 1" \
  "$REF $(grep -E ' raised id=[0-9]+ station=THR1 ' "$IT_DIR/alerts.log" | grep -c " ref=$REF local=")"

out=$(cw alerts)
it_eq "alerts: exit 0" 0 "$?"
it_eq "alerts: header" "REF AGE STATION SOCKET KIND SEVERITY STATE MESSAGE" "$(echo "$out" | head -1 | xargs)"
it_eq "alerts: the row (ref, station, socket, kind, severity, state)" "$REF THR1 1 thermal_runaway critical open" \
  "$(echo "$out" | grep -w THR1 | awk '{print $1, $3, $4, $5, $6, $7}')"
it_eq "alerts: no colour when piped" 0 "$(printf '%s' "$out" | grep -c $'\033')"
it_eq "alerts --station filters" "no alerts match" "$(cw alerts --station NOPE)"
it_eq "alerts --json: the reference" "$REF" "$(cw alerts --json | it_json ref)"
it_eq "alerts --kind overload: none" "no alerts match" "$(cw alerts --kind overload)"

# ---------------------------------------------------------------- lifecycle
typed=$(echo "$REF" | tr 'A' 'a' | sed -E 's/-0+([0-9])/-\1/2')
out=$(cw ack "$typed" --note "on my way" 2>&1)
it_eq "ack by the reference as typed ($typed): exit 0" 0 "$?"
it_eq "ack: says what and who" "ack $REF (THR1 socket 1 thermal_runaway): acknowledged by postgres" "$out"
sleep 1 # the daemon hears the NOTIFY and stores its own record of it
it_eq "ack: recorded with the database role" "acknowledged postgres" \
  "$(it_sql "SELECT state || ' ' || acked_by FROM alerts WHERE ref = '$REF'")"
out=$(cw ack "$REF" 2>&1)
it_eq "ack again: nothing to do, exit 1" "chargewatch ack: nothing to do: $REF is acknowledged 1" "$out $?"
out=$(cw close A-0101-9999 2>&1)
it_eq "close of an unknown reference: exit 1" 1 "$?"
it_eq "close of an unknown reference: says so" 1 "$(echo "$out" | grep -c 'no alert with id or reference "A-0101-9999"')"
out=$(cw rectify "$REF" --note "replaced the socket" 2>&1)
it_eq "rectify: exit 0" 0 "$?"
sleep 0.5
it_eq "rectify: the daemon heard it (NOTIFY) and logged it with the role and note" 1 \
  "$(grep -E ' rectified id=[0-9]+ station=THR1 socket=1 state=rectified ' "$IT_DIR/alerts.log" |
     grep -c 'by="postgres" note="replaced the socket" ref=A-')"

# station before closing: the open alert on socket 1
out=$(cw station THR1)
it_eq "station: exit 0" 0 "$?"
it_eq "station: head names the zone" 1 "$(echo "$out" | head -1 | grep -c 'THR1  outdoor  Asia/Shanghai  local time ')"
it_eq "station: socket 1 with its last reading and open alert" "1 charging 300 95 $REF thermal_runaway critical rectified" \
  "$(echo "$out" | awk '$1 == "1" {print $1, $2, $3, $4, $7, $8, $9, $10}')"
it_eq "station: unknown code, exit 1" 1 "$(cw station NOPE 2>/dev/null; echo $?)"

out=$(cw close "$REF" --note "done" 2>&1)
it_eq "close: exit 0" 0 "$?"
sleep 0.5
it_eq "after close: no open alerts" "no open alerts" "$(cw alerts)"
it_eq "rectified and closed with role and note" "closed postgres postgres replaced the socket" \
  "$(it_sql "SELECT state || ' ' || rectified_by || ' ' || closed_by || ' ' || rectify_note FROM alerts WHERE ref = '$REF'")"
it_eq "alerts --all shows the closed one" "$REF closed" \
  "$(cw alerts --all --station THR1 | awk -v r="$REF" '$1 == r {print $1, $7}')"

# ---------------------------------------------------------------- sessions
# Written by the daemon as they end, from a replay through MQTT, yesterday
# 08:00:00 UTC, one reading every 30 s:
#  SES1/1: w 300, wh 0, 5 .. 45, t 30/31, state charging; the 11th reading
#          (+300 s) stop full, state full, 0 W, wh 46, t 29: ended by the
#          device: 5:00, 46 Wh, peak 300 W, 31 C, 11 readings, full;
#  SES1/2: w 200, wh 10, 12 .. 20, t 40 for 6 readings, then 2 W (wh 20,
#          t 35) for 5 more, the last with wh 20.5: 2 min under 15 W ends
#          it at the first low reading (+180 s): 3:00, 10.5 Wh, 200 W, 40 C,
#          11 readings, idle;
#  SES1/3: w 100, wh 1, 2, 3 now, no end: open, so written at the next
#          checkpoint (session_checkpoint_s = 1 here) as restart, ended at
#          its last reading; a stop manual later ends the same row.
s0=$(( ($(date -u +%s) / 86400 - 1) * 86400 + 28800 ))
for i in $(seq 0 9); do
  printf '{"ts":%d000,"w":300,"wh":%d,"t":%d,"state":"charging"}\n' $((s0 + 30 * i)) $((5 * i)) $((30 + i % 2))
done >"$IT_DIR/ses1.lines"
printf '{"ts":%d000,"w":0,"wh":46,"t":29,"state":"full","stop":"full"}\n' $((s0 + 300)) >>"$IT_DIR/ses1.lines"
for i in $(seq 0 10); do
  if [ "$i" -lt 6 ]; then w=200 wh=$((10 + 2 * i)) t=40; else w=2 wh=20 t=35; fi
  [ "$i" = 10 ] && wh=20.5
  printf '{"ts":%d000,"w":%s,"wh":%s,"t":%s}\n' $((s0 + 30 * i)) "$w" "$wh" "$t"
done >"$IT_DIR/ses2.lines"
it_pub_lines cw/SES1/1/telemetry "$IT_DIR/ses1.lines"
it_pub_lines cw/SES1/2/telemetry "$IT_DIR/ses2.lines"
sess() { it_sql "SELECT to_char(started_at AT TIME ZONE 'UTC', 'HH24:MI:SS') || ' ' ||
                        extract(epoch FROM ended_at - started_at)::int || ' ' || energy_wh || ' ' ||
                        coalesce(peak_w::text, '-') || ' ' || coalesce(peak_t::text, '-') || ' ' ||
                        readings || ' ' || end_reason
                 FROM charging_sessions WHERE station = '$1' AND socket = $2 ORDER BY started_at"; }
two_ended() { [ "$(it_sql "SELECT count(*) FROM charging_sessions WHERE station = 'SES1'
                           AND end_reason IN ('full', 'idle')")" = 2 ]; }
it_wait 15 two_ended || it_fail "two replayed sessions written" 2 "$(sess SES1 1; sess SES1 2)"
it_eq "session ended by the device (stop full): exact row" "08:00:00 300 46 300 31 11 full" "$(sess SES1 1)"
it_eq "session ended by power under 15 W for 2 min: exact row" "08:00:00 180 10.5 200 40 11 idle" "$(sess SES1 2)"
now=$(it_now_ms)
for i in 0 1 2; do
  it_pub cw/SES1/3/telemetry "{\"ts\":$((now - 3000 + 1000 * i)),\"w\":100,\"wh\":$((i + 1)),\"t\":30.5}"
done
ckpt() { [ "$(it_sql "SELECT end_reason || ' ' || readings FROM charging_sessions WHERE station = 'SES1' AND socket = 3")" = "restart 3" ]; }
it_wait 15 ckpt || it_fail "open session written at the checkpoint" "restart 3" "$(sess SES1 3)"
it_eq "open session: restart, ended at its last reading" "2 2 100 30.5 3 restart" \
  "$(sess SES1 3 | cut -d' ' -f2-)"
it_pub cw/SES1/3/telemetry "{\"ts\":$now,\"w\":0,\"wh\":3.5,\"t\":30,\"stop\":\"manual\"}"
manual() { [ "$(it_sql "SELECT end_reason FROM charging_sessions WHERE station = 'SES1' AND socket = 3")" = manual ]; }
it_wait 15 manual || it_fail "the stop ends the same row" manual "$(sess SES1 3)"
it_eq "the checkpoint row is replaced, not duplicated" "3 2.5 100 30.5 4 manual" "$(sess SES1 3 | cut -d' ' -f2-)"
out=$(cw sessions --station SES1 --since 2d)
it_eq "sessions: the device-ended one as the CLI shows it" "SES1 1 0:05 46.0 300 31 11 full" \
  "$(echo "$out" | awk '$1 == "SES1" && $2 == 1 {print $1, $2, $4, $5, $6, $7, $8, $9}')"
it_eq "sessions --since a date after them: none" "no sessions in that time" \
  "$(cw sessions --station SES1 --since "$(date -u -d tomorrow +%F)")"
it_eq "sessions --json: the latest first" "2.5" "$(cw sessions --json --station SES1 --since 2d | it_json energy_wh)"

# ---------------------------------------------------------------- rollup of a known replay
# Ten readings through the daemon (MQTT, decode, COPY), yesterday 10:00:00 UTC
# every 30 s: w 300, wh 0, 5, ... 45, t 30 and 31 alternating, charging. The row:
# 10 readings, energy 45 Wh, t 30..31, w 300, 9 x 0.5 = 4.5 minutes charging
# (the last reading has no next one).
t0=$(( ($(date -u +%s) / 86400 - 1) * 86400 + 36000 ))
for i in $(seq 0 9); do
  printf '{"ts":%d000,"v":230.0,"a":1.3,"w":300,"wh":%d,"t":%d,"state":"charging"}\n' $((t0 + 30 * i)) $((5 * i)) $((30 + i % 2))
done >"$IT_DIR/replay.lines"
it_pub_lines cw/RLP1/4/telemetry "$IT_DIR/replay.lines"
stored() { [ "$(it_rows RLP1 4)" = 10 ]; }
it_wait 15 stored || it_fail "replay stored" 10 "$(it_rows RLP1 4)"
it_eq "rollup of the replayed hour: one row" 1 \
  "$(it_sql "SELECT cw_rollup_readings(to_timestamp($t0), to_timestamp($t0 + 3600))")"
it_eq "rollup values (energy, t range, w max, minutes charging, readings)" "45|30|31|300|4.5|10" \
  "$(it_sql "SELECT energy_wh, t_min, t_max, w_max, minutes_charging, readings FROM readings_hourly WHERE station = 'RLP1'")"

# ---------------------------------------------------------------- tail output
sleep 0.5
pat="^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z CRITICAL thermal_runaway"
it_eq "tail: the raised event in the log format" 1 \
  "$(grep -cE "$pat raised id=[0-9]+ station=THR1 socket=1 state=open value=95\.0 threshold=90\.0 unit=C ref=$REF local=[-0-9T:.]+\+08:00 \"" "$TAIL")"
it_eq "tail: acknowledged once, with the role and note" 1 \
  "$(grep -E "$pat acknowledged " "$TAIL" | grep -c 'by="postgres" note="on my way"')"
it_eq "tail: rectified once" 1 "$(grep -cE "$pat rectified .*note=\"replaced the socket\"" "$TAIL")"
# The daemon's own record of each SQL action is absorbed: one line each.
it_eq "tail: closed once" 1 "$(grep -cE "$pat closed .*ref=$REF" "$TAIL")"
it_eq "tail: nothing on stderr" "" "$(cat "$IT_DIR/tail.err")"
out=$("$CW_CLI" tail -n 2 --json & p=$!; sleep 1; kill "$p"; wait "$p")
it_eq "tail -n 2 --json: the last two events, then follows until killed" 2 "$(echo "$out" | grep -c '"ref" : ')"

# ---------------------------------------------------------------- a real terminal
TM="tmux -L cw-it-$$"
IT_TMUX=1
cleanup_tmux() { if [ -n "${IT_TMUX:-}" ]; then $TM kill-server 2>/dev/null; fi; return 0; }
trap 'cleanup_tmux; it_teardown' EXIT
if ! command -v tmux >/dev/null; then
  it_fail "tmux installed" "tmux" "missing"
  exit 1
fi
$TM -f /dev/null new-session -d -s op -x 100 -y 30 "env -u NO_COLOR TERM=xterm-256color bash --norc --noprofile"
$TM set-option -t op status off >/dev/null
screen() { $TM capture-pane -t op -p "$@"; }
send() { $TM send-keys -t op "$1" Enter; }
send "export PS1='$ ' PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER; clear"
now=$(it_now_ms)
it_pub cw/THR2/3/telemetry "$(it_reading $((now - 2000)) 300 30.0)"
it_pub cw/THR2/3/telemetry "$(it_reading $((now - 1000)) 300 96.0)"
raised2() { [ "$(it_events THR2 3 thermal_runaway raised)" = 1 ]; }
it_wait 15 raised2 || it_fail "second alert raised" 1 "$(it_events THR2 3 thermal_runaway raised)"
it_sql "UPDATE alerts SET message = message || ' and a long tail of words that goes on past the right edge of a hundred-column terminal' WHERE station = 'THR2'" >/dev/null
REF2=$(it_sql "SELECT ref FROM alerts WHERE station = 'THR2'")
send "$CW_CLI alerts"
on_screen() { screen | grep -q -- "$1"; }
it_wait 10 on_screen "$REF2" || it_fail "tmux: alerts table on screen" "$REF2" "$(screen | head -5)"
it_eq "tmux: header on the first line" "REF AGE STATION SOCKET KIND SEVERITY STATE MESSAGE" \
  "$(screen | grep -m1 '^REF' | xargs)"
# tmux re-encodes attributes: bold red comes back as ESC[1m ESC[31m
it_eq "tmux: critical in red, open in red" 2 "$(screen -e | grep "$REF2" | grep -o $'\033\[31m' | wc -l)"
it_eq "tmux: the message is cut at the 100-column edge" "100 ~" \
  "$(screen | grep "$REF2" | sed 's/ *$//' | awk '{print length($0), substr($0, length($0))}')"
send "clear; NO_COLOR=1 $CW_CLI alerts"
sleep 1
it_eq "tmux: NO_COLOR turns colour off" 0 "$(screen -e | grep "$REF2" | grep -c $'\033\[31m')"
send "clear; $CW_CLI tail -n 0"
it_wait 10 listening || it_fail "tmux: tail is listening" 1 0
cw ack "$REF2" --note "seen on screen" >/dev/null
it_wait 10 on_screen "acknowledged id=" ||
  it_fail "tmux: tail shows the acknowledgement live" "a line" "$(screen | grep -v '^$' | tail -3)"
it_eq "tmux: the live line" 1 \
  "$(screen -J | grep -m1 -cE "Z WARNING thermal_runaway acknowledged id=[0-9]+ station=THR2 socket=3 |Z CRITICAL thermal_runaway acknowledged id=[0-9]+ station=THR2 socket=3 ")"
$TM send-keys -t op C-c
sleep 0.5
send "echo rc=\$?"
it_wait 5 on_screen "rc=0" || it_fail "tmux: tail exits 0 on Ctrl-C" "rc=0" "$(screen | grep rc=)"
cleanup_tmux
IT_TMUX=""
