#!/usr/bin/env bash
# test_rejects.sh - every reject reason of lib/cw.h (except db_rejected, which
# needs the database to refuse a row) is dead-lettered with its reason name,
# counted under its reason label on /metrics, stores nothing, and leaves the
# daemon ingesting. Each case is sent a known number of times.
. "$(dirname "$0")/lib.sh"
it_setup

gen=$IT_DIR/gen
mkdir -p "$gen"
T=cw/REJ/1/telemetry
now=$(it_now_ms)
declare -A sent # reason -> messages sent that must be rejected for it

attempts=0
send() { # REASON TOPIC PAYLOAD
  attempts=$((attempts + 1))
  it_pub "$2" "$3" && sent[$1]=$((${sent[$1]:-0} + 1))
}
send_file() { # REASON TOPIC FILE
  attempts=$((attempts + 1))
  it_pub_file "$2" "$3" && sent[$1]=$((${sent[$1]:-0} + 1))
}

# bad_topic: the subscription matches, the station name or socket does not
send bad_topic "cw/bad.station/1/telemetry" "{\"ts\":$now,\"v\":230.0}"
send bad_topic "cw/REJ/0/telemetry" "{\"ts\":$now,\"v\":230.0}"
send bad_topic "cw/REJ/256/telemetry" "{\"ts\":$now,\"v\":230.0}"
# empty
attempts=$((attempts + 1))
it_pub_empty "$T" && sent[empty]=1
# oversize: valid JSON, 20,000 bytes > max_payload 16384
{ printf '{"ts":%s,"v":230.0,"pad":"' "$now"; head -c 20000 /dev/zero | tr '\0' 'x'; printf '"}'; } >"$gen/big.json"
send_file oversize "$T" "$gen/big.json"
# invalid_json: truncated; and a raw control character (0x01) inside a string
send invalid_json "$T" "{\"ts\":$now,\"v\":"
printf '{"ts":%s,"v":230.0,"state":"char\001ging"}' "$now" >"$gen/ctl.json"
send_file invalid_json "$T" "$gen/ctl.json"
# not_object: a bare number; an array whose element is not an object
send not_object "$T" "42"
send not_object "$T" "[7]"
send missing_ts "$T" "{\"v\":230.0,\"w\":100}"
send wrong_type "$T" "{\"ts\":$now,\"v\":\"230.0\"}"
send non_finite "$T" "{\"ts\":$now,\"v\":1e999}"
send out_of_range "$T" "{\"ts\":$now,\"v\":500.0}"
send no_measurement "$T" "{\"ts\":$now,\"state\":\"idle\"}"
# bad_socket: station-topic element without socket; socket field != topic's
send bad_socket "cw/REJ/telemetry" "[{\"ts\":$now,\"v\":230.0}]"
send bad_socket "$T" "{\"ts\":$now,\"socket\":2,\"v\":230.0}"
send future_ts "$T" "{\"ts\":$((now + 3600 * 1000)),\"v\":230.0}"
send too_old "$T" "{\"ts\":$((now - 8 * 86400 * 1000)),\"v\":230.0}"
# duplicate: a valid reading first, then the same ts again and an older one
it_pub cw/REJ/2/telemetry "{\"ts\":$now,\"v\":230.0}"
send duplicate cw/REJ/2/telemetry "{\"ts\":$now,\"v\":231.0}"
send duplicate cw/REJ/2/telemetry "{\"ts\":$((now - 1000)),\"v\":232.0}"

REASONS="bad_topic empty oversize invalid_json not_object missing_ts wrong_type non_finite
out_of_range no_measurement bad_socket future_ts too_old duplicate"
total=0
for r in $REASONS; do total=$((total + ${sent[$r]:-0})); done
it_eq "every reject message published" "$attempts" "$total"

# The duplicates are decided after the earlier ones; wait for their count.
it_wait_eq 20 "${sent[duplicate]}" it_metric 'reason="duplicate"' >/dev/null
it_wait_eq 10 "$total" sh -c "grep -cE '$(echo $REASONS | tr ' ' '|')' '$IT_DIR/deadletter.log'" >/dev/null

dl=$IT_DIR/deadletter.log
for r in $REASONS; do
  it_eq "$r: dead-letter lines" "${sent[$r]}" "$(grep -cw -- "$r" "$dl" 2>/dev/null || true)"
  it_eq "$r: /metrics count" "${sent[$r]}" "$(it_metric "reason=\"$r\"")"
done
it_eq "dead-letter file holds no raw control character" 0 \
  "$(LC_ALL=C grep -c $'\x01' "$dl" 2>/dev/null || true)"
it_eq "dead-letter keeps the topic of a bad_topic message" 1 \
  "$(grep -w bad_topic "$dl" 2>/dev/null | grep -c 'bad\.station')"

it_eq "nothing stored for REJ/1" 0 "$(it_rows REJ 1)"
it_eq "REJ/2: only the first reading stored" 1 "$(it_rows REJ 2)"
it_eq "REJ/2: the stored reading is the first one (v=230)" 230 \
  "$(it_sql "SELECT v::int FROM readings WHERE station='REJ' AND socket=2")"

# The daemon lives on and still ingests.
if it_daemon_alive; then it_ok "daemon alive after every reject"; else it_fail "daemon alive after every reject" alive dead; fi
it_pub cw/REJ/3/telemetry "{\"ts\":$(it_now_ms),\"v\":229.0,\"w\":10}"
it_eq "valid reading after the rejects stored" 1 "$(it_wait_eq 15 1 it_rows REJ 3)"
