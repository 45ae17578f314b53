#!/bin/bash
# test_cluster_relapse.sh - a daemon that loses its lease while an alert it
# raised is not yet stored, and takes its shard back ([cluster],
# docs/SCALING.md "Restore per shard"): S = 2 shards, P = 8 partitions, one
# mosquitto (the test publishes on the partitioned topics itself), one
# PostgreSQL, one daemon.
#   1. a thermal runaway raises alert X while the writer cannot store its
#      event (a session of the test holds alert_events locked, as a database
#      that has just failed would)
#   2. the daemon's control session is ended: it loses both leases, its
#      clients are dropped, and it takes the shards back after its settling
#      periods. The take-back forgets the engines' state and restores from
#      the database, so it first waits until what the daemon raised is
#      stored: the lock is let go 4 s after the loss
#   3. the runaway goes on: X continues (restored), nothing is raised again
# /metrics says what the daemon holds (chargewatch_shards_owned,
# chargewatch_shard_owned, _sighted) and counts its lease events.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh" # cw_partition
. "$(dirname "$0")/cluster_lib.sh"
P=8
S=2

LOCKER=""
trap 'st=$?; [ -n "${LOCKER}" ] && kill "$LOCKER" 2>/dev/null;
      [ -n "${DPID[1]:-}" ] && kill -TERM "${DPID[1]}" 2>/dev/null && wait "${DPID[1]}" 2>/dev/null;
      (exit "$st"); it_teardown' EXIT
trap 'exit 130' INT TERM
it_start_services
cl_conf 1 "tcp://127.0.0.1:$CW_MQTT_PORT"
printf '[detectors]\nhold_s = 2\ncooldown_s = 1\n' >>"$IT_DIR/d1/chargewatch.conf"

read -r ST PT <<<"$(cl_station_of_shard 0 RL)"
pub() { it_pub "cwp/$PT/cw/$ST/1/telemetry" "$(it_reading "$1" 300 "$2")"; }
acquired() { grep -c "shard 0: lease acquired" "$IT_DIR/d1/daemon.log" 2>/dev/null; }
subscribed() { grep -c "cw-shard-$1 subscribed" "$IT_DIR/d1/daemon.log" 2>/dev/null; }
events() { # EVENT: thermal events of that kind at the station
  it_sql "SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id
          WHERE a.station = '$ST' AND a.kind = 'thermal_runaway' AND e.event = '$1'"
}
raised_logged() { grep -c "thermal_runaway raised id=[0-9]* station=$ST " "$IT_DIR/d1/alerts.log" 2>/dev/null; }
locked() { it_sql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                   WHERE a.application_name = 'it-locker' AND l.granted AND l.mode = 'ExclusiveLock'
                     AND l.relation = 'alert_events'::regclass"; }

cl_start 1
it_eq "shard 0 leased and subscribed" 1 "$(it_wait_eq 60 1 subscribed 0)"
it_eq "shard 1 leased and subscribed" 1 "$(it_wait_eq 60 1 subscribed 1)"
IT_HTTP_PORT=$(cl_http_port 1)
leases() { it_metric "chargewatch_shard_leases_total{event=\"$1\"}"; }
it_eq "/metrics: both shards owned" "2 1 1" \
  "$(it_metric chargewatch_shards_owned) $(it_metric 'chargewatch_shard_owned{shard="0"}') $(it_metric 'chargewatch_shard_owned{shard="1"}')"
it_eq "/metrics: 2 leases acquired, none lost" "2 0" "$(leases acquired) $(leases lost)"
t0=$(($(it_now_ms) - 60000))
pub "$t0" 30
it_eq "a first reading stored" 1 "$(it_wait_eq 20 1 it_rows "$ST")"
sighted0() { it_metric 'chargewatch_shard_sighted{shard="0"}'; }

# 1. X raised while alert_events is locked
PGAPPNAME=it-locker "$IT_PSQL" -X -q -h 127.0.0.1 -p "$CW_PG_PORT" -U postgres -d chargewatch \
  -c "BEGIN" -c "LOCK TABLE alert_events IN EXCLUSIVE MODE" -c "SELECT pg_sleep(120)" \
  >/dev/null 2>&1 &
LOCKER=$!
it_eq "alert_events locked by the test" 1 "$(it_wait_eq 20 1 locked)"
pub $((t0 + 1000)) 95
it_eq "step 1: X raised (alert log)" 1 "$(it_wait_eq 20 1 raised_logged)"
sleep 0.5
it_eq "step 1: its event not stored yet" 0 "$(events raised)"

# 2. the lease lost, the lock let go 4 s later
it_eq "step 2: the daemon's control session ended" 1 \
  "$(it_sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'chargewatchd-lease'")"
lost() { grep -c "shard 0: lease lost" "$IT_DIR/d1/daemon.log"; }
it_eq "step 2: shard 0's lease lost" 1 "$(it_wait_eq 20 1 lost)"
it_eq "step 2: /metrics: no shard owned, 2 leases lost" "0 0 2" \
  "$(it_metric chargewatch_shards_owned) $(sighted0) $(leases lost)"
sleep 4
it_sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
        WHERE application_name = 'it-locker'" >/dev/null
wait "$LOCKER" 2>/dev/null
LOCKER=""
it_eq "step 2: X's raise stored" 1 "$(it_wait_eq 30 1 events raised)"
it_eq "step 2: shard 0 taken back" 2 "$(it_wait_eq 30 2 acquired)"
it_eq "step 2: and subscribed again" 2 "$(it_wait_eq 30 2 subscribed 0)"
it_eq "step 2: /metrics: both owned again, 4 leases acquired" "2 4" \
  "$(it_wait_eq 10 2 it_metric chargewatch_shards_owned) $(leases acquired)"

# 3. the runaway goes on
pub $((t0 + 2000)) 96
pub $((t0 + 3000)) 97
it_eq "step 3: the readings stored" 4 "$(it_wait_eq 20 4 it_rows "$ST")"
sleep 1
it_eq "step 3: nothing raised again (X continued)" "1 1" "$(events raised) $(raised_logged)"
pub "$(it_now_ms)" 30 # a live reading: shard 0 caught up
it_eq "step 3: /metrics: shard 0 sighted again" 1 "$(it_wait_eq 20 1 sighted0)"
it_eq "step 3: one alert at $ST" 1 \
  "$(it_sql "SELECT count(*) FROM alerts WHERE station = '$ST' AND kind = 'thermal_runaway'")"
