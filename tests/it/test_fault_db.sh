#!/usr/bin/env bash
# test_fault_db.sh - PostgreSQL stopped for 10 s, then started, twice, while
# a paced stream of ~1,000 readings/s flows (DESIGN.md section 5, issue
# "nothing lost" #1): the writer spools to disk meanwhile and replays in
# order; afterwards every valid reading is stored exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
it_setup

TICKS=1200
total=$(fault_gen 2 "$TICKS" "$(($(it_now_ms) - 40 * 60 * 1000))" "$IT_DIR/gen")
fault_publish "$IT_DIR/gen" 40 1 &
PUB=$!
IT_BG_PIDS="$IT_BG_PIDS $PUB"

outage() { # N
  local t0 t1 health
  cw_pg_stop "$IT_PG_DIR"
  t0=$(it_now_ms)
  sleep 3
  it_http /healthz >/dev/null
  health=$IT_HTTP_STATUS
  sleep 7
  cw_pg_start "$IT_PG_DIR" "$CW_PG_PORT" >/dev/null || it_fail "postgres restarted ($1)" running failed
  t1=$(it_now_ms)
  it_eq "outage $1: /healthz says 503 while the database is down" 503 "$health"
  it_note "outage $1: database down for $((t1 - t0)) ms"
}

sleep 4
outage 1
sleep 6
outage 2
wait "$PUB"
it_eq "publishers: broker acknowledged every message" 0 "$(cat "$IT_DIR/gen/pubfail")"
t_pub_done=$(it_now_ms)
got=$(it_wait_eq 120 "$total" fault_count)
t_caught_up=$(it_now_ms)
it_eq "every reading stored after two outages" "$total" "$got"
it_eq "no duplicates (distinct station, socket, ts)" "$total" "$(fault_distinct)"
spooled=$(it_metric 'cw_batches_spooled')
it_ge "the spool was used during the outages (batches spooled)" 1 "${spooled:-0}"
it_note "figures: $total readings, batches spooled=${spooled:-?}, caught up $((t_caught_up - t_pub_done)) ms after the last publish"
it_http /healthz >/dev/null
it_eq "/healthz back to 200" 200 "$IT_HTTP_STATUS"
