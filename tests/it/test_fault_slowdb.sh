#!/usr/bin/env bash
# test_fault_slowdb.sh - a slow database (readings locked for 20 s) under
# load: the writer's ring fills, workers wait, ingest waits, the broker
# queues; nothing is lost and the daemon's memory stays under its bound.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
# Small rings so that the backpressure chain is reached quickly.
IT_EXTRA_CONF='[pipeline]
ring_slots = 1024'
# lib.sh writes [pipeline] already: merge by putting ours in a second file is
# not INI; so override through sed after it_write_config.
it_start_services
IT_EXTRA_CONF=""
it_write_config
sed -i 's/^\[pipeline\]$/[pipeline]\nring_slots = 1024/' "$IT_DIR/chargewatch.conf"
trap it_teardown EXIT
trap 'exit 130' INT TERM
it_daemon_start
it_wait_ready || exit 1

BOUND_KB=${CW_RSS_BOUND_KB:-131072} # 128 MiB: see docs/RELIABILITY.md
total=$(fault_gen 2 1500 "$(($(it_now_ms) - 40 * 60 * 1000))" "$IT_DIR/gen")
rss0=$(fault_rss_kb)
"$IT_PSQL" -X -q -h 127.0.0.1 -p "$CW_PG_PORT" -U postgres -d chargewatch \
  -c "BEGIN; LOCK TABLE readings IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(20); COMMIT;" \
  >/dev/null 2>>"$IT_DIR/psql.err" &
LOCK=$!
IT_BG_PIDS="$IT_BG_PIDS $LOCK"
sleep 0.5
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
stalls=$(it_metric 'cw_writer_stalls')
istalls=$(it_metric 'cw_ingest_stalls')
it_ge "backpressure reached the workers (writer ring waits)" 1 "${stalls:-0}"
it_note "figures: RSS idle ${rss0} KiB, max during the 20 s lock ${max} KiB; writer_stalls=${stalls:-?} ingest_stalls=${istalls:-?}"
if [ "$max" -le "$BOUND_KB" ]; then it_ok "RSS stayed under ${BOUND_KB} KiB (max ${max} KiB)"; else it_fail "RSS bound" "<= $BOUND_KB KiB" "$max KiB"; fi
