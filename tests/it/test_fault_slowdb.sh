#!/usr/bin/env bash
# test_fault_slowdb.sh - a slow database (readings locked for 20 s) under
# load: the writer's ring fills, workers wait, ingest waits, the broker
# queues; nothing is lost and the daemon's memory stays under its bound.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
# Small rings (256 KiB) so that the backpressure chain is reached quickly;
# the key goes into the [pipeline] section lib.sh writes.
it_start_services
it_write_config
sed -i 's/^\[pipeline\]$/[pipeline]\nring_slots = 1024/' "$IT_DIR/chargewatch.conf"
trap it_teardown EXIT
trap 'exit 130' INT TERM
it_daemon_start
it_wait_ready || exit 1

total=$(fault_gen 2 $((1500 * FAULT_SCALE)) "$(($(it_now_ms) - (1500 * FAULT_SCALE + 900) * 1000))" "$IT_DIR/gen")
rss0=$(fault_rss_kb)
# The bound of docs/RELIABILITY.md: idle RSS + per worker an ingest and a
# reading ring of R bytes (inline: one reading ring of 2 R) and an alert ring
# of min(R, 256 KiB), + the writer's
# batch_rows * 272 B (COPY buffer 96 B, parsed rows 80 B, bisection scratch
# 96 B per row) + 16 MiB for the libraries' buffers and malloc arenas.
# Here 1 worker, R = 1024 slots * 256 B = 256 KiB, batch_rows = 2000.
R=262144
BOUND_KB=${CW_RSS_BOUND_KB:-$((rss0 + (2 * R + R + 2000 * 272) / 1024 + 16384))}
"$IT_PSQL" -X -q -h 127.0.0.1 -p "$CW_PG_PORT" -U postgres -d chargewatch \
  -c "BEGIN; LOCK TABLE readings IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(20); COMMIT;" \
  >/dev/null 2>>"$IT_DIR/psql.err" &
LOCK=$!
IT_BG_PIDS="$IT_BG_PIDS $LOCK"
it_wait 20 fault_locked readings || it_fail "lock on readings taken (first stream)" granted "not granted"
fault_publish "$IT_DIR/gen" 300 0 &
PUB=$!
max=0
while kill -0 "$LOCK" 2>/dev/null; do
  r=$(fault_rss_kb)
  [ "${r:-0}" -gt "$max" ] && max=$r
  sleep 0.5
done
wait "$PUB"
it_eq "publishers: broker acknowledged every message" 0 "$(cat "$IT_DIR/gen/pubfail")"
got=$(it_wait_eq 120 "$total" fault_count)
it_eq "every reading stored after the lock is released" "$total" "$got"
it_eq "no duplicates (distinct station, socket, ts)" "$total" "$(fault_distinct)"
stalls=$(it_metric 'chargewatch_writer_stalls_total')
istalls=$(it_metric 'chargewatch_ingest_stalls_total')
it_ge "backpressure reached the workers (writer ring waits)" 1 "${stalls:-0}"
it_note "figures: RSS idle ${rss0} KiB, max during the 20 s lock ${max} KiB; writer_stalls=${stalls:-?} ingest_stalls=${istalls:-?}"
if [ "$max" -le "$BOUND_KB" ]; then it_ok "RSS stayed under ${BOUND_KB} KiB (max ${max} KiB)"; else it_fail "RSS bound" "<= $BOUND_KB KiB" "$max KiB"; fi

# --- SIGTERM while the lock is held and the rings are full: the writer gives
# up on the database within the shutdown budget (cancels the blocked COPY),
# spools what it holds and exits 0 in time; after the lock, a restart stores
# everything exactly once.
total2=$(fault_gen 2 600 "$(($(it_now_ms) - 14 * 60 * 1000))" "$IT_DIR/gen2")
before2=$(fault_count)
"$IT_PSQL" -X -q -h 127.0.0.1 -p "$CW_PG_PORT" -U postgres -d chargewatch \
  -c "BEGIN; LOCK TABLE readings IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;" \
  >/dev/null 2>>"$IT_DIR/psql.err" &
LOCK=$!
IT_BG_PIDS="$IT_BG_PIDS $LOCK"
it_wait 20 fault_locked readings || it_fail "lock on readings taken" granted "not granted"
fault_publish "$IT_DIR/gen2" 300 0 &
PUB=$!
IT_BG_PIDS="$IT_BG_PIDS $PUB"
ring_used() { it_metric "ring_used_bytes{ring=\"$1\""; }
# One worker (the default) runs inline: no ingest ring (capacity 0), the
# reading ring is the one that fills and holds the receive thread back.
icap=$(it_metric 'ring_capacity_bytes{ring="ingest"')
icap=${icap:-0}
full=0
for _ in $(seq 1 100); do
  if { [ "$icap" = 0 ] || [ "$(ring_used ingest)" -ge $((R * 3 / 4)) ]; } &&
    [ "$(ring_used readings)" -ge $((R * 3 / 4)) ]; then
    full=1
    break
  fi
  sleep 0.1
done
it_eq "rings over 3/4 full before the SIGTERM" 1 "$full"
it_daemon_stop
it_eq "SIGTERM with the table locked: exit 0" 0 "$IT_EXIT_RC"
if [ "$IT_EXIT_MS" -le $(((IT_SHUTDOWN_S + 1) * 1000)) ]; then
  it_ok "SIGTERM with the table locked: exited within shutdown_timeout_s (took $IT_EXIT_MS ms)"
else
  it_fail "SIGTERM with the table locked: exited within shutdown_timeout_s" "<= $((IT_SHUTDOWN_S * 1000)) ms" "$IT_EXIT_MS ms"
fi
wait "$PUB"
it_eq "publishers (second stream): broker acknowledged every message" 0 "$(cat "$IT_DIR/gen2/pubfail")"
it_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$LOCK" 2>/dev/null
it_daemon_start
it_wait_ready || exit 1
got2=$(($(it_wait_eq 90 "$((before2 + total2))" fault_count) - before2))
it_eq "second stream stored after SIGTERM under the lock and a restart" "$total2" "$got2"
it_eq "no duplicates after the restart" "$(fault_count)" "$(fault_distinct)"
