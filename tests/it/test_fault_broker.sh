#!/usr/bin/env bash
# test_fault_broker.sh - mosquitto restarted (persistence on) while it holds
# a backlog for the daemon's persistent session: after the restart the
# daemon reconnects, resubscribes and stores everything exactly once; alerts
# still flow afterwards.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
it_setup

TICKS=1000
total=$(fault_gen 2 "$TICKS" "$(($(it_now_ms) - 40 * 60 * 1000))" "$IT_DIR/gen")
half=$((TICKS / 2))
mkdir -p "$IT_DIR/a" "$IT_DIR/b"
for f in "$IT_DIR"/gen/F*; do
  head -n "$half" "$f" >"$IT_DIR/a/$(basename "$f")"
  tail -n +"$((half + 1))" "$f" >"$IT_DIR/b/$(basename "$f")"
done

fault_publish "$IT_DIR/a" 100 0
it_eq "first half acknowledged by the broker" 0 "$(cat "$IT_DIR/a/pubfail")"
got=$(it_wait_eq 60 "$((total / 2))" fault_count)
it_eq "first half stored" "$((total / 2))" "$got"

# Freeze the daemon so the broker queues the second half for its session.
kill -STOP "$IT_DAEMON_PID"
cont() { kill -CONT "$IT_DAEMON_PID" 2>/dev/null; }
trap 'cont; it_teardown' EXIT
fault_publish "$IT_DIR/b" 100 0
it_eq "second half acknowledged by the broker" 0 "$(cat "$IT_DIR/b/pubfail")"
sleep 1.5 # autosave_interval 1: the queue is on disk; SIGTERM saves again
cw_mqtt_stop "$IT_DIR/mqtt"
cw_mqtt_start "$IT_DIR/mqtt" "$CW_MQTT_PORT" || it_fail "mosquitto restarted" running failed
t0=$(it_now_ms)
cont
got=$(it_wait_eq 90 "$total" fault_count)
t1=$(it_now_ms)
it_eq "every reading stored after the broker restart" "$total" "$got"
it_eq "no duplicates (distinct station, socket, ts)" "$total" "$(fault_distinct)"
it_note "figures: backlog of $((total / 2)) readings drained $((t1 - t0)) ms after the restart"

# Alerts flow on the reconnected publisher.
it_sub_bg 'cw/alerts/#' "$IT_DIR/alerts.sub"
it_pub "cw/FBR/3/telemetry" "$(it_reading "$(it_now_ms)" 200 97.0)"
it_wait 20 grep -q 'FBR/3/thermal_runaway' "$IT_DIR/alerts.sub" &&
  it_ok "alert published after the broker restart" ||
  it_fail "alert published after the broker restart" "a cw/alerts/FBR/3/thermal_runaway message" "none"
