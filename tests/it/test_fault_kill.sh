#!/usr/bin/env bash
# test_fault_kill.sh - SIGKILL under load, then restart (docs/RELIABILITY.md):
# (1) with the database down, so batches sit in the spool: after the restart
# the spool replays intact; (2) with the database up: every message the broker
# saw acknowledged is in the ingest journal, so after the restart every
# reading sent is in the database exactly once; (3) the same with the rings
# full at the SIGKILL.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
it_start_services
it_write_config
sed -i 's/^\[pipeline\]$/[pipeline]\nring_slots = 512/' "$IT_DIR/chargewatch.conf"
trap it_teardown EXIT
trap 'exit 130' INT TERM
it_daemon_start
it_wait_ready || exit 1

# --- (1) spool survives SIGKILL
total1=$(fault_gen 1 300 "$(($(it_now_ms) - (1500 * FAULT_SCALE + 1500) * 1000))" "$IT_DIR/g1")
cw_pg_stop "$IT_PG_DIR"
fault_publish "$IT_DIR/g1" 100 0
it_eq "phase 1: broker acknowledged every message" 0 "$(cat "$IT_DIR/g1/pubfail")"
spooled_ok=1
it_wait 30 sh -c "[ \"\$(ls '$IT_DIR/spool' 2>/dev/null | wc -l)\" -gt 0 ]" || spooled_ok=0
sleep 1 # batch_ms 100: the last batch goes to the spool too
kill -KILL "$IT_DAEMON_PID"
wait "$IT_DAEMON_PID" 2>/dev/null
IT_DAEMON_PID=""
it_eq "phase 1: spool segments on disk before SIGKILL" 1 "$spooled_ok"
cw_pg_start "$IT_PG_DIR" "$CW_PG_PORT" >/dev/null
it_daemon_start
it_wait_ready || exit 1
got=$(it_wait_eq 60 "$total1" fault_count)
it_eq "phase 1: spooled readings replayed after SIGKILL + restart" "$total1" "$got"

# --- (2) loss window under load
total2=$(fault_gen 2 $((1500 * FAULT_SCALE)) "$(($(it_now_ms) - (1500 * FAULT_SCALE + 900) * 1000))" "$IT_DIR/g2")
before=$(fault_count)
fault_publish "$IT_DIR/g2" 200 0 &
PUB=$!
IT_BG_PIDS="$IT_BG_PIDS $PUB"
for _ in $(seq 1 200); do
  n=$(fault_count)
  [ "$((n - before))" -ge 5000 ] && break
  sleep 0.05
done
kill -KILL "$IT_DAEMON_PID"
wait "$IT_DAEMON_PID" 2>/dev/null
IT_DAEMON_PID=""
at_kill=$(fault_count)
wait "$PUB"
it_eq "phase 2: broker acknowledged every message" 0 "$(cat "$IT_DIR/g2/pubfail")"
it_daemon_start
it_wait_ready || exit 1
want=$((total1 + total2))
# The lost readings never come: wait for the count to reach want or to stop
# moving (the broker's backlog drained) instead of the full timeout.
got=$(fault_wait_settled 60 "$want")
# Replayed: what the journal held beyond the committed mark at the SIGKILL.
replayed() { grep -o 'replayed [0-9]* messages' "$IT_DIR/daemon.log" | tail -1 | awk '{print $2}'; }
it_note "figures: SIGKILL with $((at_kill - before)) rows of phase 2 committed; $(replayed) messages replayed from the journal at the restart"
it_eq "phase 2: every reading sent is stored after SIGKILL + restart" "$want" "$got"
it_eq "phase 2: no reading stored twice" "$got" "$(fault_distinct)"

# --- (3) worst case: the rings are full when the SIGKILL comes. A lock on
# readings stalls the writer's COPY, the reading ring and then the ingest ring
# fill, so everything the window allows is at risk at once.
total3=$(fault_gen 2 600 "$(($(it_now_ms) - 14 * 60 * 1000))" "$IT_DIR/g3")
before3=$(fault_count)
"$IT_PSQL" -X -q -h 127.0.0.1 -p "$CW_PG_PORT" -U postgres -d chargewatch \
  -c "BEGIN; LOCK TABLE readings IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(8); COMMIT;" \
  >/dev/null 2>>"$IT_DIR/psql.err" &
LOCK=$!
IT_BG_PIDS="$IT_BG_PIDS $LOCK"
it_wait 20 fault_locked readings || it_fail "phase 3: lock on readings taken" granted "not granted"
fault_publish "$IT_DIR/g3" 100 0 &
PUB=$!
IT_BG_PIDS="$IT_BG_PIDS $PUB"
ring_used() { it_metric "ring_used_bytes{ring=\"$1\""; }
RING=131072 # ring_slots = 512: 512 * 256 B
# One worker (the default) runs inline: no ingest ring (capacity 0), the
# reading ring (2 x 128 KiB, the lane's whole ring budget) is the one that
# fills and holds the receive thread back.
icap=$(it_metric 'ring_capacity_bytes{ring="ingest"')
icap=${icap:-0}
rcap=$(it_metric 'ring_capacity_bytes{ring="readings"')
rcap=${rcap:-$RING}
# Full: both rings hold more than 3/4 of their capacity (a ring refuses a
# record that does not fit whole, so "full" is never quite 100 %).
full=0
for _ in $(seq 1 100); do
  if { [ "$icap" = 0 ] || [ "$(ring_used ingest)" -ge $((RING * 3 / 4)) ]; } &&
    [ "$(ring_used readings)" -ge $((rcap * 3 / 4)) ]; then
    full=1
    break
  fi
  sleep 0.1
done
it_note "phase 3 at SIGKILL: ingest ring $(ring_used ingest) B, reading ring $(ring_used readings) B used"
kill -KILL "$IT_DAEMON_PID"
wait "$IT_DAEMON_PID" 2>/dev/null
IT_DAEMON_PID=""
it_eq "phase 3: the rings over 3/4 full at the SIGKILL" 1 "$full"
wait "$PUB"
wait "$LOCK"
it_eq "phase 3: broker acknowledged every message" 0 "$(cat "$IT_DIR/g3/pubfail")"
it_daemon_start
it_wait_ready || exit 1
got3=$(($(fault_wait_settled 60 "$((before3 + total3))") - before3))
it_note "figures: SIGKILL with full rings: $(replayed) messages replayed from the journal"
it_eq "phase 3: every reading sent is stored after SIGKILL with full rings" "$total3" "$got3"
it_eq "phase 3: no duplicates" "$(fault_count)" "$(fault_distinct)"
