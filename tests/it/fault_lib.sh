# fault_lib.sh - shared by the fault tests (test_fault_*.sh): a generator of
# station-array traffic with exact accounting, a paced publisher, and daemon
# memory sampling. Sourced after lib.sh.
# shellcheck shell=bash
# CW_FAULT_SCALE (default 1) multiplies the length of the load streams: the
# soak run (tests/soak.sh) uses longer ones than make check.
# shellcheck disable=SC2034 # used by the tests that source this file
FAULT_SCALE=${CW_FAULT_SCALE:-1}

# fault_gen STATIONS TICKS BASE_MS DIR: one file per station, one line per
# tick, each line a JSON array of the station's 10 sockets' readings at
# BASE_MS + tick*1000. Prints the number of readings.
fault_gen() {
  local nst=$1 ticks=$2 base=$3 dir=$4 s
  mkdir -p "$dir"
  for s in $(seq 1 "$nst"); do
    awk -v base="$base" -v n="$ticks" -v st="$s" 'BEGIN {
      for (i = 0; i < n; i++) {
        line = "["
        for (so = 1; so <= 10; so++) {
          w = 60 + (i * 7 + so * 13) % 90
          line = line sprintf("%s{\"socket\":%d,\"ts\":%.0f,\"v\":230.0,\"a\":%.3f,\"w\":%d,\"wh\":%d,\"t\":%.1f,\"state\":\"charging\"}",
                              so > 1 ? "," : "", so, base + i * 1000, w / 230.0, w, 1000 + i * 2 + so, 28 + (i % 5) / 10.0)
        }
        print line "]"
      }
    }' >"$dir/F$s"
  done
  echo $((nst * ticks * 10))
}

# fault_publish DIR CHUNK PAUSE_S: publish every station file of DIR on
# cw/F<n>/telemetry, CHUNK lines (messages) at a time with PAUSE_S between
# chunks, all stations in parallel. Writes DIR/pubfail with the number of
# publisher invocations that failed (0 = the broker acknowledged everything).
fault_publish() {
  local dir=$1 chunk=$2 pause=$3 f pids="" fails=0 p
  for f in "$dir"/F*; do
    (
      local st n off=1 rc=0
      st=$(basename "$f")
      n=$(wc -l <"$f")
      while [ "$off" -le "$n" ]; do
        sed -n "${off},$((off + chunk - 1))p" "$f" >"$f.chunk"
        # retry: the broker may be restarting under us (each chunk is
        # re-sent whole; the daemon rejects the repeats as duplicates).
        for _ in 1 2 3 4 5 6 7 8 9 10; do
          mosquitto_pub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -t "cw/$st/telemetry" -l <"$f.chunk" \
            2>>"$dir/pub.err" && { rc=0; break; }
          rc=1
          sleep 1
        done
        [ "$rc" -eq 0 ] || exit 1
        off=$((off + chunk))
        sleep "$pause"
      done
    ) &
    pids="$pids $!"
  done
  for p in $pids; do wait "$p" || fails=$((fails + 1)); done
  echo "$fails" >"$dir/pubfail"
}

fault_count() { it_sql "SELECT count(*) FROM readings WHERE station LIKE 'F%'"; }
fault_distinct() { it_sql "SELECT count(DISTINCT (station, socket, ts)) FROM readings WHERE station LIKE 'F%'"; }

# Resident memory of the daemon in KiB (0 when gone).
fault_rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$IT_DAEMON_PID/status" 2>/dev/null || echo 0; }

# fault_wait_settled TIMEOUT_S WANT: poll fault_count until it equals WANT or
# has not changed for 5 s (what is missing will not come); prints the count.
fault_wait_settled() {
  local limit=$1 want=$2 n last=-1 since end now
  end=$(($(it_now_ms) + limit * 1000))
  since=$(it_now_ms)
  while :; do
    n=$(fault_count)
    now=$(it_now_ms)
    [ "$n" = "$want" ] && break
    if [ "$n" != "$last" ]; then
      last=$n
      since=$now
    elif [ $((now - since)) -ge 5000 ]; then
      break
    fi
    [ "$now" -ge "$end" ] && break
    sleep 0.3
  done
  echo "$n"
}

# fault_locked TABLE: succeeds while some session holds an ACCESS EXCLUSIVE
# lock on TABLE (granted, not just requested).
fault_locked() {
  [ "$(it_sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
               WHERE c.relname = '$1' AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1 ]
}
