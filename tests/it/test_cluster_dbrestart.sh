#!/bin/bash
# test_cluster_dbrestart.sh - PostgreSQL restarts under load in [cluster]
# mode (docs/SCALING.md "Restore per shard", docs/RELIABILITY.md): one
# nats-server (MQTT + JetStream, the partition mapping, P = 64), one daemon
# with shards = 8, a paced publisher of a bench/gen city (200 stations x 10
# sockets, labelled anomalies). The database stops a third of the way in
# and starts again 8 s later. The daemon loses every lease with it (its
# shard clients dropped, the broker queues for their sessions), takes them
# back once the database returns (its writers first store what it raised
# and spooled), and the backlog comes in while each shard is blind.
#   - every published reading stored, none twice
#   - each labelled thermal runaway and overload raised exactly once, no
#     (station, socket, kind) raised twice, no offline alert while the
#     publisher ran
# The daemon's own ingest alerts are counted, not checked: the capture's
# readings are minutes old when published at 10x, which is lag by the
# daemon's rules (test_cluster_blind.sh checks those).
# Requires nats-server and build/bench/{gen,replay}.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

cl_init 1
cl_conf 1 "$(nats_mqtt_url 1)"
cl_start 1
cl_wait_shards

cl_city 600
cl_publish 1
sleep 20
cw_pg_stop "$IT_PG_DIR"
t_down=$(it_now_ms)
lost() { grep -c "lease lost at" "$IT_DIR/d1/daemon.log"; }
it_eq "the daemon loses its $S leases with the database" "$S" "$(it_wait_eq 20 "$S" lost)"
left=$((t_down + 8000 - $(it_now_ms)))
[ "$left" -gt 0 ] && sleep "$((left / 1000)).$(printf %03d $((left % 1000)))"
cw_pg_start "$IT_PG_DIR" "$CW_PG_PORT" >/dev/null || it_fail "postgres restarted" running failed
t_up=$(it_now_ms)
it_eq "and takes them back once it returns" $((2 * S)) "$(it_wait_eq 60 $((2 * S)) cl_acquired)"
it_eq "and subscribes its shards again" $((2 * S)) "$(it_wait_eq 60 $((2 * S)) cl_subscribed)"
it_note "leases back and shards subscribed $(($(it_now_ms) - t_up)) ms after the database"

cl_check_stored
cl_check_alerts
it_note "the daemon's ingest alerts raised: $(cl_ingest_raised 0 "$t_down") before the outage, $(cl_ingest_raised "$t_down") from it on"
cl_stop_all
