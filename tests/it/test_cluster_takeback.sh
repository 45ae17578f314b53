#!/bin/bash
# test_cluster_takeback.sh - a shard that moves away and back
# ([cluster], docs/SCALING.md "Restore per shard", "Rebalancing"): S = 2
# shards, P = 8 partitions, one mosquitto (the test publishes on the
# partitioned topics cwp/<p>/cw/... itself, as the broker's mapping would)
# and one PostgreSQL.
#   1. daemon 1 alone owns both shards; a thermal runaway at one station of
#      each shard raises alert X there
#   2. daemon 2 joins: one shard moves to it (the daemons' own lease lines
#      say which). An operator closes that shard's X from SQL (cw_close:
#      NOTIFY, heard by both daemons): closed once, by the shard's owner
#      (its alert log, its MQTT event); the giver no longer holds a copy. The runaway there comes back: daemon 2
#      raises a new alert Y
#   3. daemon 2 stops: the shard goes back to daemon 1, which restores Y;
#      the runaway goes on (Y continues, nothing raised again), then ends
#      (Y cleared once, by daemon 1). The other shard never moved: one
#      alert there, untouched
#   4. daemon 2 joins again and raises alert Z at a station of the shard it
#      gets; then it loses its lease (its control session ended, its role
#      refused new logins: it cannot take the shard back) and daemon 1 takes
#      the shard over. Once daemon 2's rings are drained its engines forget
#      (its own log says so); an operator closes Z: closed once, by daemon 1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh" # cw_partition
. "$(dirname "$0")/cluster_lib.sh"
P=8
S=2

# the daemons stop first; it_teardown then reports with the script's status
trap 'st=$?; for k in 1 2; do [ -n "${DPID[$k]:-}" ] && kill -TERM "${DPID[$k]}" 2>/dev/null; done;
      for k in 1 2; do [ -n "${DPID[$k]:-}" ] && wait "${DPID[$k]}" 2>/dev/null; done; (exit "$st"); it_teardown' EXIT
trap 'exit 130' INT TERM
it_start_services
for k in 1 2; do
  cl_conf "$k" "tcp://127.0.0.1:$CW_MQTT_PORT"
  printf '[detectors]\nhold_s = 2\ncooldown_s = 1\n' >>"$IT_DIR/d$k/chargewatch.conf"
done
# daemon 2 logs in as a role of its own (step 4 refuses its new logins)
it_sql "CREATE ROLE cw_tb2 SUPERUSER LOGIN" >/dev/null
sed -i 's/user=postgres dbname=/user=cw_tb2 dbname=/' "$IT_DIR/d2/chargewatch.conf"

# one station per shard (partition mod S)
read -r ST0 P0 <<<"$(cl_station_of_shard 0 TB)"
read -r ST1 P1 <<<"$(cl_station_of_shard 1 TB)"
pub() { # STATION PARTITION TS_MS T
  it_pub "cwp/$2/cw/$1/1/telemetry" "$(it_reading "$3" 300 "$4")"
}
acquired() { grep -c "shard $2: lease acquired" "$IT_DIR/d$1/daemon.log" 2>/dev/null; }
subscribed() { grep -c "cw-shard-$2 subscribed" "$IT_DIR/d$1/daemon.log" 2>/dev/null; }
events() { # STATION EVENT: thermal events of that kind at the station
  it_sql "SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id
          WHERE a.station = '$1' AND a.kind = 'thermal_runaway' AND e.event = '$2'"
}
ids() { it_sql "SELECT count(DISTINCT id) FROM alerts WHERE station = '$1' AND kind = 'thermal_runaway'"; }
state_of() { it_sql "SELECT state FROM alerts WHERE id = $1"; }

# 1. daemon 1 owns both shards; X at each shard's station
cl_start 1
it_eq "daemon 1 leases and subscribes shard 0" 1 "$(it_wait_eq 60 1 subscribed 1 0)"
it_eq "daemon 1 leases and subscribes shard 1" 1 "$(it_wait_eq 60 1 subscribed 1 1)"
t0=$(($(it_now_ms) - 60000))
for st in "$ST0 $P0" "$ST1 $P1"; do
  set -- $st
  pub "$1" "$2" "$t0" 30
  pub "$1" "$2" $((t0 + 1000)) 95
done
it_eq "step 1: X raised at $ST0 (shard 0)" 1 "$(it_wait_eq 20 1 events "$ST0" raised)"
it_eq "step 1: X raised at $ST1 (shard 1)" 1 "$(it_wait_eq 20 1 events "$ST1" raised)"

# 2. daemon 2 joins; one shard moves to it
cl_start 2
moved=""
for _ in $(seq 1 300); do
  for k in 0 1; do [ "$(subscribed 2 "$k")" -ge 1 ] && moved=$k; done
  [ -n "$moved" ] && break
  sleep 0.2
done
it_eq "step 2: a shard moved to daemon 2" 1 "$([ -n "$moved" ] && echo 1 || echo 0)"
[ -n "$moved" ] || exit 1
if [ "$moved" = 0 ]; then SM=$ST0 PM=$P0 SK=$ST1; else SM=$ST1 PM=$P1 SK=$ST0; fi
it_note "shard $moved moved to daemon 2: $SM; $SK stays with daemon 1"
it_eq "step 2: daemon 1 released it" 1 "$(grep -c "shard $moved: lease released" "$IT_DIR/d1/daemon.log")"
IT_HTTP_PORT=$(cl_http_port 1)
it_eq "step 2: daemon 1's /metrics: 1 shard owned, 1 lease released" "1 0 1" \
  "$(it_metric chargewatch_shards_owned) $(it_metric "chargewatch_shard_owned{shard=\"$moved\"}") $(it_metric 'chargewatch_shard_leases_total{event="released"}')"
X=$(it_sql "SELECT id FROM alerts WHERE station = '$SM' AND kind = 'thermal_runaway'")
it_eq "step 2: cw_close of X returns true" t "$(it_sql "SELECT cw_close($X, 'it-op')")"
it_eq "step 2: X closed" closed "$(it_wait_eq 20 closed state_of "$X")"
sleep 2 # both daemons have heard the NOTIFY
it_eq "step 2: one closed event for X stored" 1 "$(events "$SM" closed)"
# every event a daemon emits goes to its alert log and to MQTT: the giver
# must not close a copy it kept (the database stores one close either way)
it_eq "step 2: X closed once across the daemons' alert logs (not by the giver)" "1 0" \
  "$(cat "$IT_DIR"/d*/alerts.log | grep -c " closed id=$X ") $(grep -c " closed id=$X " "$IT_DIR/d1/alerts.log")"
pub "$SM" "$PM" $((t0 + 10000)) 30
pub "$SM" "$PM" $((t0 + 11000)) 96
it_eq "step 2: the runaway again: Y raised" 2 "$(it_wait_eq 20 2 events "$SM" raised)"
Y=$(it_sql "SELECT max(id) FROM alerts WHERE station = '$SM' AND kind = 'thermal_runaway'")

# 3. daemon 2 stops: the shard goes back to daemon 1
kill -TERM "${DPID[2]}"
wait "${DPID[2]}"
it_eq "step 3: daemon 2 exits 0" 0 "$?"
DPID[2]=""
it_eq "step 3: daemon 1 takes shard $moved back" 2 "$(it_wait_eq 60 2 acquired 1 "$moved")"
it_eq "step 3: and subscribes it again" 2 "$(it_wait_eq 60 2 subscribed 1 "$moved")"
pub "$SM" "$PM" $((t0 + 20000)) 97
for i in 21 22 23 24 25 26; do pub "$SM" "$PM" $((t0 + i * 1000)) 30; done
it_eq "step 3: Y cleared by daemon 1" cleared "$(it_wait_eq 20 cleared state_of "$Y")"
sleep 1
it_eq "step 3: nothing raised again (Y continued)" 2 "$(events "$SM" raised)"
it_eq "step 3: one cleared event" 1 "$(events "$SM" cleared)"
it_eq "step 3: two alerts in all at $SM" 2 "$(ids "$SM")"
it_eq "the shard that never moved: one alert at $SK, still open" "1 open" \
  "$(ids "$SK") $(it_sql "SELECT state FROM alerts WHERE station = '$SK'")"

# 4. daemon 2 joins again, raises Z, then loses its lease to daemon 1
cl_start 2
m2=""
for _ in $(seq 1 300); do
  for k in 0 1; do [ "$(subscribed 2 "$k")" -ge "$([ "$k" = "$moved" ] && echo 2 || echo 1)" ] && m2=$k; done
  [ -n "$m2" ] && break
  sleep 0.2
done
it_eq "step 4: a shard moved to daemon 2 again" 1 "$([ -n "$m2" ] && echo 1 || echo 0)"
[ -n "$m2" ] || exit 1
read -r SZ PZ <<<"$(cl_station_of_shard "$m2" TC)"
a1=$(acquired 1 "$m2")
t4=$(($(it_now_ms) - 30000))
pub "$SZ" "$PZ" "$t4" 30
pub "$SZ" "$PZ" $((t4 + 1000)) 95
it_eq "step 4: Z raised at $SZ (shard $m2)" 1 "$(it_wait_eq 20 1 events "$SZ" raised)"
Z=$(it_sql "SELECT id FROM alerts WHERE station = '$SZ' AND kind = 'thermal_runaway'")
it_eq "step 4: by daemon 2" 1 "$(grep -c " raised id=$Z " "$IT_DIR/d2/alerts.log")"
it_sql "ALTER ROLE cw_tb2 NOLOGIN" >/dev/null
it_eq "step 4: daemon 2's control session ended" 1 \
  "$(it_sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE usename = 'cw_tb2' AND application_name = 'chargewatchd-lease'")"
lost() { grep -c "shard $m2: lease lost" "$IT_DIR/d2/daemon.log"; }
forgot() { grep -c "shard $m2: its engines forgot" "$IT_DIR/d2/daemon.log"; }
it_eq "step 4: daemon 2 loses shard $m2" 1 "$(it_wait_eq 20 1 lost)"
it_eq "step 4: daemon 1 takes it over" $((a1 + 1)) "$(it_wait_eq 30 $((a1 + 1)) acquired 1 "$m2")"
it_eq "step 4: daemon 2's engines forget it once its rings are drained" 1 "$(it_wait_eq 20 1 forgot)"
it_eq "step 4: cw_close of Z returns true" t "$(it_sql "SELECT cw_close($Z, 'it-op')")"
it_eq "step 4: Z closed" closed "$(it_wait_eq 20 closed state_of "$Z")"
sleep 2 # both daemons have heard the NOTIFY
it_eq "step 4: Z closed once across the daemons' alert logs, by daemon 1" "1 1" \
  "$(cat "$IT_DIR"/d*/alerts.log | grep -c " closed id=$Z ") $(grep -c " closed id=$Z " "$IT_DIR/d1/alerts.log")"
it_sql "ALTER ROLE cw_tb2 LOGIN" >/dev/null
