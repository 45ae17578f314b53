#!/usr/bin/env bash
# drain_ab.sh - CPU per message of two chargewatchd builds draining the same
# broker backlog, runs interleaved (A, B, A, B, ...) so both see the same
# background load: a private mosquitto and PostgreSQL on loopback, a bench/gen
# city queued for the daemon's persistent session, then the daemon started
# and timed to the last row committed. Used to price the ingest journal (the
# build before it against the build with it; docs/RELIABILITY.md section 3).
#   bash bench/drain_ab.sh DAEMON_A DAEMON_B [RUNS] [SPOOL_DIR]
# SPOOL_DIR (default: under build/drain-ab) holds [spool] dir, and with it the
# ingest journal: give a tmpfs path to measure the journal there.
# CW_AB_BATCHED=1: the capture is station-batched (1,000 stations x 10
# sockets, one message per station per interval: ~306,000 readings in ~37,000
# messages) instead
# of 200 stations' single-reading messages. CW_AB_CONF_A / CW_AB_CONF_B: lines
# appended to A's / B's configuration (the same binary twice compares two
# settings; @PGSOCK@ in them stands for the conninfo of the test server over
# its Unix socket). Each run also prints readings/s from the first row committed to
# the last. One run at a time: two at once can take the same ports.
# CW_AB_PERF=FILE: perf record (cpu-clock, call graphs) of B's
# last run into FILE.
set -u
[ $# -ge 2 ] || { echo "usage: drain_ab.sh DAEMON_A DAEMON_B [RUNS] [SPOOL_DIR]" >&2; exit 2; }
cd "$(dirname "$0")/.."
A=$1 B=$2 RUNS=${3:-3}
OUT=$PWD/build/drain-ab
SPOOL=${4:-$OUT/spool}
. tests/services.sh
rm -rf "$OUT"
mkdir -p "$OUT"
make -s -j2 build/bench/gen build/bench/replay >/dev/null
cw_pg_start "$OUT/pg" "$(cw_free_port 56700)" >/dev/null
cw_mqtt_start "$OUT/mq" "$(cw_free_port 19950)"
HTTP_PORT=$(cw_free_port 20500)
DPID=""
trap '[ -n "$DPID" ] && kill "$DPID" 2>/dev/null; cw_mqtt_stop "$OUT/mq"; cw_pg_stop "$OUT/pg"' EXIT
TCK=$(getconf CLK_TCK)
ID=cw-ab
conf() {
  cw_daemon_conf "$OUT/c.conf" "$OUT" "$CW_MQTT_URI" "$ID" "$CW_PG_CONN" "$HTTP_PORT" warn
  sed -i "s|^dir = .*|dir = $SPOOL|" "$OUT/c.conf"
  [ -n "${EXTRA:-}" ] && printf '\n%b\n' "${EXTRA//@PGSOCK@/$CW_PG_SOCK_CONN}" >>"$OUT/c.conf"
  return 0
}
metric() { # NAME: chargewatch_NAME from /metrics (0 while not up)
  local l v=0
  { exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT"; } 2>/dev/null || { echo 0; return; }
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  while IFS= read -r l <&3; do case $l in "chargewatch_$1 "*) v=${l#* } ;; esac; done
  exec 3<&-
  echo "$v"
}
committed() { metric rows_committed_total; }
start() { conf; "$1" -c "$OUT/c.conf" 2>>"$OUT/daemon.log" & DPID=$!; }
stop() { kill -TERM "$DPID"; wait "$DPID"; DPID=""; }
up() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null && return; sleep 0.1; done; }
if [ "${CW_AB_BATCHED:-0}" = 1 ]; then
  build/bench/gen -o "$OUT/city.cap" -s 1000 -k 10 -i 10 -d 300 --seed 7 --anomaly-rate 0.01 --batched >/dev/null 2>&1
else
  build/bench/gen -o "$OUT/city.cap" -s 200 -k 10 -i 10 -d 300 >/dev/null 2>&1
fi
start "$B"; up; stop # the schema
echo "drain_ab: $RUNS interleaved runs, spool dir $SPOOL, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$RUNS"); do
  for ab in a b; do
    if [ $ab = a ]; then d=$A EXTRA=${CW_AB_CONF_A:-}; else d=$B EXTRA=${CW_AB_CONF_B:-}; fi
    ID=cw-ab-$r-$ab # a fresh session per run
    psql -X -q -tA "$CW_PG_CONN" -c "TRUNCATE readings, alert_events, alerts; UPDATE sockets SET last_ts = NULL" >/dev/null
    start "$d"; up; sleep 1; stop # the session exists: the broker queues for it
    build/bench/replay -f "$OUT/city.cap" -u "$CW_MQTT_URI" -q 1 --asap --client-prefix "p$r" >"$OUT/replay.log" 2>&1
    want=$(sed -n 's/.*readings=\([0-9]*\).*/\1/p' "$OUT/replay.log" | tail -1)
    msgs=$(sed -n 's/.*msgs=\([0-9]*\).*/\1/p' "$OUT/replay.log" | tail -1)
    t0=$EPOCHREALTIME
    start "$d"
    PERF=""
    if [ -n "${CW_AB_PERF:-}" ] && [ $ab = b ] && [ "$r" = "$RUNS" ]; then
      # perf -p follows only the threads that exist when it attaches
      for _ in $(seq 1 100); do [ "$(ls "/proc/$DPID/task" 2>/dev/null | wc -l)" -ge 4 ] && break; sleep 0.02; done
      perf record -e ${CW_AB_PERF_EV:-cpu-clock -F 1999} ${CW_AB_PERF_CG:--g} -p "$DPID" -o "$CW_AB_PERF" >/dev/null 2>&1 &
      PERF=$!
    fi
    tf="" rf=0
    end=$((SECONDS + 120)) # at most 2 min
    while [ "$SECONDS" -lt "$end" ]; do
      kill -0 "$DPID" 2>/dev/null || break
      n=$(committed)
      if [ -z "$tf" ] && [ "$n" -gt 0 ]; then tf=$EPOCHREALTIME rf=$n; fi
      [ "$n" -lt "$want" ] || break
      sleep 0.05
    done
    t1=$EPOCHREALTIME
    rate=$(awk "BEGIN { d = $t1 - ${tf:-$t1}; if (d > 0) printf \"%.0f\", ($want - $rf) / d; else print \"n/a\" }")
    c=$(awk '{print $14 + $15}' "/proc/$DPID/stat")
    stalls=$(metric writer_stalls_total)
    # CPU per message of each thread, by name (paho's receive thread, the
    # writer, the engine thread, ...)
    threads=$(for t in /proc/"$DPID"/task/*; do
      awk -v m="$msgs" -v k="$TCK" '{ sub(/^[^(]*\(/, ""); n = $0; sub(/\).*/, "", n); sub(/^[^)]*\) /, "");
        printf "%s=%.2f ", n, ($12 + $13) * 1e6 / k / m }' "$t/stat"
    done)
    if [ -n "$PERF" ]; then kill -INT "$PERF"; wait "$PERF"; fi
    stop
    # end the run's persistent session: the broker would queue every later
    # run's capture for it too (a clean-session connect with its id)
    mosquitto_sub -h 127.0.0.1 -p "$CW_MQTT_PORT" -i "$ID" -t cw/ab/none -E >/dev/null 2>&1 || true
    echo "drain_ab: run $r $ab $d: msgs=$msgs readings=$want cpu_us_per_msg=$(awk "BEGIN { printf \"%.2f\", $c * 1e6 / $TCK / $msgs }") cpu_us_per_reading=$(awk "BEGIN { printf \"%.2f\", $c * 1e6 / $TCK / $want }") readings_per_s=$rate writer_stalls=$stalls threads_us_per_msg: ${threads% } seconds=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") load=$(cut -d' ' -f1 /proc/loadavg)"
  done
done
