#!/bin/bash
# test_cluster_node.sh - [cluster] daemons survive a broker node's death
# (docs/SCALING.md): a 3-node nats-server cluster (P = 64), two chargewatchd
# with shards = 8 sharing one PostgreSQL, each given the list of the three
# nodes (its own first). A bench/gen city is published at 10x through node 3;
# node 1 is killed -9 under load. Daemon 1's shard clients lose their
# connection, reconnect (while their leases are held) to the next node in
# their list and get their sessions' backlog. Checks: every published reading
# stored once, labelled anomalies raised once, nothing raised twice, no
# offline alert.
# Requires nats-server, mosquitto-clients and build/bench/{gen,replay}.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

cl_init
u1=$(nats_mqtt_url 1)
u2=$(nats_mqtt_url 2)
u3=$(nats_mqtt_url 3)
cl_conf 1 "$u1,$u2,$u3"
cl_conf 2 "$u2,$u3,$u1"
cl_start 1 # together: the schema migrations take a lock, the shards are shared out
cl_start 2
cl_wait_shards
it_note "daemon 1 owns shards $(cl_owned 1); daemon 2 owns shards $(cl_owned 2)"
cl_city 600
cl_publish 3
sleep 20
t0=$(it_now_ms)
nats_kill 1
it_ok "node 1 (daemon 1's broker) killed -9 under load"
back() { grep -c "connected to .* as cw-shard-" "$IT_DIR/d1/daemon.log"; }
n0=$(back)
reconnected() { [ "$(back)" -gt "$n0" ]; }
it_wait 60 reconnected
it_note "daemon 1's shard clients connected again after $(($(it_now_ms) - t0)) ms"
cl_check_stored
cl_check_alerts
cl_stop_all
