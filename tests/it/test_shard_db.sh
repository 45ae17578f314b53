#!/bin/bash
# test_shard_db.sh - [cluster] shard_conninfo.K (docs/SCALING.md): one
# cluster-mode daemon owning all S = 4 shards (P = 16), two real PostgreSQL
# clusters; shards 1 and 3 have shard_conninfo pointing at the second one.
# 40 stations x 3 sockets x 5 readings are published straight to their
# partition topics cwp/<p>/cw/... (p computed with the broker's function,
# cw_partition in nats_lib.sh; mosquitto does no mapping). Checks: every
# reading is in the database of its station's shard, none lost, none in
# both; the second database registers its stations and keeps their
# sockets.last_ts; a restart restores those from it; alerts stay in the
# main database.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh" # cw_partition only

SP=16
SS=4
N_ST=40
N_SOCK=3
N_RD=5
PG2_DIR=""

teardown() {
  local rc=$?
  [ -n "$PG2_DIR" ] && cw_pg_stop "$PG2_DIR" 2>/dev/null
  (exit "$rc")
  it_teardown
}
trap teardown EXIT
trap 'exit 130' INT TERM

it_start_services
PG1_PORT=$CW_PG_PORT
PG2_DIR=$IT_DIR/pg2
[ -n "$IT_PG_TMP" ] && PG2_DIR=$IT_PG_TMP/pg2
cw_pg_start "$PG2_DIR" "$(cw_free_port $((PG1_PORT + 1)))" || { it_fail "second postgres started" running failed; exit 1; }
PG2_PORT=$CW_PG_PORT
CW_PG_PORT=$PG1_PORT # it_sql and the main conninfo: the first cluster
it_ok "two PostgreSQL clusters on 127.0.0.1:$PG1_PORT and :$PG2_PORT"
sql2() { "$IT_PSQL" -h 127.0.0.1 -p "$PG2_PORT" -U postgres -d chargewatch -tAc "$1"; }

DB2="host=127.0.0.1 port=$PG2_PORT user=postgres dbname=chargewatch"
IT_EXTRA_CONF="[mqtt]
topic = cwp/{partition}/cw/{station}/{socket}/telemetry
station_topic = cwp/{partition}/cw/{station}/telemetry
[cluster]
shards = $SS
partitions = $SP
lease_check_ms = 300
blind_s = 5
journal_dir = $IT_DIR/journal
shard_conninfo.1 = $DB2
shard_conninfo.3 = $DB2"
it_write_config
it_daemon_start
subscribed() { grep -c "cw-shard-[0-9]* subscribed" "$IT_DIR/daemon.log"; }
it_wait_eq 30 "$SS" subscribed >/dev/null
it_eq "all $SS shards leased and subscribed" "$SS" "$(subscribed)"
it_eq "one readings writer for the second database" 1 \
  "$(grep -c 'writer db-[0-9a-f]*: the readings of 2 shards' "$IT_DIR/daemon.log")"

# publish: one mosquitto_pub per socket (its 5 readings, QoS 1)
now=$(it_now_ms)
declare -A SHARD
for i in $(seq -w 1 $N_ST); do
  st=SD$i
  p=$(cw_partition "$st" $SP)
  SHARD[$st]=$((p % SS))
  for so in $(seq 1 $N_SOCK); do
    for r in $(seq 1 $N_RD); do
      it_reading $((now - (N_RD - r) * 1000 - 60000)) 100
      echo
    done >"$IT_DIR/pub.txt"
    mosquitto_pub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -t "cwp/$p/cw/$st/$so/telemetry" -l <"$IT_DIR/pub.txt"
  done
done
total=$((N_ST * N_SOCK * N_RD))
both() { echo $(($(it_sql "SELECT count(*) FROM readings WHERE station LIKE 'SD%'") + $(sql2 "SELECT count(*) FROM readings WHERE station LIKE 'SD%'"))); }
it_wait_eq 30 "$total" both >/dev/null
it_eq "every reading stored (both databases together)" "$total" "$(both)"

# each station's readings in exactly the database of its shard
bad=0
n2=0
for st in "${!SHARD[@]}"; do
  k=${SHARD[$st]}
  c1=$(it_sql "SELECT count(*) FROM readings WHERE station = '$st'")
  c2=$(sql2 "SELECT count(*) FROM readings WHERE station = '$st'")
  if [ "$k" = 1 ] || [ "$k" = 3 ]; then want2=$((N_SOCK * N_RD)); want1=0; n2=$((n2 + 1)); else want1=$((N_SOCK * N_RD)); want2=0; fi
  if [ "$c1" != "$want1" ] || [ "$c2" != "$want2" ]; then
    bad=$((bad + 1))
    it_note "$st (shard $k): main $c1, second $c2 (want $want1, $want2)"
  fi
done
it_note "$n2 of $N_ST stations are in shards 1 and 3"
it_ge "some stations map to the second database" 1 "$n2"
it_eq "every station's readings only in its shard's database" 0 "$bad"
it_eq "no duplicated row in the second database" "$(sql2 "SELECT count(*) FROM readings WHERE station LIKE 'SD%'")" \
  "$(sql2 "SELECT count(DISTINCT (station, socket, ts)) FROM readings WHERE station LIKE 'SD%'")"
it_eq "the second database registered its stations" "$n2" "$(sql2 "SELECT count(*) FROM stations WHERE code LIKE 'SD%'")"
last_ts() { sql2 "SELECT count(*) FROM sockets WHERE station LIKE 'SD%' AND last_ts IS NOT NULL"; }
it_wait_eq 10 $((n2 * N_SOCK)) last_ts >/dev/null
it_eq "the second database keeps their sockets.last_ts" $((n2 * N_SOCK)) "$(last_ts)"
in2=""
for st in "${!SHARD[@]}"; do [ $((SHARD[$st] % 2)) = 1 ] && in2="$in2,'$st'"; done
it_eq "the main database has no socket of theirs" 0 \
  "$(it_sql "SELECT count(*) FROM sockets WHERE station IN (${in2#,})")"

# restart: shards 1 and 3 restore their sockets' last ts from the second database
it_daemon_stop
it_eq "daemon exits 0 on SIGTERM" 0 "$IT_EXIT_RC"
: >"$IT_DIR/daemon.log"
it_daemon_start
it_wait_eq 30 "$SS" subscribed >/dev/null
restored() { # K: socket states and alerts restored when shard K was acquired
  sed -n "s/.*shard $1: lease acquired .*, \([0-9]*\) socket states.*/\1/p" "$IT_DIR/daemon.log" | tail -1
}
want1=$(sql2 "SELECT count(*) FROM sockets WHERE last_ts IS NOT NULL")
got=$(($(restored 1) + $(restored 3)))
it_ge "shards 1 and 3 restored their last ts from the second database" "$want1" "$got"
it_eq "no spool left behind" 0 "$(find "$IT_DIR/spool" -name '*.spool' -size +0 2>/dev/null | wc -l)"
it_eq "the second database has no alert table rows (alerts stay in the main one)" 0 "$(sql2 "SELECT count(*) FROM alerts")"
