#!/usr/bin/env bash
# test_instance.sh - one daemon per configuration, and a database that
# refuses the daemon is a start-up error in words. A second copy on the same
# configuration exits non-zero naming the PID that holds the spool lock. A
# conninfo whose role the server refuses makes the daemon exit non-zero at
# start with the server's message, and its password appears in no log.
. "$(dirname "$0")/lib.sh"
it_setup

"$CW_DAEMON" -f -c "$IT_DIR/chargewatch.conf" >"$IT_DIR/second.log" 2>&1 &
second=$!
IT_BG_PIDS="$IT_BG_PIDS $second"
rc=0
for _ in $(seq 1 100); do kill -0 "$second" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$second" 2>/dev/null; then rc=running; else wait "$second"; rc=$?; fi
it_eq "a second instance on the same configuration exits 1" 1 "$rc"
it_eq "its message names the PID holding the lock" 1 \
  "$(grep -c "another chargewatchd (pid $IT_DAEMON_PID) holds .*chargewatchd.lock" "$IT_DIR/second.log")"
it_eq "the first one keeps running" 0 "$(it_daemon_alive; echo $?)"

# A refused connection: a role the server does not know, with a password.
sed -e "s|^conninfo = .*|conninfo = host=127.0.0.1 port=$CW_PG_PORT user=cw_no_such_role password=Sekr1tPw dbname=chargewatch|" \
  -e "s|^dir = .*|dir = $IT_DIR/spool2|" -e "s|^client_id = .*|client_id = cw-it-refused|" \
  "$IT_DIR/chargewatch.conf" >"$IT_DIR/refused.conf"
t0=$(it_now_ms)
timeout 30 "$CW_DAEMON" -f -c "$IT_DIR/refused.conf" >"$IT_DIR/refused.log" 2>&1
rc=$?
it_note "figures: refused start exited in $(($(it_now_ms) - t0)) ms"
it_eq "a refused database connection at start: exit 1" 1 "$rc"
it_eq "with the server's message at error level" 1 \
  "$(grep -cE '^[0-9-]+T[0-9:.]+Z error: writer: start: the database refused the connection: .*role "cw_no_such_role" does not exist' "$IT_DIR/refused.log")"
it_eq "no password in any log" 0 "$(cat "$IT_DIR"/*.log | grep -c Sekr1tPw)"
