#!/usr/bin/env bash
# test_ingest.sh - every valid reading lands exactly once: 2,000 single
# readings over 50 sockets (five stations of ten, one publisher per socket,
# all at once) and 1,000 readings in 100 station-topic arrays of ten. Expected
# counts and sums are computed from what is sent.
. "$(dirname "$0")/lib.sh"
it_setup

PER_SOCKET=40
now=$(it_now_ms)
base=$((now - 120000)) # the last reading is 80 s old: well inside max_age
gen=$IT_DIR/gen
mkdir -p "$gen"

# --- single readings: ING0..ING4 x sockets 1..10, 40 each, w = f(i, socket)
for st in 0 1 2 3 4; do
  for so in $(seq 1 10); do
    awk -v base="$base" -v n="$PER_SOCKET" -v so="$so" -v st="$st" 'BEGIN {
      for (i = 0; i < n; i++) {
        w = (i * 7 + so * 13 + st * 29) % 900 + 20
        printf "{\"ts\":%.0f,\"v\":229.5,\"a\":%.3f,\"w\":%d,\"wh\":%d,\"t\":31.5,\"smoke\":0,\"state\":\"charging\"}\n",
               base + i * 1000, w / 229.5, w, 1000 + i * 3
      }
    }' >"$gen/ING$st-$so"
  done
done
expect_rows=$((5 * 10 * PER_SOCKET))
expect_wsum=$(cat "$gen"/ING* | sed -E 's/.*"w":([0-9]+).*/\1/' | awk '{s += $1} END {printf "%.0f\n", s}')

pids=""
for st in 0 1 2 3 4; do
  for so in $(seq 1 10); do
    it_pub_lines "cw/ING$st/$so/telemetry" "$gen/ING$st-$so" &
    pids="$pids $!"
  done
done
pubfail=0
for p in $pids; do wait "$p" || pubfail=$((pubfail + 1)); done
it_eq "all 50 publishers finished cleanly" 0 "$pubfail"

got=$(it_wait_eq 60 "$expect_rows" it_sql "SELECT count(*) FROM readings WHERE station LIKE 'ING%'")
it_eq "single readings: rows stored" "$expect_rows" "$got"
sleep 1 # anything extra (a duplicate) would land within a batch interval
it_eq "single readings: rows stored, still, a second later" "$expect_rows" \
  "$(it_sql "SELECT count(*) FROM readings WHERE station LIKE 'ING%'")"
it_eq "single readings: distinct (station, socket, ts)" "$expect_rows" \
  "$(it_sql "SELECT count(DISTINCT (station, socket, ts)) FROM readings WHERE station LIKE 'ING%'")"
it_eq "single readings: sockets with exactly $PER_SOCKET rows" 50 \
  "$(it_sql "SELECT count(*) FROM (SELECT station, socket FROM readings WHERE station LIKE 'ING%'
             GROUP BY 1, 2 HAVING count(*) = $PER_SOCKET) s")"
it_eq "single readings: sum(w) equals the sum sent" "$expect_wsum" \
  "$(it_sql "SELECT sum(w)::bigint FROM readings WHERE station LIKE 'ING%'")"
it_eq "single readings: ts range as sent (ms)" "$base $((base + (PER_SOCKET - 1) * 1000))" \
  "$(it_sql "SELECT (extract(epoch FROM min(ts)) * 1000)::bigint || ' ' || (extract(epoch FROM max(ts)) * 1000)::bigint
             FROM readings WHERE station LIKE 'ING%'")"

# --- station topic arrays: ARR0..ARR4, 20 messages of 10 elements (sockets 1..10)
NMSG=20
base2=$((now - 60000))
for st in 0 1 2 3 4; do
  awk -v base="$base2" -v n="$NMSG" -v st="$st" 'BEGIN {
    for (m = 0; m < n; m++) {
      line = "["
      for (so = 1; so <= 10; so++) {
        wh = 100000 + st * 10000 + m * 100 + so
        line = line sprintf("%s{\"socket\":%d,\"ts\":%.0f,\"v\":231.0,\"w\":%d,\"wh\":%d,\"t\":28.0}",
                            so > 1 ? "," : "", so, base + m * 1000, 50 + so, wh)
      }
      print line "]"
    }
  }' >"$gen/ARR$st"
done
expect_arr=$((5 * NMSG * 10))
expect_whsum=$(cat "$gen"/ARR* | grep -oE '"wh":[0-9]+' | cut -d: -f2 | awk '{s += $1} END {printf "%.0f\n", s}')
pids=""
for st in 0 1 2 3 4; do
  it_pub_lines "cw/ARR$st/telemetry" "$gen/ARR$st" &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done

got=$(it_wait_eq 60 "$expect_arr" it_sql "SELECT count(*) FROM readings WHERE station LIKE 'ARR%'")
it_eq "arrays: every element stored" "$expect_arr" "$got"
it_eq "arrays: distinct (station, socket, ts)" "$expect_arr" \
  "$(it_sql "SELECT count(DISTINCT (station, socket, ts)) FROM readings WHERE station LIKE 'ARR%'")"
it_eq "arrays: (station, socket) pairs" 50 \
  "$(it_sql "SELECT count(DISTINCT (station, socket)) FROM readings WHERE station LIKE 'ARR%'")"
it_eq "arrays: sum(wh) equals the sum sent" "$expect_whsum" \
  "$(it_sql "SELECT sum(wh)::bigint FROM readings WHERE station LIKE 'ARR%'")"

# --- nothing valid was dead-lettered; the service says it is healthy
it_eq "no valid reading in the dead-letter file" 0 \
  "$(cat "$IT_DIR/deadletter.log" 2>/dev/null | grep -cE 'ING[0-9]|ARR[0-9]')"
it_http /healthz >/dev/null
it_eq "GET /healthz" 200 "$IT_HTTP_STATUS"
it_http /metrics >"$IT_DIR/metrics.txt"
it_eq "GET /metrics" 200 "$IT_HTTP_STATUS"
it_ge "/metrics has sample lines" 5 "$(grep -cvE '^(#|$)' "$IT_DIR/metrics.txt")"
got=$(it_wait_eq 10 10 it_sql "SELECT count(*) FROM stations WHERE code ~ '^(ING|ARR)[0-9]$'")
it_eq "unknown stations auto-registered" 10 "$got"
