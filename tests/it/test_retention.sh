#!/usr/bin/env bash
# test_retention.sh - [postgres] retain_days through the daemon: two daily
# partitions 40 and 39 days old (4 rows of a known replay) are rolled up into
# readings_hourly and dropped when the daemon connects; each drop is logged,
# recorded in retention_log and counted (chargewatch_partitions_dropped_total);
# today's partition stays.
. "$(dirname "$0")/lib.sh"
IT_EXTRA_CONF="[postgres]
retain_days = 30"
it_setup

d40=$(date -u -d '-40 days' +%F)
d39=$(date -u -d '-39 days' +%F)
it_sql "SELECT cw_ensure_partitions('$d40', '$d39');
        INSERT INTO readings (ts, station, socket, w, wh, t, state) VALUES
          ('$d40 10:00:00+00', 'OLD1', 1, 300, 0, 30, 1),
          ('$d40 10:10:00+00', 'OLD1', 1, 300, 5, 31, 1),
          ('$d40 10:20:00+00', 'OLD1', 1, 300, 10, 32, 1),
          ('$d39 08:00:00+00', 'OLD1', 1, 0, 10, 25, 0)" >/dev/null
it_eq "old partitions exist before" 2 \
  "$(it_sql "SELECT count(*) FROM pg_class WHERE relname IN ('readings_$(date -u -d '-40 days' +%Y%m%d)', 'readings_$(date -u -d '-39 days' +%Y%m%d)')")"

# retention runs at connect, before the readiness probe can be stored (then
# hourly and at each UTC day change)
it_daemon_stop
it_daemon_start
it_wait_ready || exit 1
it_eq "retention_log: both days dropped with their row counts" "$d39|1 $d40|3" \
  "$(it_sql "SELECT day || '|' || rows FROM retention_log ORDER BY day DESC" | xargs)"
it_eq "old partitions gone" 0 \
  "$(it_sql "SELECT count(*) FROM pg_class WHERE relname IN ('readings_$(date -u -d '-40 days' +%Y%m%d)', 'readings_$(date -u -d '-39 days' +%Y%m%d)')")"
it_eq "today's partition kept" 1 "$(it_sql "SELECT count(*) FROM pg_class WHERE relname = 'readings_$(date -u +%Y%m%d)'")"
it_eq "rolled up first (10:00 hour: 3 readings, 10 Wh, t 30..32, 300 W, 20 min charging)" "3|10|30|32|300|20" \
  "$(it_sql "SELECT readings, energy_wh, t_min, t_max, w_max, minutes_charging FROM readings_hourly
             WHERE station = 'OLD1' AND hour = '$d40 10:00:00+00'")"
it_eq "chargewatch_partitions_dropped_total" 2 "$(it_metric 'chargewatch_partitions_dropped_total ')"
it_eq "each drop logged" 2 "$(grep -c 'retention: dropped partition readings_' "$IT_DIR/daemon.log")"
