#!/bin/bash
# rowsize.sh - bytes per reading row (heap + unique index) with the real schema
# (schema/001_init.sql): a throwaway PostgreSQL (tests/services.sh) under
# build/rowsize, N_TICKS x 20,000 sockets (2,000 stations x 10) loaded with COPY
# in time order into one daily partition, VACUUM ANALYZE, then one line:
# rows|heap bytes|index bytes|total bytes|bytes per row. docs/SCALING.md.
#   bash bench/rowsize.sh     N_TICKS=50 (default): 1,000,000 rows; at most 2879 (one day)
set -e
cd "$(dirname "$0")/.."
. tests/services.sh
D=$PWD/build/rowsize
rm -rf "$D"
mkdir -p "$D"
trap 'cw_pg_stop "$D/pg"' EXIT
PORT=$(cw_free_port 27432)
cw_pg_start "$D/pg" "$PORT"
PSQL="$(cw_pg_bindir)/psql -X -q -h 127.0.0.1 -p $PORT -U postgres -d chargewatch"
$PSQL -f schema/001_init.sql >/dev/null
$PSQL -c "SELECT cw_ensure_partition('2025-11-29')" >/dev/null
N_TICKS=${N_TICKS:-50}
if [ "$N_TICKS" -lt 1 ] || [ "$N_TICKS" -gt 2879 ]; then echo "rowsize: N_TICKS must be 1..2879" >&2; exit 2; fi
awk -v ticks="$N_TICKS" 'BEGIN { srand(1); for (k = 0; k < ticks; k++) for (s = 1; s <= 2000; s++) for (o = 1; o <= 10; o++) {
  w = (rand() < 0.4) ? 150 + rand() * 300 : 0;
  printf "%s,CX-%04d,%d,%.1f,%.2f,%.1f,%.1f,%.1f,%.1f,f,%d\n", sprintf("2025-11-29 %02d:%02d:%02d+00", int((k * 30 + s % 30) / 3600), int((k * 30 + s % 30) / 60) % 60, (k * 30 + s % 30) % 60), s, o, 220 + rand() * 10, w / 225, w, rand() * 40000, 20 + rand() * 20, 18 + rand() * 5, (w > 0) ? 1 : 0 } }' > "$D/rows.csv"
$PSQL -c "\\copy readings (ts, station, socket, v, a, w, wh, t, t_amb, smoke, state) FROM '$D/rows.csv' WITH (FORMAT csv)"
$PSQL -c "VACUUM ANALYZE readings"
$PSQL -tAc "SELECT count(*), pg_relation_size('readings_20251129'), pg_indexes_size('readings_20251129'), pg_total_relation_size('readings_20251129'), round(pg_total_relation_size('readings_20251129')::numeric / count(*), 1) FROM readings_20251129"
rm -f "$D/rows.csv"
