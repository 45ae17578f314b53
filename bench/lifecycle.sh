#!/usr/bin/env bash
# lifecycle.sh - what the data lifecycle costs (schema/003_ops.sql): bytes
# per stored reading and per hourly rollup row, the time to roll up an hour
# of a city, and the time of a station's monthly report read from the
# rollups, on a private PostgreSQL. Rows per day are arithmetic (sockets x
# readings per socket per day); bytes are measured (table + indexes) and
# scaled. Prints a Markdown section for bench/RESULTS.md.
#   bash bench/lifecycle.sh [SOCKETS] [INTERVAL_S] [HOURS]
# Defaults 1000 sockets, one reading per 10 s, 2 hours generated. The
# sample city (bench/sample: 12 stations x 10 sockets, 10 s) is 120 10 24:
# a whole day rolled up in one call; 20000 10 1 is an hour of the 20,000-
# socket city (hours roll up independently: a day is 24 of them).
set -eu
cd "$(dirname "$0")/.."
. tests/services.sh
SOCKETS=${1:-1000}
INTERVAL=${2:-10}
HOURS=${3:-2} # readings generated: SOCKETS x HOURS hours, 1..24 (bytes per row scale linearly)
DIR=build/bench-lifecycle
rm -rf "$DIR"
mkdir -p "$DIR"
port=$(cw_free_port $((27432 + RANDOM % 1000)))
cw_pg_start "$DIR/pg" "$port" >/dev/null
trap 'cw_pg_stop "$DIR/pg"' EXIT
PSQL=("$(cw_pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d chargewatch)
for f in schema/[0-9][0-9][0-9]_*.sql; do "${PSQL[@]}" -f "$f" >/dev/null; done
q() { "${PSQL[@]}" -tAc "$1"; }
ms() { # SQL -> elapsed ms of the statement (server side, EXPLAIN ANALYZE not used: the whole call)
  local t0 t1
  t0=$(date +%s%N)
  q "$1" >/dev/null
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
stations=$(((SOCKETS + 9) / 10))
q "SELECT cw_ensure_partitions('2031-05-04', '2031-05-05')" >/dev/null
# One reading per socket per INTERVAL: charging at ~300 W, wh rising, t near 30 C.
gen_ms=$(ms "INSERT INTO readings (ts, station, socket, v, a, w, wh, t, t_amb, smoke, state)
  SELECT '2031-05-04 00:00+00'::timestamptz + make_interval(secs => k * $INTERVAL),
         'CX-' || lpad((s / 10 + 1)::text, 4, '0'), s % 10 + 1,
         229.5 + (k % 7) * 0.1, 1.3, 300 + (k % 11), k * $INTERVAL * 300 / 3600.0, 30 + (k % 13) * 0.1, 21, false, 1
  FROM generate_series(0, $SOCKETS - 1) s, generate_series(0, $HOURS * 3600 / $INTERVAL - 1) k")
q "VACUUM ANALYZE readings_20310504" >/dev/null
rows=$(q "SELECT count(*) FROM readings_20310504")
rbytes=$(q "SELECT pg_total_relation_size('readings_20310504')")
roll_ms=$(ms "SELECT cw_rollup_readings('2031-05-04 00:00+00', '2031-05-04 00:00+00'::timestamptz + interval '$HOURS hours')")
# A month of rollups for the whole city, then one station's month by day.
q "INSERT INTO readings_hourly SELECT 'CX-' || lpad((s / 10 + 1)::text, 4, '0'), s % 10 + 1, h, 75, 31, 29, 310, 60, 3600 / $INTERVAL
   FROM generate_series(0, $SOCKETS - 1) s,
        generate_series('2031-04-01 00:00+00'::timestamptz, '2031-04-30 23:00+00', interval '1 hour') h" >/dev/null
q "INSERT INTO stations (code) SELECT 'CX-' || lpad(i::text, 4, '0') FROM generate_series(1, $stations) i ON CONFLICT DO NOTHING" >/dev/null
q "VACUUM ANALYZE readings_hourly" >/dev/null
hrows=$(q "SELECT count(*) FROM readings_hourly")
hbytes=$(q "SELECT pg_total_relation_size('readings_hourly')")
report="SELECT day, sum(energy_wh), max(t_max), sum(minutes_charging) FROM station_daily
        WHERE station = 'CX-0042' AND day BETWEEN '2031-04-01' AND '2031-04-30' GROUP BY day ORDER BY day"
q "$report" >/dev/null # warm
rep=()
for i in 1 2 3 4 5; do rep+=("$(ms "$report")"); done
rep_sorted=$(printf '%s\n' "${rep[@]}" | sort -n | xargs)
per_day=$((86400 / INTERVAL))
awk -v s="$SOCKETS" -v pd="$per_day" -v rows="$rows" -v rb="$rbytes" -v hr="$hrows" -v hb="$hbytes" -v hours="$HOURS" \
    -v gen="$gen_ms" -v roll="$roll_ms" -v rep="$rep_sorted" -v iv="$INTERVAL" -v st="$stations" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  bpr = rb / rows; bph = hb / hr
  printf "### bench/lifecycle.sh %d %d %d (%d sockets, %d stations, one reading per %d s, %d h generated), %s\n\n", s, iv, hours, s, st, iv, hours, strftime("%Y-%m-%d", systime(), 1)
  printf "| figure | measured |\n|---|---|\n"
  printf "| readings table + index, bytes per row (%d rows) | %.0f B |\n", rows, bpr
  printf "| readings_hourly table + index, bytes per row (%d rows) | %.0f B |\n", hr, bph
  printf "| cw_rollup_readings over the %d h generated (%d rows in, one call) | %d ms |\n", hours, rows, roll
  printf "| ... per day of this city (x 24 / %d) | %.0f s |\n", hours, roll * 24 / hours / 1000.0
  printf "| a station month by day from station_daily (30 rows, %d hourly rows in the table; 5 runs) | %s ms |\n", hr, rep
  printf "| readings per day at this size: rows, bytes | %.2f million, %.2f GB |\n", s * pd / 1e6, s * pd * bpr / 1e9
  printf "| readings_hourly per day at this size: rows, bytes | %d, %.1f MB |\n", s * 24, s * 24 * bph / 1e6
  printf "\nInsert of the %d generated readings: %d ms (generate_series, one statement). Load average at the end: %s.\n", rows, gen, load
}'
