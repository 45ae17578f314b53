#!/usr/bin/env bash
# test_metrics.sh - what /metrics and the diagnostic log say about the
# detectors: a probe that steps 25.5 -> 33.4 C in 50 s at zero current and
# then stays flat (docs/DETECTORS.md, thermal) raises no alert, is logged
# once as a sensor event, counted (chargewatch_sensor_events_total) and its
# socket flagged (chargewatch_sensor_suspect).
. "$(dirname "$0")/lib.sh"
IT_EXTRA_CONF="[detectors]
offline_min_s = 3600
offline_max_s = 7200"
it_setup

now=$(it_now_ms)
t0=$((now - 2400000))
awk -v t0="$t0" 'BEGIN {
  for (x = 0; x <= 2400; x += 15) {
    t = x <= 600 ? 25.5 : x >= 650 ? 33.4 : 25.5 + (33.4 - 25.5) * (x - 600) / 50;
    printf "{\"ts\":%.0f,\"v\":230.0,\"a\":0.0,\"w\":0.0,\"t\":%.2f}\n", t0 + x * 1000, t
  }
}' >"$IT_DIR/probe.lines"
n=$(wc -l <"$IT_DIR/probe.lines")
it_pub_lines cw/PRB1/1/telemetry "$IT_DIR/probe.lines"
it_eq "probe readings stored" "$n" "$(it_wait_eq 20 "$n" it_rows PRB1 1)"
it_eq "no thermal alert for a probe step" 0 \
  "$(it_sql "SELECT count(*) FROM alerts WHERE station = 'PRB1'")"
it_eq "sensor event counted" 1 "$(it_wait_eq 5 1 it_metric 'chargewatch_sensor_events_total ')"
it_eq "sensor suspect gauge" 1 "$(it_metric 'chargewatch_sensor_suspect ')"
it_eq "sensor event logged at info, once" 1 \
  "$(grep -c 'PRB1/1: temperature step 25.5->33.4 C at no current, no continuation: sensor event' "$IT_DIR/daemon.log")"

# The diagnostic log, not on journald's stream here: every line starts with
# an RFC 3339 UTC time with milliseconds and a level word.
it_eq "diagnostic log: every line has an RFC 3339 UTC time" 0 \
  "$(grep -v '^=== ' "$IT_DIR/daemon.log" | grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (error|warn|info|debug): ')"
