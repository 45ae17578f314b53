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

# Process and build metrics (docs/OPERATIONS.md section 5), each with a
# plausible value.
M=$(it_http /metrics)
val() { echo "$M" | grep -v '^#' | grep -F -- "$1" | head -1 | awk '{print $NF}'; }
it_eq "chargewatch_up: 1 with the database and the broker connected" 1 "$(val 'chargewatch_up ')"
it_eq "chargewatch_alert_publisher_connected: 1" 1 "$(val 'chargewatch_alert_publisher_connected ')"
it_eq "chargewatch_build_info: version and a commit" 1 \
  "$(echo "$M" | grep -cE '^chargewatch_build_info\{version="[0-9]+\.[0-9]+\.[0-9]+",commit="([0-9a-f]{7,}|unknown)"\} 1$')"
it_eq "process_cpu_seconds_total above 0" 1 "$(val process_cpu_seconds_total | awk '{print ($1 > 0)}')"
it_eq "process_resident_memory_bytes between 1 MiB and 1 GiB" 1 \
  "$(val process_resident_memory_bytes | awk '{print ($1 > 1048576 && $1 < 1073741824)}')"
it_eq "process_open_fds: at least stdin/out/err, below process_max_fds" 1 \
  "$(echo "$(val process_open_fds) $(val process_max_fds)" | awk '{print ($1 >= 3 && $1 < $2)}')"
# the count the kernel lists for the process, within a few (a connection
# opened or closed between the two looks); counted by listing, it may be up
# to 5 s old on kernels before 6.2
it_eq "process_open_fds: the process's own /proc/PID/fd count, within 3" 1 \
  "$(echo "$(val process_open_fds) $(ls "/proc/$IT_DAEMON_PID/fd" | wc -l)" | awk '{d = $1 - $2; print (d <= 3 && d >= -3)}')"
it_eq "process_start_time_seconds: within the last hour" 1 \
  "$(val process_start_time_seconds | awk -v now="$(date +%s)" '{print ($1 <= now && $1 > now - 3600)}')"
it_eq "chargewatch_spool_limit_bytes: [spool] max_bytes" 1073741824 "$(val chargewatch_spool_limit_bytes)"
it_eq "chargewatch_last_commit_timestamp_seconds: within the last hour" 1 \
  "$(val chargewatch_last_commit_timestamp_seconds | awk -v now="$(date +%s)" '{print ($1 <= now + 1 && $1 > now - 3600)}')"
it_eq "no [cluster] metrics without [cluster] (chargewatch_shard_*)" 0 "$(echo "$M" | grep -c '^chargewatch_shard')"
it_eq "chargewatch_alert_events_total has the event label" 1 \
  "$(echo "$M" | grep -c '^chargewatch_alert_events_total{kind="overload",severity="warning",event="raised"} 0$')"

# Latency histograms and the open-alerts gauge (docs/OPERATIONS.md section 5).
# The probe's readings (ts every 15 s from 40 min back to now) were published
# at once: reading x s into the probe is 2400 - x s (+ the publish delay, a
# few seconds) late. Each is in chargewatch_ingest_lag_seconds and, once
# committed, in chargewatch_publish_to_store_seconds. The set-up's own
# readiness readings (fresh, counted in readings_accepted_total) come on top.
acc=$(val 'chargewatch_readings_accepted_total ')
extra=$((acc - n))
it_eq "ingest_lag_seconds: one observation per accepted reading" "$acc" "$(val 'chargewatch_ingest_lag_seconds_count ')"
it_eq "ingest_lag_seconds: count = the +Inf bucket = le 3600 (at most 40 min late)" "$acc $acc" \
  "$(val 'chargewatch_ingest_lag_seconds_bucket{le="+Inf"}') $(val 'chargewatch_ingest_lag_seconds_bucket{le="3600"}')"
it_eq "ingest_lag_seconds: of the probe only the last reading within 10 s, the last two within 30 s" \
  "$((1 + extra)) $((2 + extra))" \
  "$(val 'chargewatch_ingest_lag_seconds_bucket{le="10"}') $(val 'chargewatch_ingest_lag_seconds_bucket{le="30"}')"
it_eq "publish_to_store_seconds: one observation per committed row" "$(val 'chargewatch_rows_committed_total ') $acc" \
  "$(val 'chargewatch_publish_to_store_seconds_count ') $acc"
it_eq "publish_to_store_seconds: the sum is the rows' ages (2400 - x s each, and up to a minute more)" 1 \
  "$(val 'chargewatch_publish_to_store_seconds_sum ' | awk -v n="$n" -v a="$acc" '{print ($1 >= (n - 1) * 1200 && $1 < (n - 1) * 1200 + a * 60)}')"
it_eq "publish_to_alert_seconds: none yet" 0 "$(val 'chargewatch_publish_to_alert_seconds_count ')"
gauge_open='chargewatch_alerts_open{kind="thermal_runaway",severity="critical",state="open"} '
gauge_ack='chargewatch_alerts_open{kind="thermal_runaway",severity="critical",state="acknowledged"} '
it_eq "alerts_open: every kind x severity x state not closed, 0 without alerts" "40 0" \
  "$(echo "$M" | grep -c '^chargewatch_alerts_open{') $(val "$gauge_open")"

now=$(it_now_ms)
it_pub cw/HOT1/2/telemetry "$(it_reading $((now - 2000)) 300 30.0)"
it_pub cw/HOT1/2/telemetry "$(it_reading $((now - 1000)) 300 95.0)"
it_eq "a thermal alert raised" 1 "$(it_wait_eq 15 1 it_events HOT1 2 thermal_runaway raised)"
it_eq "publish_to_alert_seconds: the raise observed" 1 "$(it_wait_eq 5 1 it_metric 'chargewatch_publish_to_alert_seconds_count ')"
it_eq "publish_to_alert_seconds: within a minute of its reading" 1 \
  "$(it_metric 'chargewatch_publish_to_alert_seconds_bucket{le="60"}')"
it_eq "alerts_open: the critical thermal alert, open" 1 "$(it_wait_eq 25 1 it_metric "$gauge_open")"
it_sql "SELECT cw_ack(id, 'tester') FROM alerts WHERE station = 'HOT1'" >/dev/null
it_eq "alerts_open: acknowledged, it moves to that state" 1 "$(it_wait_eq 25 1 it_metric "$gauge_ack")"
it_eq "alerts_open: and leaves open" 0 "$(it_metric "$gauge_open")"
