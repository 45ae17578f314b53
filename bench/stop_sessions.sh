#!/usr/bin/env bash
# stop_sessions.sh - what a clean stop costs with charging sessions open: a
# private mosquitto and PostgreSQL on loopback, a bench/gen station-batched
# capture of NST stations x 10 sockets (default 1,000; 30 s of readings)
# replayed into the daemon, then SIGTERM, timed to the exit. Runs alternate
# the default configuration (the stop writes every open session as restart)
# with [detectors] session_checkpoint_s = 0 (no session rows at all), and
# print the charging_sessions rows before and after each stop.
#   bash bench/stop_sessions.sh [RUNS]       (NST=... for another size)
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-2}
OUT=$PWD/build/stop-sessions
. tests/services.sh
rm -rf "$OUT"
mkdir -p "$OUT"
make -s -j2 build/chargewatchd build/bench/gen build/bench/replay >/dev/null
cw_pg_start "$OUT/pg" "$(cw_free_port 57700)" >/dev/null
cw_mqtt_start "$OUT/mq" "$(cw_free_port 21950)"
HP=$(cw_free_port 22500)
P=""
trap '[ -n "$P" ] && kill "$P" 2>/dev/null; cw_mqtt_stop "$OUT/mq"; cw_pg_stop "$OUT/pg"' EXIT
build/bench/gen -o "$OUT/cap" -s "${NST:-1000}" -k 10 -i 10 -d 30 --batched >/dev/null 2>&1
sql() { psql -X -qtA "$CW_PG_CONN" -c "$1"; }
i=0
for r in $(seq 1 "$RUNS"); do
  for extra in "" '[detectors]\nsession_checkpoint_s = 0'; do
    i=$((i + 1))
    cw_daemon_conf "$OUT/c.conf" "$OUT" "$CW_MQTT_URI" "cw-stop-$i" "$CW_PG_CONN" "$HP" info
    [ -n "$extra" ] && printf '\n%b\n' "$extra" >>"$OUT/c.conf"
    build/chargewatchd -c "$OUT/c.conf" 2>>"$OUT/daemon.log" &
    P=$!
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$HP") 2>/dev/null && break; sleep 0.1; done
    sleep 1
    build/bench/replay -f "$OUT/cap" -u "$CW_MQTT_URI" -q 1 --asap --client-prefix "p$i" >/dev/null 2>&1
    sleep 3
    before=$(sql "SELECT count(*) FROM charging_sessions")
    t0=$EPOCHREALTIME
    kill -TERM "$P"
    wait "$P"
    t1=$EPOCHREALTIME
    P=""
    after=$(sql "SELECT count(*) FROM charging_sessions")
    echo "stop_sessions: run $r, ${extra:-defaults}: sessions stored before the stop $before, after $after; SIGTERM to exit $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s" | sed 's/\\n/ /'
    sql "TRUNCATE charging_sessions" >/dev/null
    mosquitto_sub -h 127.0.0.1 -p "$CW_MQTT_PORT" -i "cw-stop-$i" -t cw/stop/none -E >/dev/null 2>&1 || true
  done
done
