#!/bin/bash
# test_cluster_blind.sh - a shard is blind until its own backlog is in
# ([cluster], docs/SCALING.md "Blind until caught up"): mosquitto, one
# daemon with shards = 2, partitions = 4, ingest_lag_s = 2. While the daemon
# is stopped, shard 0's session queues a backlog of old readings (10 min
# before now). Checks, from the daemon's own log and /metrics:
#  A shard is sighted on evidence: a reading since its connect.
#  (0) quiet shards after the start (nothing published for 11 s): no
#      ingest alert, the daemon not blind, the shards not yet sighted
#  (a) after the restart, with the whole backlog stored and no live reading
#      yet, shard 0 is still blind (lagging) and so is the daemon (its last
#      "ingest:" line: blind, lagging), while shard 1 (no backlog) is sighted
#  (b) a live reading for a shard 0 station makes it sighted ("backlog in")
#  (c) with blind_s = 3 a backlog alone no longer keeps it blind: sighted
#      at the bound ("lagging"), the daemon still reports the lag
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh" # cw_partition only

trap it_teardown EXIT
trap 'exit 130' INT TERM
it_start_services
conf() { # BLIND_S
  IT_EXTRA_CONF="[mqtt]
topic = cwp/{partition}/cw/{station}/{socket}/telemetry
station_topic = cwp/{partition}/cw/{station}/telemetry
[detectors]
ingest_lag_s = 2
[cluster]
shards = 2
partitions = 4
lease_check_ms = 300
journal_dir = $IT_DIR/journal
blind_s = $1"
  it_write_config
}
# a station of shard 0 and one of shard 1
for i in $(seq 1 50); do
  p=$(cw_partition "BL$i" 4)
  if [ $((p % 2)) = 0 ] && [ -z "${S0:-}" ]; then S0=BL$i P0=$p; fi
  if [ $((p % 2)) = 1 ] && [ -z "${S1:-}" ]; then S1=BL$i P1=$p; fi
done
it_note "shard 0: $S0 (partition $P0); shard 1: $S1 (partition $P1)"
sighted() { grep -c "shard $1: sighted" "$IT_DIR/daemon.log"; }
daemon_blind() { grep "ingest: " "$IT_DIR/daemon.log" | tail -1 | grep -c "blind ("; }
backlog() { # N readings of S0, 10 min old, queued while the daemon is down
  local now i
  now=$(it_now_ms)
  for i in $(seq 1 "$1"); do it_reading $((now - 600000 + i * 1000)) 100; echo; done >"$IT_DIR/old.txt"
  mosquitto_pub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -t "cwp/$P0/cw/$S0/1/telemetry" -l <"$IT_DIR/old.txt"
}

live() { it_pub "cwp/$2/cw/$1/1/telemetry" "$(it_reading "$(it_now_ms)" 100)"; } # STATION P
subscribed() { grep -c "cw-shard-[0-9]* subscribed" "$IT_DIR/daemon.log"; }
conf 0
it_daemon_start
it_wait_eq 30 2 subscribed >/dev/null
# (0) silence is not lag: both shards connected and hearing nothing for
# longer than ingest_alert_s (10 s) keep their engines blind, yet the
# daemon raises no ingest alert (stations reporting every 30 s would
# otherwise raise it at every start and takeover)
sleep 11
it_eq "(0) quiet shards after the start: no ingest alert" 0 "$(grep -c ' ingest raised ' "$IT_DIR/alerts.log")"
it_eq "(0) ... and the daemon is not blind" 0 "$(daemon_blind)"
it_eq "(0) ... while the shards wait for a first reading" 0 $(($(sighted 0) + $(sighted 1)))
live "$S0" "$P0"
live "$S1" "$P1"
it_wait_eq 30 1 sighted 0 >/dev/null
it_wait_eq 30 1 sighted 1 >/dev/null
it_eq "both shards sighted after the first start (no backlog)" 2 $(($(sighted 0) + $(sighted 1)))
it_daemon_stop
it_eq "daemon exits 0 on SIGTERM" 0 "$IT_EXIT_RC"

backlog 200
: >"$IT_DIR/daemon.log"
it_daemon_start
rows() { it_sql "SELECT count(*) FROM readings WHERE station = '$S0' AND ts < now() - interval '1 minute'"; }
fresh() { it_sql "SELECT count(*) FROM readings WHERE station = '$S0' AND ts >= now() - interval '1 minute'"; }
it_wait_eq 30 200 rows >/dev/null
it_eq "(a) the backlog stored" 200 "$(rows)"
live "$S1" "$P1"
it_wait_eq 30 1 sighted 1 >/dev/null
it_eq "(a) shard 1 (no backlog, a live reading) sighted" 1 "$(sighted 1)"
sleep 1 # one more blindness tick after the last row
it_eq "(a) shard 0 still blind: only old readings came" 0 "$(sighted 0)"
it_eq "(a) the daemon reports it blind" 1 "$(daemon_blind)"
t0=$(it_now_ms)
it_pub "cwp/$P0/cw/$S0/1/telemetry" "$(it_reading "$(it_now_ms)" 100)"
it_wait_eq 30 2 fresh >/dev/null
it_wait_eq 30 1 sighted 0 >/dev/null
it_eq "(b) a live reading: shard 0 sighted" 1 "$(sighted 0)"
it_eq "(b) ... because its backlog is in" 1 "$(grep -c "shard 0: sighted .*backlog in" "$IT_DIR/daemon.log")"
it_note "(b) sighted $(($(it_now_ms) - t0)) ms after the live reading was published: $(grep "shard 0: sighted" "$IT_DIR/daemon.log" | sed 's/.*info: //')"
it_daemon_stop

backlog 100
conf 3
: >"$IT_DIR/daemon.log"
it_daemon_start
it_wait_eq 30 1 sighted 0 >/dev/null
it_eq "(c) blind_s = 3: shard 0 sighted at the bound while lagging" 1 \
  "$(grep -c "shard 0: sighted .*(lagging" "$IT_DIR/daemon.log")"
it_eq "(c) the daemon still reports the lag" 1 "$(daemon_blind)"
