#!/usr/bin/env bash
# test_sigterm.sh - SIGTERM under load loses nothing (docs/RELIABILITY.md):
# 20,000 readings from 20 publishers; the daemon is stopped mid-stream, must
# exit 0 within shutdown_timeout_s, the rest of the stream goes to the broker
# while it is down (persistent session, QoS 1), and after a restart every
# reading is stored exactly once.
. "$(dirname "$0")/lib.sh"
it_setup

N_PER=1000 # readings per socket; 2 stations x 10 sockets
SPLIT=600  # the first 600 of each socket go while the daemon runs
now=$(it_now_ms)
base=$((now - 30 * 60 * 1000))
gen=$IT_DIR/gen
mkdir -p "$gen"
for st in SIGA SIGB; do
  for so in $(seq 1 10); do
    awk -v base="$base" -v n="$N_PER" -v so="$so" 'BEGIN {
      for (i = 0; i < n; i++)
        printf "{\"ts\":%.0f,\"v\":230.0,\"a\":%.3f,\"w\":%d,\"wh\":%d,\"t\":30.0,\"state\":\"charging\"}\n",
               base + i * 1000, (100 + i % 50) / 230.0, 100 + i % 50, 5000 + i * 2 + so
    }' >"$gen/$st-$so"
    head -n "$SPLIT" "$gen/$st-$so" >"$gen/$st-$so.a"
    tail -n +"$((SPLIT + 1))" "$gen/$st-$so" >"$gen/$st-$so.b"
  done
done
total=$((2 * 10 * N_PER))
it_eq "readings generated" "$total" "$(cat "$gen"/SIG?-? "$gen"/SIG?-?? | wc -l)"

# Wave 1 in the background; SIGTERM as soon as some of it is stored.
pids=""
for st in SIGA SIGB; do
  for so in $(seq 1 10); do
    it_pub_lines "cw/$st/$so/telemetry" "$gen/$st-$so.a" &
    pids="$pids $!"
  done
done
IT_BG_PIDS="$IT_BG_PIDS $pids"
count_sig() { it_sql "SELECT count(*) FROM readings WHERE station IN ('SIGA','SIGB')"; }
for i in $(seq 1 200); do
  n=$(count_sig)
  [ -n "$n" ] && [ "$n" -ge 500 ] && break
  sleep 0.05
done
running=0
for p in $pids; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
it_note "SIGTERM with ${n:-?} rows stored and $running of 20 publishers still sending"
it_daemon_stop
it_eq "exit status after SIGTERM under load" 0 "$IT_EXIT_RC"
if [ "$IT_EXIT_MS" -le $(((IT_SHUTDOWN_S + 1) * 1000)) ]; then
  it_ok "exited within shutdown_timeout_s ($IT_SHUTDOWN_S s; took $IT_EXIT_MS ms)"
else
  it_fail "exited within shutdown_timeout_s" "<= $((IT_SHUTDOWN_S * 1000)) ms" "$IT_EXIT_MS ms"
fi
stored_at_stop=$(count_sig)

# Let wave 1 finish and send wave 2 while the daemon is down.
pubfail=0
for p in $pids; do wait "$p" || pubfail=$((pubfail + 1)); done
pids=""
for st in SIGA SIGB; do
  for so in $(seq 1 10); do
    it_pub_lines "cw/$st/$so/telemetry" "$gen/$st-$so.b" &
    pids="$pids $!"
  done
done
for p in $pids; do wait "$p" || pubfail=$((pubfail + 1)); done
it_eq "publishers finished cleanly (broker took every message)" 0 "$pubfail"
it_eq "nothing stored while the daemon was down" "$stored_at_stop" "$(count_sig)"

it_daemon_start
it_wait_ready || exit 1
got=$(it_wait_eq 120 "$total" count_sig)
it_eq "after restart: every reading stored" "$total" "$got"
sleep 1
it_eq "after restart: distinct (station, socket, ts)" "$total" \
  "$(it_sql "SELECT count(DISTINCT (station, socket, ts)) FROM readings WHERE station IN ('SIGA','SIGB')")"
it_eq "after restart: every socket has all $N_PER" 20 \
  "$(it_sql "SELECT count(*) FROM (SELECT station, socket FROM readings WHERE station IN ('SIGA','SIGB')
             GROUP BY 1, 2 HAVING count(*) = $N_PER) s")"
it_eq "after restart: sum(wh) equals the sum sent" \
  "$(cat "$gen"/SIG?-? "$gen"/SIG?-?? | grep -oE '"wh":[0-9]+' | cut -d: -f2 | awk '{s += $1} END {printf "%.0f\n", s}')" \
  "$(it_sql "SELECT sum(wh)::bigint FROM readings WHERE station IN ('SIGA','SIGB')")"
