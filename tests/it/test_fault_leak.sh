#!/usr/bin/env bash
# test_fault_leak.sh - no leak across start, load, a database outage (spool
# and replay), an alert and SIGTERM: the daemon runs under valgrind
# --leak-check=full, which makes it exit 99 on a definite or indirect leak or
# a memory error. (With the ASan build and CW_IT_SAN=1, the other fault
# tests check the same with LeakSanitizer.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
if ! command -v valgrind >/dev/null 2>&1; then
  it_fail "valgrind installed" "valgrind" "missing"
  exit 1
fi
# shellcheck disable=SC2034 # read by it_write_config (lib.sh)
IT_SHUTDOWN_S=60 # valgrind is slow: the clean exit matters here, not its speed
it_start_services
it_write_config
cat >"$IT_DIR/vg.sh" <<VG
#!/bin/sh
exec valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \\
  --error-exitcode=99 --num-callers=20 --log-file="$IT_DIR/valgrind.log" "$CW_DAEMON" "\$@"
VG
chmod +x "$IT_DIR/vg.sh"
CW_DAEMON=$IT_DIR/vg.sh
trap it_teardown EXIT
trap 'exit 130' INT TERM
it_daemon_start
it_wait_ready || exit 1

total=$(fault_gen 2 300 "$(($(it_now_ms) - 30 * 60 * 1000))" "$IT_DIR/gen")
fault_publish "$IT_DIR/gen" 50 0.2 &
PUB=$!
IT_BG_PIDS="$IT_BG_PIDS $PUB"
sleep 2
cw_pg_stop "$IT_PG_DIR"
sleep 4
cw_pg_start "$IT_PG_DIR" "$CW_PG_PORT" >/dev/null || it_fail "postgres restarted" running failed
wait "$PUB"
it_pub "cw/LK/2/telemetry" "$(it_reading "$(it_now_ms)" 200 97.0)" # one alert too
got=$(it_wait_eq 120 "$total" fault_count)
it_eq "every reading stored under valgrind" "$total" "$got"
it_daemon_stop
it_eq "exit status under valgrind (99: leak or memory error)" 0 "$IT_EXIT_RC"
it_eq "valgrind: definitely lost" "0 bytes in 0 blocks" \
  "$(sed -nE 's/.*definitely lost: ([0-9,]+ bytes in [0-9,]+ blocks).*/\1/p' "$IT_DIR/valgrind.log")"
it_note "figures: SIGTERM under valgrind took $IT_EXIT_MS ms; $(grep -E 'ERROR SUMMARY' "$IT_DIR/valgrind.log" | sed 's/^==[0-9]*== //')"
