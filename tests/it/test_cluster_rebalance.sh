#!/bin/bash
# test_cluster_rebalance.sh - shards move to a daemon that joins
# ([cluster], docs/SCALING.md "Rebalancing"): a 3-node nats-server cluster
# (P = 64), S = 8 shards, one PostgreSQL. Daemons 1 and 2 start together
# and share the shards 4/4; a bench/gen city is published at 10x; daemon 3
# starts under load. Checks:
#  (a) within 60 s every daemon owns 2 or 3 of the 8 shards (their own
#      acquired/released lines; the time is printed), and the moved shards'
#      clients are connected by daemon 3
#  (b) the daemons' lease records never overlap for a shard, and no
#      pg_locks sample shows a shard held twice
#  (c) every published reading stored, none twice, and the daemons' own
#      counts (accepted, committed, at their stop) add up to the published
#      (a handover drains the giver's rings and flushes its writer before
#      the lock goes)
#  (d) each labelled thermal runaway and overload raised exactly once; no
#      (station, socket, kind) raised twice; no offline alert while the
#      stations published
# Requires nats-server, mosquitto-clients and build/bench/{gen,replay}.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

cl_init
for k in 1 2 3; do cl_conf "$k" "$(nats_mqtt_url "$k")"; done
cl_start 1
cl_start 2
cl_wait_shards
for k in 1 2; do it_note "daemon $k owns shards: $(cl_owned "$k")"; done

cl_locks_start

cl_city 600
cl_publish 3
sleep 15

# owned now by daemon K, from its own records
owns() { # K
  local f=$IT_DIR/d$1/daemon.log
  echo $(($(grep -c "lease acquired at" "$f") - $(grep -c "lease \(released\|lost\) at" "$f")))
}
balanced() {
  local k n
  for k in 1 2 3; do
    n=$(owns "$k")
    [ "$n" -ge 2 ] && [ "$n" -le 3 ] || { echo 0; return; }
  done
  # and every shard daemon 3 took is connected
  [ "$(grep -c 'shard [0-9]*: connected at' "$IT_DIR/d3/daemon.log")" -ge "$(owns 3)" ] && echo 1 || echo 0
}
t3=$(it_now_ms)
cl_start 3
it_wait_eq 60 1 balanced >/dev/null
tb=$(($(it_now_ms) - t3))
it_eq "(a) every daemon owns 2-3 of $S shards after daemon 3 joined" 1 "$(balanced)"
it_note "(a) shards per daemon: $(owns 1) $(owns 2) $(owns 3), balanced and connected $tb ms after daemon 3 started"
it_note "(a) handovers: $(grep -h 'lease released at' "$IT_DIR"/d*/daemon.log | sed -E 's/.*(shard [0-9]+).*drained in ([0-9]+ ms).*/\1 drained in \2/' | tr '\n' ';')"
moved=$(grep -c 'lease released at' "$IT_DIR/d1/daemon.log" "$IT_DIR/d2/daemon.log" | awk -F: '{s += $2} END {print s + 0}')
it_ge "(a) shards handed over by daemons 1 and 2" 2 "$moved"

cl_check_stored

cl_check_exclusive
# handover gap: from the giver's release to the taker's acquire
it_note "(b) handover gaps (ms): $(awk 'NR > 1 && $1 == s { printf "%d:%d ", $1, $2 - e } { s = $1; e = $3 }' "$IT_DIR/intervals")"
cl_check_alerts
cl_stop_all
# each daemon's own account at its stop: readings it accepted from the
# broker and rows it committed; a message redelivered to the new owner of a
# moved shard after the old one had taken it would be accepted twice
acc=$(sed -n 's/.*stopped in [0-9]* ms: \([0-9]*\) readings accepted.*/\1/p' "$IT_DIR"/d*/daemon.log | awk '{s += $1} END {print s + 0}')
com=$(sed -n 's/.*readings accepted, \([0-9]*\) rows committed.*/\1/p' "$IT_DIR"/d*/daemon.log | awk '{s += $1} END {print s + 0}')
it_eq "(c) readings accepted by the three daemons = published (no redelivery across a handover)" "$(cl_sent)" "$acc"
it_eq "(c) rows committed by the three daemons = published" "$(cl_sent)" "$com"
