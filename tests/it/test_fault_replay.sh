#!/usr/bin/env bash
# test_fault_replay.sh - a large spool replays exactly once, in order, and at
# a useful rate: 100,000 readings arrive while PostgreSQL is down (all of them
# spooled), the daemon is stopped and started again over the spool, then the
# database comes back. Also measures the spool replay rate (rows/s) for
# docs/RELIABILITY.md.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
it_setup

total=$(fault_gen 2 $((5000 * FAULT_SCALE)) "$(($(it_now_ms) - (5000 * FAULT_SCALE + 600) * 1000))" "$IT_DIR/gen")
cw_pg_stop "$IT_PG_DIR"
fault_publish "$IT_DIR/gen" 1000 0
it_eq "publishers: broker acknowledged every message" 0 "$(cat "$IT_DIR/gen/pubfail")"
# everything received goes to the spool (nothing can be committed)
accepted_all() { [ "$(it_metric 'chargewatch_readings_accepted_total')" -ge "$total" ] 2>/dev/null; }
it_wait 60 accepted_all ||
  it_fail "all readings accepted while the database is down" ">= $total" "$(it_metric 'chargewatch_readings_accepted_total')"
it_daemon_stop
it_eq "SIGTERM with the database down: exit 0" 0 "$IT_EXIT_RC"
it_note "figures: stop with the database down took $IT_EXIT_MS ms"
spool_kb=$(du -sk "$IT_DIR/spool/readings" | awk '{print $1}')

# Start over the spool with the database down, then bring it back.
it_daemon_start
sleep 2
it_daemon_alive && it_ok "daemon runs over a spool with the database down" ||
  it_fail "daemon runs over a spool with the database down" running exited
cw_pg_start "$IT_PG_DIR" "$CW_PG_PORT" >/dev/null || it_fail "postgres restarted" running failed
t0=$(it_now_ms)
it_wait_eq 60 1 it_metric 'chargewatch_db_connected' >/dev/null
tc=$(it_now_ms)
got=$(it_wait_eq 120 "$total" fault_count)
t1=$(it_now_ms)
it_eq "every spooled reading stored after the restart" "$total" "$got"
it_eq "no duplicates (distinct station, socket, ts)" "$total" "$(fault_distinct)"
# Each socket's series is complete: one reading a second from its first
# to its last (count = span in seconds + 1).
gaps=$(it_sql "SELECT count(*) FROM (SELECT station, socket, count(*) n,
                 (extract(epoch FROM max(ts) - min(ts)))::bigint + 1 span
               FROM readings WHERE station LIKE 'F%' GROUP BY 1, 2) s WHERE n <> span")
it_eq "every socket's series is complete" 0 "$gaps"
ms=$((t1 - tc))
it_note "figures: $total readings (${spool_kb} KiB of spool): reconnected $((tc - t0)) ms after the database returned, replayed in $ms ms: $((total * 1000 / (ms > 0 ? ms : 1))) rows/s"
it_wait_eq 20 0 it_metric 'chargewatch_spool_bytes' >/dev/null &&
  it_ok "spool empty after the replay" || it_fail "spool empty after the replay" 0 "$(it_metric 'chargewatch_spool_bytes')"
