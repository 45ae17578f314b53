#!/usr/bin/env bash
# bench.sh - `make bench` (quick), `make bench-full`, `make bench-peers`: one
# run that measures the ceilings (bare paho subscriber, raw binary COPY, bare
# cJSON) and chargewatchd end to end on the same capture, through a private
# mosquitto and PostgreSQL on loopback, and prints each figure beside its
# ceiling. Appends the table, with date, machine and commands, to
# bench/RESULTS.md; plots go to build/bench-run/*.png (bench/plot.sh).
#   bench.sh quick|full|peers|profile      (BUILD=dir RUNS=n override)
# Ceiling and daemon runs are interleaved (ceiling r, daemon r, ...) so that
# both see the same background load on a shared machine; figures are medians.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-quick}
BUILD=${BUILD:-build}
OUT=$PWD/build/bench-run
# S stations x K sockets every I s for D s; LAT_N alert probes over a
# background replay at BG_X times recorded speed over BG_P connections;
# BIG_S x 10 sockets for RSS. SB: stations of the batched capture (more, so
# that its drain lasts seconds). quick: S=340 = ~100,000 single-reading
# messages, SB=1000 = ~300,000 readings in ~30,000 station messages.
case "$MODE" in
  quick) S=340 SB=1000 K=10 I=10 D=300 LAT_N=200 BG_X="10 60" BG_P=2 BIG_S=10000 PIPE_N=200000 RUNS=${RUNS:-3} ;;
  full) S=1000 SB=2000 K=10 I=10 D=300 LAT_N=1000 BG_X="4 20" BG_P=2 BIG_S=10000 PIPE_N=1000000 RUNS=${RUNS:-3} ;;
  profile) S=1000 SB=1000 K=10 I=10 D=300 RUNS=1 ;;
  peers)
    # per-socket messages, then the same readings station-batched
    if [ -f bench/peers/run.sh ]; then bash bench/peers/run.sh && exec bash bench/peers/run.sh --batched; fi
    echo "bench: bench/peers/run.sh is not there yet" >&2
    exit 1 ;;
  *) echo "usage: bench.sh quick|full|peers|profile" >&2; exit 2 ;;
esac

# CW_BENCH_DAEMON: measure another chargewatchd binary (e.g. an older
# build, for a before/after comparison); everything else is this tree's.
DAEMON_BIN=${CW_BENCH_DAEMON:-$BUILD/chargewatchd}
T_START=$(date +%s)
sh .ci/deps.sh
BINS="gen replay countsub copyraw alertlat pipeline ring fsri_replay"
make -s -j2 BUILD="$BUILD" "$BUILD/chargewatchd" "$BUILD/test_unit" $(for b in $BINS; do echo "$BUILD/bench/$b"; done) >/dev/null
. tests/services.sh

DAEMON_PID=""
cleanup() {
  set +e
  if [ -n "$DAEMON_PID" ]; then kill -TERM "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null; fi
  for p in ${BG_PIDS:-}; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  cw_mqtt_stop "$OUT/mq"
  cw_pg_stop "$OUT/pg"
  rm -f "/dev/shm/cw-bench-$$.journal"
}
BG_PIDS=""
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$OUT"
mkdir -p "$OUT"
cw_pg_start "$OUT/pg" "$(cw_free_port 55700)" >/dev/null
cw_mqtt_start "$OUT/mq" "$(cw_free_port 18950)"
MQ_PORT=$CW_MQTT_PORT
HTTP_PORT=$(cw_free_port 19500)
PSQL() { psql -X -q -tA "$CW_PG_CONN" -c "$1"; }
med() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "n/a"; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -n "s/\(.*[ :]\|^\)$1=\([-0-9.]*\).*/\2/p" | tail -1; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
now() { echo "$EPOCHREALTIME"; }
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
say() { printf '%s\n' "$*" >&2; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
CMDS="$OUT/commands.txt"
: >"$CMDS"
run_logged() { echo "$*" >>"$CMDS"; "$@"; }

# ---------------------------------------------------------------- captures
GEN="$BUILD/bench/gen -o $OUT/city.cap -s $S -k $K -i $I -d $D --seed 7 --anomaly-rate 0.01 --truth $OUT/truth.csv --sql $OUT/stations.sql"
GENB="$BUILD/bench/gen -o $OUT/city-batched.cap -s $SB -k $K -i $I -d $D --seed 7 --anomaly-rate 0.01 --batched"
say "bench: $GEN"
echo "$GEN" >>"$CMDS"
$GEN 2>&1 | tee "$OUT/gen.txt" >&2
echo "$GENB" >>"$CMDS"
$GENB >"$OUT/gen-batched.txt" 2>&1
gen_count() { sed -n "s/.* \([0-9]*\) $1,.*/\1/p" "$2" | head -1; }
NMSG=$(gen_count msgs "$OUT/gen.txt")
NREAD=$(gen_count readings "$OUT/gen.txt")
NMSG_B=$(gen_count msgs "$OUT/gen-batched.txt")
NREAD_B=$(gen_count readings "$OUT/gen-batched.txt")

http_get() {
  exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || return 1
  printf 'GET %s HTTP/1.0\r\n\r\n' "$1" >&3
  cat <&3
  exec 3<&-
}
metric() { http_get /metrics 2>/dev/null | awk -v k="chargewatch_$1" '$1==k {print $2}' | tail -1; }
rejects() { http_get /metrics 2>/dev/null | awk '/^chargewatch_rejects_total/ {s+=$2} END {print s+0}'; }

# Each daemon start gets its own client id, and its persistent session is
# removed after it stops (a clean-session connect with the same id), so no
# phase inherits another's queued messages or leaves the broker queueing for
# a dead session.
DAEMON_ID=""
# The ingest journal where the packaged layout puts it, on tmpfs
# (docs/OPERATIONS.md): CW_BENCH_JOURNAL=disk keeps it in the spool directory.
daemon_conf() {
  cw_daemon_conf "$OUT/chargewatch.conf" "$OUT" "$CW_MQTT_URI" "$1" "$CW_PG_CONN" "$HTTP_PORT" warn
  if [ "${CW_BENCH_JOURNAL:-tmpfs}" = tmpfs ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    printf '\n[spool]\njournal = /dev/shm/cw-bench-%s.journal\n' "$$" >>"$OUT/chargewatch.conf"
  fi
}
start_daemon() {
  DAEMON_ID=$1
  daemon_conf "$DAEMON_ID"
  "$DAEMON_BIN" -c "$OUT/chargewatch.conf" 2>>"$OUT/daemon.log" &
  DAEMON_PID=$!
  for _ in $(seq 1 300); do
    http_get /healthz 2>/dev/null | grep -q ' 200 ' && return 0
    sleep 0.1
  done
  say "bench: daemon did not become healthy"; tail "$OUT/daemon.log" >&2; return 1
}
drop_session() { mosquitto_sub -h 127.0.0.1 -p "$MQ_PORT" -i "$1" -t cw/bench/none -E >/dev/null 2>&1 || true; }
stop_daemon() {
  local t0 t1
  t0=$(now)
  kill -TERM "$DAEMON_PID"
  wait "$DAEMON_PID" || echo "$DAEMON_ID: exit status $? after SIGTERM" >>"$OUT/daemon-exit.txt"
  t1=$(now)
  echo "$DAEMON_ID: shutdown $(calc "$t1 - $t0" 2) s" >>"$OUT/daemon-exit.txt"
  DAEMON_PID=""
  [ "${1:-}" = keep ] || drop_session "$DAEMON_ID"
}
reset_db() { PSQL "TRUNCATE readings, alert_events, alerts; UPDATE sockets SET last_ts = NULL" >/dev/null; }

# Reads one counter from /metrics into MV without forking (bash builtins
# only), so that polling does not take CPU from what it measures.
metric_fast() {
  local line
  MV=0
  exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || return 0
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  while IFS= read -r line <&3; do
    case $line in "chargewatch_$1 "*) MV=${line#* } ;; esac
  done
  exec 3<&-
}

# Waits until the daemon has committed $1 rows (or made no progress for 20 s,
# or 600 s passed), polling every ~0.05 s and sampling rows every 0.5 s into
# $2 (ms since $3, an EPOCHREALTIME). Sets DONE_T (EPOCHREALTIME when
# the last row was seen committed) and DONE_ROWS, FIRST_T and FIRST_ROWS (the
# first poll that saw rows committed: a drain's rate from there excludes the
# start-up).
wait_rows() {
  local want=$1 samples=$2 t0=${3/[.,]/} rows=0 last=-1 still_since t next=0 end first=""
  FIRST_ROWS=0
  : >"$samples"
  t=${EPOCHREALTIME/[.,]/}
  still_since=$t
  end=$((t + 600000000))
  while :; do
    metric_fast rows_committed_total
    rows=$MV
    t=${EPOCHREALTIME/[.,]/}
    if [ -z "$first" ] && [ "$rows" -gt 0 ]; then first=$t; FIRST_ROWS=$rows; fi
    if [ "$t" -ge "$next" ] || [ "$rows" -ge "$want" ]; then
      echo "$(((t - t0) / 1000)) $rows" >>"$samples"
      next=$((t + 500000))
    fi
    [ "$rows" -ge "$want" ] && break
    if [ "$rows" != "$last" ]; then still_since=$t; last=$rows; fi
    [ $((t - still_since)) -ge 20000000 ] && break
    [ "$t" -ge "$end" ] && break
    sleep 0.05
  done
  DONE_T="$((t / 1000000)).$(printf '%06d' $((t % 1000000)))"
  DONE_ROWS=$rows
  first=${first:-$t}
  FIRST_T="$((first / 1000000)).$(printf '%06d' $((first % 1000000)))"
}

if [ "$MODE" = profile ]; then
  # Where the daemon's time goes: perf (software cpu-clock event; this VM has
  # no hardware counters) with call graphs, over one end-to-end replay.
  start_daemon cw-bench-prof
  PSQL "$(cat "$OUT/stations.sql")" >/dev/null
  kill -HUP "$DAEMON_PID"
  perf record -e cpu-clock -F 999 -g -p "$DAEMON_PID" -o "$OUT/perf.data" 2>"$OUT/perf.log" &
  PERF=$!
  BG_PIDS="$PERF"
  sleep 0.5
  t0=$(now)
  "$BUILD/bench/replay" -f "$OUT/city.cap" -u "$CW_MQTT_URI" -q 1 --asap --client-prefix cw-prof >"$OUT/replay-prof" 2>/dev/null &
  wait_rows "$NREAD" "$OUT/prof.samples" "$t0"
  wait $! || true
  kill -INT "$PERF"; wait "$PERF" || true
  BG_PIDS=""
  stop_daemon
  set +o pipefail # head closes the pipe early
  perf report -i "$OUT/perf.data" --stdio --no-children --sort comm,dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20 >"$OUT/profile-thread.txt"
  perf report -i "$OUT/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20 >"$OUT/profile-dso.txt"
  perf report -i "$OUT/perf.data" --stdio --no-children --sort dso,sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 >"$OUT/profile-sym.txt"
  perf report -i "$OUT/perf.data" --stdio --children --sort sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 >"$OUT/profile-children.txt"
  say "bench: profile of $DAEMON_ID over $NREAD readings (rows $DONE_ROWS): $OUT/profile-*.txt"
  cat "$OUT/profile-thread.txt" "$OUT/profile-dso.txt" "$OUT/profile-sym.txt"
  exit 0
fi

# ---------------------------------------------------------------- in-process ceilings
say "bench: in-process pipeline and bare cJSON ceiling"
PIPE_CMD="$BUILD/bench/pipeline -n $PIPE_N -r 3"
echo "$PIPE_CMD" >>"$CMDS"
$PIPE_CMD >"$OUT/pipeline.txt" 2>&1 || true
PIPE_CMD_B="$BUILD/bench/pipeline -n $PIPE_N -r 3 --batched"
echo "$PIPE_CMD_B" >>"$CMDS"
$PIPE_CMD_B >"$OUT/pipeline-batched.txt" 2>&1 || true
CJSON_NS=$(field ceiling_cpu_ns <"$OUT/pipeline.txt")
PIPE_NS=$(field cpu_ns <"$OUT/pipeline.txt")

# The daemon creates the schema; raw COPY then goes into the same indexed,
# partitioned table.
start_daemon cw-bench-schema
stop_daemon

REPLAY="$BUILD/bench/replay -u $CW_MQTT_URI -q 1 --asap"
echo "$REPLAY -f $OUT/city.cap --client-prefix ID    (every publishing run)" >>"$CMDS"

# One bare-subscriber run: live (subscribed while the replay publishes) or
# drain (the whole capture queued by the broker first, then consumed).
countsub_run() { # cap filter nmsg tag
  local cap=$1 filter=$2 n=$3 tag=$4 m0 m1 cs
  if [ "${tag#*drain}" != "$tag" ]; then
    mosquitto_sub -h 127.0.0.1 -p "$MQ_PORT" -c -q 1 -i "cw-cs-$tag" -t "$filter" -E >/dev/null
    $REPLAY -f "$cap" --client-prefix "cw-p-$tag" >"$OUT/replay-$tag" 2>/dev/null
    m0=$(cpu_ticks "$CW_MQTT_PID")
    "$BUILD/bench/countsub" -u "$CW_MQTT_URI" -t "$filter" -q 1 -n "$n" -i 5 -C -c "cw-cs-$tag" >"$OUT/countsub.$tag" || true
    m1=$(cpu_ticks "$CW_MQTT_PID")
    drop_session "cw-cs-$tag"
  else
    "$BUILD/bench/countsub" -u "$CW_MQTT_URI" -t "$filter" -q 1 -n "$n" -i 5 -c "cw-cs-$tag" >"$OUT/countsub.$tag" &
    cs=$!
    sleep 0.3
    m0=$(cpu_ticks "$CW_MQTT_PID")
    $REPLAY -f "$cap" --client-prefix "cw-p-$tag" >"$OUT/replay-$tag" 2>/dev/null
    wait "$cs" || true
    m1=$(cpu_ticks "$CW_MQTT_PID")
  fi
  echo "countsub: broker_cpu_us_per_msg=$(calc "($m1 - $m0) * 1e6 / $TCK / $n" 2)" >>"$OUT/countsub.$tag"
}

# One chargewatchd run, live or drain; writes $OUT/e2e.TAG and samples.
e2e_run() { # cap nread nmsg tag
  local cap=$1 want=$2 n=$3 tag=$4 c0 c1 m0 m1 t0 rp stored rej lost st=0
  reset_db
  if [ "${tag#*drain}" != "$tag" ]; then
    # create the persistent session, let the broker queue the capture, then
    # consume it. This first start, idle for 1 s, also prices the daemon's
    # start-up (schema check, restore, zone files): a fixed cost that the
    # drain's whole-life CPU includes and a bare subscriber does not have.
    start_daemon "cw-bench-$tag"
    sleep 1
    st=$(cpu_ticks "$DAEMON_PID")
    stop_daemon keep
    $REPLAY -f "$cap" --client-prefix "cw-p-$tag" >"$OUT/replay-$tag" 2>/dev/null
    m0=$(cpu_ticks "$CW_MQTT_PID")
    t0=$(now)
    start_daemon "cw-bench-$tag"
    c0=0 # the whole life of this process is the drain
    wait_rows "$want" "$OUT/samples.$tag" "$t0"
  else
    start_daemon "cw-bench-$tag"
    c0=$(cpu_ticks "$DAEMON_PID")
    m0=$(cpu_ticks "$CW_MQTT_PID")
    t0=$(now)
    $REPLAY -f "$cap" --client-prefix "cw-p-$tag" >"$OUT/replay-$tag" 2>/dev/null &
    rp=$!
    BG_PIDS="$rp"
    wait_rows "$want" "$OUT/samples.$tag" "$t0"
    wait "$rp" || say "bench: replay $tag failed"
    BG_PIDS=""
  fi
  c1=$(cpu_ticks "$DAEMON_PID")
  m1=$(cpu_ticks "$CW_MQTT_PID")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
  rej=$(rejects)
  stop_daemon
  stored=$(PSQL "SELECT count(*) FROM readings")
  sent=$(field readings <"$OUT/replay-$tag")
  lost=$((sent - rej - stored))
  local steady=n/a
  if awk "BEGIN { exit !($DONE_T > $FIRST_T && $DONE_ROWS > $FIRST_ROWS) }"; then
    steady=$(calc "($DONE_ROWS - $FIRST_ROWS) / ($DONE_T - $FIRST_T)" 0)
  fi
  echo "e2e: sent=$sent stored=$stored rejected=$rej lost=$lost seconds=$(calc "$DONE_T - $t0") readings_per_s=$(calc "$stored / ($DONE_T - $t0)" 0) steady_readings_per_s=$steady cpu_us_per_reading=$(calc "($c1 - $c0) * 1e6 / $TCK / $want" 2) startup_cpu_ms=$(calc "$st * 1000 / $TCK" 0) cpu_us_per_reading_after_start=$(calc "($c1 - $c0 - $st) * 1e6 / $TCK / $want" 2) broker_cpu_us_per_msg=$(calc "($m1 - $m0) * 1e6 / $TCK / $n" 2) hwm_kb=$hwm" >"$OUT/e2e.$tag"
  cat "$OUT/e2e.$tag" >&2
}

# ---------------------------------------------------------------- ceilings + daemon, interleaved
say "bench: bare subscriber and chargewatchd, $RUNS interleaved runs each: live, drain, batched live, batched drain"
PSQL "$(cat "$OUT/stations.sql")" >/dev/null
for r in $(seq 1 "$RUNS"); do
  echo "run $r: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/loadavg.txt"
  countsub_run "$OUT/city.cap" 'cw/+/+/telemetry' "$NMSG" "drain$r"
  e2e_run "$OUT/city.cap" "$NREAD" "$NMSG" "drain$r"
  countsub_run "$OUT/city-batched.cap" 'cw/+/telemetry' "$NMSG_B" "bdrain$r"
  e2e_run "$OUT/city-batched.cap" "$NREAD_B" "$NMSG_B" "bdrain$r"
  countsub_run "$OUT/city.cap" 'cw/+/+/telemetry' "$NMSG" "live$r"
  e2e_run "$OUT/city.cap" "$NREAD" "$NMSG" "live$r"
  countsub_run "$OUT/city-batched.cap" 'cw/+/telemetry' "$NMSG_B" "batched$r"
  e2e_run "$OUT/city-batched.cap" "$NREAD_B" "$NMSG_B" "batched$r"
done

# Where the daemon's remaining time goes: one more single-reading drain
# (not counted above) under perf (software event cpu-clock: this VM has no
# hardware counters), attached as soon as the daemon starts.
PROF_OK=0
if command -v perf >/dev/null; then
  say "bench: profile of one drain (perf, cpu-clock)"
  reset_db
  start_daemon cw-bench-prof
  stop_daemon keep
  $REPLAY -f "$OUT/city.cap" --client-prefix cw-p-prof >"$OUT/replay-prof" 2>/dev/null
  t0=$(now)
  # under perf from its first instruction: perf follows the threads the
  # daemon creates later (paho's, the writer's), which -p PID would miss
  daemon_conf cw-bench-prof
  perf record -e cpu-clock -F 999 -g -o "$OUT/perf.data" -- "$DAEMON_BIN" -c "$OUT/chargewatch.conf" \
    >"$OUT/perf.log" 2>>"$OUT/daemon.log" &
  PERF=$!
  BG_PIDS="$PERF"
  DAEMON_PID=""
  for _ in $(seq 1 100); do
    DAEMON_PID=$({ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pp="$PERF" '$4 == pp && $2 == "(chargewatchd)" {print $1}')
    [ -n "$DAEMON_PID" ] && break
    sleep 0.05
  done
  DAEMON_ID=cw-bench-prof
  wait_rows "$NREAD" "$OUT/samples.prof" "$t0"
  [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null
  wait "$PERF" 2>/dev/null || true
  BG_PIDS=""
  DAEMON_PID=""
  drop_session cw-bench-prof
  echo "perf record -e cpu-clock -F 999 -g -- chargewatchd ...   (one drain of \$OUT/city.cap, not in the medians)" >>"$CMDS"
  if [ -s "$OUT/perf.data" ]; then
    PROF_OK=1
    PR() { perf report -i "$OUT/perf.data" --stdio --no-children -g none --percent-limit 1 "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' || true; }
    PR --sort comm >"$OUT/profile-thread.txt"
    PR --sort dso >"$OUT/profile-dso.txt"
    PR --sort dso,sym >"$OUT/profile-sym.txt"
  fi
fi

# Detection needs the single-reading capture's alerts: one more live run,
# kept, with the replay's ts shift recovered from the first record.
say "bench: detection run against the ground truth"
reset_db
start_daemon cw-bench-detect
PSQL "$(cat "$OUT/stations.sql")" >/dev/null
kill -HUP "$DAEMON_PID"
sleep 0.5
t0=$(now)
$REPLAY -f "$OUT/city.cap" --client-prefix cw-p-detect >"$OUT/replay-detect" 2>/dev/null
wait_rows "$NREAD" "$OUT/samples.detect" "$t0"
sleep 1
stop_daemon
FIRST=$(grep -a -o -m1 'cw/[A-Za-z0-9_-]*/[0-9]*/telemetry{"ts":[0-9]*' "$OUT/city.cap" | head -1)
F_ST=$(echo "$FIRST" | cut -d/ -f2)
F_SO=$(echo "$FIRST" | cut -d/ -f3)
F_TS=${FIRST##*:}
SHIFT=$(PSQL "SELECT round(extract(epoch FROM min(ts)) * 1000)::bigint - $F_TS FROM readings WHERE station = '$F_ST' AND socket = $F_SO")
PSQL "SELECT station, socket, kind, severity, round(extract(epoch FROM opened_at) * 1000)::bigint - $SHIFT,
        CASE WHEN severity = 'critical' THEN round(extract(epoch FROM coalesce(escalated_at, opened_at)) * 1000)::bigint - $SHIFT END
      FROM alerts WHERE station LIKE 'CX-%' ORDER BY 1, 2, 3" | tr '|' ',' >"$OUT/alerts.csv"
# Ground truth: offline rows need real receive-time silence (>= 90 s), which
# an as-fast-as-possible replay cannot have; they are scored separately.
awk -F, 'NR > 1 {print $3","$4","$1","$2","$5","$6}' "$OUT/truth.csv" | sort -t, -k1,1 -k2,2n -k3,3 >"$OUT/truth.sorted"
DET=$(awk -F, '
  FNR == NR { key = $1","$2","$3
              if (!(key in found) || $5 < open[key]) { open[key] = $5; crit[key] = $6 }
              found[key] = 1; next }
  { key = $1","$2","$3; if ($3 == "offline") { off++; if (key in found) offhit++; next }
    if (seen[key]++) next
    n[$3]++; tot++
    if (key in found) { tp++; hit[key] = 1; d = (open[key] - $5) / 1000; lead[$3] = lead[$3] " " d
      if ($4 == "critical") { if (crit[key] != "") { ct = (crit[key] - $5) / 1000; lc[$3] = lc[$3] " " ct } else critmiss++ } }
    else { fn++; miss = miss " " key } }
  END {
    for (k in found) { split(k, a, ","); if (a[3] == "offline") continue; if (!(k in hit)) { fp++; fps = fps " " k } }
    printf "tp=%d fn=%d fp=%d precision=%.3f recall=%.3f offline_truth=%d offline_found=%d crit_never_reached=%d\n",
      tp, fn, fp, (tp + fp) ? tp / (tp + fp) : 0, tot ? tp / tot : 0, off, offhit, critmiss
    for (k in lead) printf "lead_%s=%s\n", k, lead[k]
    for (k in lc) printf "crit_%s=%s\n", k, lc[k]
    if (miss != "") printf "missed=%s\n", miss
    if (fps != "") printf "false=%s\n", fps
  }' "$OUT/alerts.csv" "$OUT/truth.sorted")
echo "$DET" >"$OUT/detection.txt"
echo "shift_ms=$SHIFT first=$FIRST" >>"$OUT/detection.txt"
say "$DET"
# median and max of a space-separated list of seconds
medmax() { echo "$1" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR) printf "median %.0f s, max %.0f s (n=%d)", (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2, a[NR], NR; else printf "n/a"}'; }

# ---------------------------------------------------------------- alert latency
say "bench: alert latency, $LAT_N probes idle and under background replays at ${BG_X}x"
reset_db
start_daemon cw-bench-lat
# /healthz says the ingest client is up; the alert publisher has its own
# connection, which paho may open up to a second later: alerts raised before
# then wait in its outbox, a start-up delay, not the latency measured here
for _ in $(seq 1 100); do [ "$(metric alert_publisher_connected)" = 1 ] && break; sleep 0.1; done
LATCMD="$BUILD/bench/alertlat -u $CW_MQTT_URI -n $LAT_N -g 10"
echo "$LATCMD -o FILE   (idle, then during each: $BUILD/bench/replay -f $OUT/city.cap -u $CW_MQTT_URI -q 1 -x X -P $BG_P, X in $BG_X)" >>"$CMDS"
$LATCMD -o "$OUT/lat-idle.dat" >"$OUT/alertlat-idle.txt" || true
for x in $BG_X; do
  "$BUILD/bench/replay" -f "$OUT/city.cap" -u "$CW_MQTT_URI" -q 1 -x "$x" -P "$BG_P" --client-prefix "cw-bg$x" >"$OUT/replay-bg$x" 2>/dev/null &
  BG=$!
  BG_PIDS="$BG"
  sleep 1
  b0=$(metric messages_received_total)
  tb0=$(now)
  $LATCMD -o "$OUT/lat-load$x.dat" >"$OUT/alertlat-load$x.txt" || true
  b1=$(metric messages_received_total)
  tb1=$(now)
  echo "$(calc "(${b1:-0} - ${b0:-0} - $LAT_N) / ($tb1 - $tb0)" 0)" >"$OUT/bg-rate$x"
  kill "$BG" 2>/dev/null || true
  wait "$BG" 2>/dev/null || true
  BG_PIDS=""
done
stop_daemon

# ---------------------------------------------------------------- memory at BIG_S x 10 sockets
say "bench: RSS with $((BIG_S * 10)) tracked sockets"
GENBIG="$BUILD/bench/gen -o $OUT/big.cap -s $BIG_S -k 10 -i 60 -d 60 --seed 3 --anomaly-rate 0"
echo "$GENBIG" >>"$CMDS"
$GENBIG >/dev/null 2>&1
reset_db
start_daemon cw-bench-big
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
"$BUILD/bench/replay" -f "$OUT/big.cap" -u "$CW_MQTT_URI" -q 1 --asap --client-prefix cw-big >/dev/null 2>&1
TRACKED=0
for _ in $(seq 1 600); do
  TRACKED=$(metric sockets_tracked)
  TRACKED=${TRACKED:-0}
  [ "$TRACKED" -ge $((BIG_S * 10)) ] && break
  sleep 0.1
done
wait_rows $((BIG_S * 10)) "$OUT/samples.big" "$(now)"
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")
hwm_big=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
stop_daemon

# ---------------------------------------------------------------- table
pick() { for t in $(seq 1 "$RUNS"); do field "$2" <"$OUT/$1$t"; done | med; }
for kind in live batched drain bdrain; do
  eval "CS_RATE_$kind=\$(pick countsub.$kind msgs_per_s)"
  eval "CS_CPU_$kind=\$(pick countsub.$kind cpu_us_per_msg)"
  eval "CS_BRK_$kind=\$(pick countsub.$kind broker_cpu_us_per_msg)"
  eval "E_RATE_$kind=\$(pick e2e.$kind readings_per_s)"
  eval "E_CPU_$kind=\$(pick e2e.$kind cpu_us_per_reading)"
  eval "E_CPUS_$kind=\$(pick e2e.$kind cpu_us_per_reading_after_start)"
  eval "E_START_$kind=\$(pick e2e.$kind startup_cpu_ms)"
  eval "E_BRK_$kind=\$(pick e2e.$kind broker_cpu_us_per_msg)"
  eval "E_STEADY_$kind=\$(pick e2e.$kind steady_readings_per_s)"
  eval "E_LOST_$kind=\$(for t in \$(seq 1 $RUNS); do field lost <$OUT/e2e.$kind\$t; done | sort -g | tail -1)"
  eval "E_HWM_$kind=\$(for t in \$(seq 1 $RUNS); do field hwm_kb <$OUT/e2e.$kind\$t; done | sort -g | tail -1)"
done
COPY_CMD="$BUILD/bench/copyraw -f $OUT/city.cap -c \"\$CONN\" -b 5000"
echo "$COPY_CMD   (then TRUNCATE readings; $RUNS runs)" >>"$CMDS"
say "bench: raw binary COPY ceiling, $RUNS runs"
reset_db
for r in $(seq 1 "$RUNS"); do
  "$BUILD/bench/copyraw" -f "$OUT/city.cap" -c "$CW_PG_CONN" -b 5000 >"$OUT/copyraw.$r"
  reset_db
done
COPY_RATE=$(for r in $(seq 1 "$RUNS"); do field rows_per_s <"$OUT/copyraw.$r"; done | med)
readvals() { for t in $(seq 1 "$RUNS"); do field "$2" <"$OUT/$1$t"; done | tr '\n' ' '; }

# ---------------------------------------------------------------- Node-RED, same batched messages
# Only if `make bench-peers` has installed it (build/peers/node-red): one
# interleaved chargewatchd + Node-RED run of bench/peers/run.sh --batched
# (live, its own broker and database), table not appended there.
NR_CPU="" CWP_CPU="" NR_NOTE="Node-RED not installed (\`make bench-peers\` installs it): no comparison this run"
if [ -f build/peers/node-red/node_modules/node-red/red.js ]; then
  say "bench: chargewatchd and Node-RED on the same station-batched messages (bench/peers/run.sh --batched)"
  PEERS_CMD="CW_PEERS_APPEND=0 CW_PEERS='chargewatchd nodered' BUILD=$BUILD RUNS=${PEER_RUNS:-1} bash bench/peers/run.sh --batched"
  echo "$PEERS_CMD" >>"$CMDS"
  if CW_PEERS_APPEND=0 CW_PEERS='chargewatchd nodered' BUILD=$BUILD RUNS=${PEER_RUNS:-1} bash bench/peers/run.sh --batched >"$OUT/peers.txt" 2>&1; then
    PRES=build/peers/run/results.tsv
    NR_CPU=$(awk -F'\t' '$1 == "nodered" {print $5}' "$PRES" | med)
    CWP_CPU=$(awk -F'\t' '$1 == "chargewatchd" {print $5}' "$PRES" | med)
    NR_NOTE="same run, \`$PEERS_CMD\` (live: both subscribed while replay publishes)"
  else
    NR_NOTE="bench/peers/run.sh --batched failed (see \$OUT/peers.txt)"
  fi
fi

# Engine state per socket (the detection engine alone, 100,000 sockets).
ENGINE_MEM=$("$BUILD/test_unit" detect_100k_sockets_memory 2>&1 | sed -n 's/^ *detect: //p' | head -1)
ENGINE_MEM=${ENGINE_MEM:-n/a}

LAT_IDLE=$(sed 's/^alertlat: //' "$OUT/alertlat-idle.txt")
NOW=$(date -u +%Y-%m-%dT%H:%MZ)
CPU_MODEL=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(( $(date +%s) - T_START ))
PER_SOCK=$(( (rss1 - rss0) * 1024 / (TRACKED > 0 ? TRACKED : 1) ))
r3() { calc "$1" 2; }
{
  echo
  echo "## make bench ($MODE), $NOW$([ -n "${CW_BENCH_DAEMON:-}" ] && echo ", daemon $CW_BENCH_DAEMON")"
  echo
  echo "Machine: $(nproc) cores, $CPU_MODEL, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); broker, database, publisher and consumer on the same box."
  echo "Load average (1/5/15 min) at start $LOAD0, at end $LOAD1: other work shared the cores, so elapsed-time figures are noisy; CPU per reading is the steadier comparison."
  echo "Capture: $NMSG messages = $NREAD readings (single); batched: $NMSG_B messages = $NREAD_B readings. Median of $RUNS runs; ceiling and daemon runs interleaved. Took ${ELAPSED} s."
  echo "Load average before each run: $(tr '\n' ';' <"$OUT/loadavg.txt" | sed 's/;$//; s/;/; /g')."
  echo
  echo "Goals of the ingest path (ratios against the bare paho subscriber of the same run):"
  echo
  echo "| goal | measured | target |"
  echo "|---|---|---|"
  echo "| drain, one reading per message: daemon CPU per message / bare subscriber's | $E_CPU_drain / $CS_CPU_drain us = $(r3 "$E_CPU_drain / $CS_CPU_drain")x | <= 1.25x |"
  echo "| the same, the daemon's start-up CPU left out (its first, idle start in the same run: $E_START_drain ms) | $E_CPUS_drain / $CS_CPU_drain us = $(r3 "$E_CPUS_drain / $CS_CPU_drain")x | <= 1.25x |"
  echo "| drain, station-batched: daemon CPU per reading / bare subscriber's | $E_CPU_bdrain / $(calc "$CS_CPU_bdrain * $NMSG_B / $NREAD_B" 2) us = $(r3 "$E_CPU_bdrain / ($CS_CPU_bdrain * $NMSG_B / $NREAD_B)")x | <= 2.2x |"
  echo "| the same, start-up left out ($E_START_bdrain ms) | $E_CPUS_bdrain / $(calc "$CS_CPU_bdrain * $NMSG_B / $NREAD_B" 2) us = $(r3 "$E_CPUS_bdrain / ($CS_CPU_bdrain * $NMSG_B / $NREAD_B)")x | <= 2.2x |"
  echo "| drain, station-batched: readings/s into the indexed readings table (first row -> last row committed; from the daemon's start: $E_RATE_bdrain) | $E_STEADY_bdrain | >= 150,000 |"
  if [ -n "$NR_CPU" ]; then
    echo "| station-batched, live: Node-RED CPU per reading / chargewatchd's ($NR_NOTE) | $NR_CPU / $CWP_CPU us = $(calc "$NR_CPU / $CWP_CPU" 1)x | >= 10x |"
  else
    echo "| station-batched: Node-RED CPU per reading / chargewatchd's | $NR_NOTE | >= 10x |"
  fi
  for x in $BG_X; do
    echo "| alert latency p99 with ~$(cat "$OUT/bg-rate$x") msgs/s background (${x}x replay, $BG_P connections) | $(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' "$OUT/alertlat-load$x.txt") ms | <= 10 ms at 20,000 msgs/s |"
  done
  echo "| detection engine state (\`test_unit detect_100k_sockets_memory\`) | $ENGINE_MEM | report |"
  echo "| daemon RSS at $TRACKED tracked sockets | $rss1 KiB ($PER_SOCK B/socket over the idle daemon's $rss0 KiB) | report |"
  echo
  echo "| figure | chargewatchd | ceiling (same run) | ratio |"
  echo "|---|---|---|---|"
  echo "| readings/s, live: replay publishing while consumer runs (first publish -> last row committed) | $E_RATE_live | bare paho subscriber: $CS_RATE_live msgs/s | $(r3 "$E_RATE_live / $CS_RATE_live") |"
  echo "| readings/s, drain: broker backlog of the whole capture consumed | $E_RATE_drain | bare paho subscriber: $CS_RATE_drain msgs/s | $(r3 "$E_RATE_drain / $CS_RATE_drain") |"
  echo "| readings/s, drain, station-batched (from the daemon's start / first row -> last row) | $E_RATE_bdrain / $E_STEADY_bdrain | bare paho subscriber: $CS_RATE_bdrain msgs/s = $(calc "$CS_RATE_bdrain * $NREAD_B / $NMSG_B" 0) readings/s | $(r3 "$E_RATE_bdrain / ($CS_RATE_bdrain * $NREAD_B / $NMSG_B)") |"
  echo "| readings/s, live, station-batched (one message per station per interval) | $E_RATE_batched | bare paho subscriber: $CS_RATE_batched msgs/s = $(calc "$CS_RATE_batched * $NREAD_B / $NMSG_B" 0) readings/s | $(r3 "$E_RATE_batched / ($CS_RATE_batched * $NREAD_B / $NMSG_B)") |"
  echo "| readings/s vs raw binary COPY into the same indexed partitioned table (5000-row transactions) | $E_RATE_drain (drain) | $COPY_RATE rows/s | $(r3 "$E_RATE_drain / $COPY_RATE") |"
  echo "| daemon CPU us per reading, live | $E_CPU_live | bare subscriber $CS_CPU_live us/msg | $(r3 "$E_CPU_live / $CS_CPU_live") |"
  echo "| daemon CPU us per reading, drain | $E_CPU_drain | bare subscriber $CS_CPU_drain us/msg | $(r3 "$E_CPU_drain / $CS_CPU_drain") |"
  echo "| daemon CPU us per reading, batched drain | $E_CPU_bdrain | bare subscriber $(calc "$CS_CPU_bdrain * $NMSG_B / $NREAD_B" 2) us/reading ($CS_CPU_bdrain us/msg) | $(r3 "$E_CPU_bdrain / ($CS_CPU_bdrain * $NMSG_B / $NREAD_B)") |"
  echo "| daemon CPU us per reading, batched | $E_CPU_batched | bare subscriber $(calc "$CS_CPU_batched * $NMSG_B / $NREAD_B" 2) us/reading ($CS_CPU_batched us/msg) | $(r3 "$E_CPU_batched / ($CS_CPU_batched * $NMSG_B / $NREAD_B)") |"
  echo "| in-process decode+detect+COPY encode, CPU ns per reading (\`pipeline\`) | $PIPE_NS | bare cJSON parse $CJSON_NS ns | $(r3 "$PIPE_NS / $CJSON_NS") |"
  echo "| mosquitto CPU us per message (live / drain / batched / batched drain) | $E_BRK_live / $E_BRK_drain / $E_BRK_batched / $E_BRK_bdrain | with the bare subscriber: $CS_BRK_live / $CS_BRK_drain / $CS_BRK_batched / $CS_BRK_bdrain | |"
  echo "| rows lost (sent - rejected - stored), worst run (live / drain / batched / batched drain) | $E_LOST_live / $E_LOST_drain / $E_LOST_batched / $E_LOST_bdrain | 0 | |"
  echo "| peak RSS (VmHWM), largest run (live / drain / batched / batched drain) | $E_HWM_live / $E_HWM_drain / $E_HWM_batched / $E_HWM_bdrain KiB | | |"
  echo "| RSS at $TRACKED tracked sockets | $rss1 KiB (at start $rss0 KiB: $PER_SOCK B/socket; VmHWM $hwm_big KiB) | | |"
  echo "| alert latency, publish -> retained alert received (fresh socket, t = 95 C), idle | $LAT_IDLE | | |"
  for x in $BG_X; do
    echo "| alert latency, same, during a ${x}x replay of the capture (daemon receiving ~$(cat "$OUT/bg-rate$x") msgs/s besides) | $(sed 's/^alertlat: //' "$OUT/alertlat-load$x.txt") | | |"
  done
  echo "| detection vs ground truth, (station, socket, kind), offline scored apart | $(head -1 "$OUT/detection.txt") | | |"
  for k in thermal_runaway overload overnight_charging; do
    l=$(sed -n "s/^lead_$k=//p" "$OUT/detection.txt"); c=$(sed -n "s/^crit_$k=//p" "$OUT/detection.txt")
    echo "| $k: alert opened - injected start (event time) | $(medmax "$l") | critical at: $(medmax "$c") | |"
  done
  echo
  echo "Per run (live / batched / drain / batched drain): daemon readings/s $(readvals e2e.live readings_per_s)/ $(readvals e2e.batched readings_per_s)/ $(readvals e2e.drain readings_per_s)/ $(readvals e2e.bdrain readings_per_s); bare subscriber msgs/s $(readvals countsub.live msgs_per_s)/ $(readvals countsub.batched msgs_per_s)/ $(readvals countsub.drain msgs_per_s)/ $(readvals countsub.bdrain msgs_per_s); daemon CPU us/reading $(readvals e2e.live cpu_us_per_reading)/ $(readvals e2e.batched cpu_us_per_reading)/ $(readvals e2e.drain cpu_us_per_reading)/ $(readvals e2e.bdrain cpu_us_per_reading); bare subscriber CPU us/msg $(readvals countsub.live cpu_us_per_msg)/ $(readvals countsub.batched cpu_us_per_msg)/ $(readvals countsub.drain cpu_us_per_msg)/ $(readvals countsub.bdrain cpu_us_per_msg); COPY rows/s $(for r in $(seq 1 "$RUNS"); do field rows_per_s <"$OUT/copyraw.$r"; done | tr '\n' ' ')."
  echo
  echo "Definitions: live = the subscriber is connected while \`replay\` publishes (QoS 1, one connection), so both are bounded by the publisher too; drain = the broker first queues the whole capture for the consumer's persistent session, then the consumer is started and timed until the last message (subscriber) or the last row committed (daemon, from its start); "start-up left out" subtracts the CPU the same daemon used in its first start (the one that creates the session), 1 s after it answered on /metrics with nothing to receive. The benchmark itself polls /metrics every ~50 ms (about 0.5 ms of the daemon's CPU per poll), which counts in the daemon's figures. CPU is utime+stime of the consumer process (/proc/PID/stat, getrusage) over the same interval, per reading. Lead time = alerts.opened_at minus the injected start_ts_ms of gen's truth row, both in capture time (the replay's ts shift, $SHIFT ms, recovered from the first record); negative = raised before the labelled start (e.g. the 2 C/min warning before the runaway jump)."
  [ -s "$OUT/daemon-exit.txt" ] && { echo; echo "Daemon exits: $(grep -c shutdown "$OUT/daemon-exit.txt") stops, slowest shutdown $(sed -n 's/.*shutdown \([0-9.]*\) s/\1/p' "$OUT/daemon-exit.txt" | sort -g | tail -1) s; non-zero exits: $(grep -c 'exit status' "$OUT/daemon-exit.txt" || true)."; }
  echo
  echo "Commands (OUT=build/bench-run):"
  echo
  echo '```'
  echo "make bench    # = bash bench/bench.sh $MODE (BUILD=$BUILD RUNS=$RUNS)"
  sed "s#$OUT#\$OUT#g" "$CMDS"
  echo '```'
  echo
  if [ "$PROF_OK" = 1 ]; then
    echo "Where the daemon's time goes in a single-reading drain (perf, software event cpu-clock, 999 Hz, whole process; share of its samples; rows under 1 % left out):"
    echo
    echo '```'
    echo "by thread:"
    cat "$OUT/profile-thread.txt"
    echo "by object:"
    cat "$OUT/profile-dso.txt"
    echo "by function:"
    head -30 "$OUT/profile-sym.txt"
    echo '```'
    echo
  fi
  echo "In-process pipeline (\`$PIPE_CMD\`, then \`--batched\`):"
  echo
  echo '```'
  grep -v -e '^pipeline: last run' -e ' info: ' "$OUT/pipeline.txt"
  grep -E 'readings_per_s|^stage|pipeline: ring' "$OUT/pipeline-batched.txt" || true
  echo '```'
} >"$OUT/table.md"
cat "$OUT/table.md"
cat "$OUT/table.md" >>bench/RESULTS.md

# ---------------------------------------------------------------- plots
"$BUILD/bench/fsri_replay" -o "$OUT/fsri-curve.dat" >"$OUT/fsri-events.txt"
bash bench/plot.sh "$OUT" || say "bench: plotting failed"
say "bench: table appended to bench/RESULTS.md; plots in $OUT/*.png; ${ELAPSED} s"
