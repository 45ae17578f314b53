#!/bin/bash
# test_share_negative.sh - negative control for docs/SCALING.md: MQTT shared
# subscriptions are not station-affine. Two subscribers share
# $share/g/cw/+/+/telemetry on mosquitto; a city of 20 stations x 6 sockets
# publishes one reading per socket. mosquitto hands each message to the next
# member in turn, so a station's sockets end up split across both consumers,
# which breaks the station-level detectors (station breaker sum, station
# silent) of a daemon that only sees half of them.
# The split is what this test documents, not a property the suite relies on:
# should a future mosquitto keep stations together, the control still reports
# ok, with a note. What must hold either way: every message delivered once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh"

nats_it_init
cw_mqtt_start "$IT_DIR/mqtt" "$(cw_free_port $((21883 + RANDOM % 2000)))" ||
  { it_fail "mosquitto started" "running" "start failure"; exit 1; }

for m in a b; do it_sub_bg "\$share/g/cw/+/+/telemetry" "$IT_DIR/sub-$m.out"; done
"$GEN" -o "$IT_DIR/city.cap" -s 20 -k 6 -i 30 -d 30 --seed 1 --anomaly-rate 0 2>>"$IT_DIR/gen.log"
"$REPLAY" -f "$IT_DIR/city.cap" -u "$CW_MQTT_URI" -q 1 -P 1 --client-prefix cw-it-share >>"$IT_DIR/replay.log" 2>&1
got=$(it_wait_eq 20 120 sh -c "cat '$IT_DIR'/sub-*.out | wc -l")
sleep 0.5
it_eq "every message delivered once to the share group" "120 120" \
  "$(cat "$IT_DIR"/sub-*.out | wc -l) $(cat "$IT_DIR"/sub-*.out | awk '{print $2}' | sort -u | wc -l)"
# Stations (topic level 2) seen by both members.
split=$(for m in a b; do awk '{ split($2, t, "/"); print t[2] }' "$IT_DIR/sub-$m.out" | sort -u; done |
  sort | uniq -d | wc -l)
it_note "received: member a $(wc -l <"$IT_DIR/sub-a.out"), member b $(wc -l <"$IT_DIR/sub-b.out") ($got in total)"
if [ "$split" -gt 0 ]; then
  it_ok "share_negative_control_splits_stations ($split of 20 stations split across both members)"
else
  it_note "mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}') kept every station on one member: the documented split was not observed"
  it_ok "share_negative_control_splits_stations (not observed on this mosquitto; see note)"
fi
