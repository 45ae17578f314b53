#!/bin/bash
# test_cluster_dbrestart.sh - PostgreSQL restarts under load in [cluster]
# mode (docs/SCALING.md "Restore per shard", docs/RELIABILITY.md): one
# nats-server (MQTT + JetStream, the partition mapping, P = 64), three
# daemons sharing shards = 8, a paced publisher of a bench/gen city (200
# stations x 10 sockets, labelled anomalies). The database stops 20 s in
# and starts again 8 s later. Every daemon loses every lease with it (its
# shard clients dropped, the broker queues for their sessions) and, once
# the database returns, takes back the shards it held (its own first: the
# engine state and any alert it could not store yet stay with them; its
# writers store what it raised before the restore), and the backlog comes
# in while each shard is blind.
#   - each daemon takes back exactly the shards it held
#   - every published reading stored, none twice
#   - each labelled thermal runaway and overload raised exactly once, no
#     (station, socket, kind) raised twice, no offline alert while the
#     publisher ran
# The daemons' own ingest alerts are counted, not checked: the capture's
# readings are minutes old when published at 10x, which is lag by the
# daemon's rules (test_cluster_blind.sh checks those).
# Requires nats-server and build/bench/{gen,replay}.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

D=3
cl_init 1
for k in $(seq 1 $D); do cl_conf "$k" "$(nats_mqtt_url 1)"; done
# daemon 1 first, alone with all 8 shards; daemons 2 and 3 join and get
# theirs by rebalancing (the last taken first), so that who holds what is
# not what the members' slot order would give after a restart
cl_start 1
cl_wait_shards
owned_now() { # K: the shards daemon K holds by its own log (acquired, not since released or lost)
  awk '/lease (acquired|released|lost) at/ { k = $5; sub(":", "", k); own[k] = ($7 == "acquired") }
       END { for (k in own) if (own[k]) print k }' "$IT_DIR/d$1/daemon.log" | sort -n | tr '\n' ' '
}
for k in 2 3; do cl_start "$k"; done
balanced() { # each daemon holds 2 or 3 shards
  local k n ok=1
  for k in $(seq 1 $D); do n=$(owned_now "$k" | wc -w); [ "$n" -ge 2 ] && [ "$n" -le 3 ] || ok=0; done
  echo "$ok"
}
it_eq "shards shared out by rebalancing" 1 "$(it_wait_eq 90 1 balanced)"
held_n() { cl_held | grep -c .; }
it_eq "all $S held" "$S" "$(it_wait_eq 30 "$S" held_n)"
declare -A before
for k in $(seq 1 $D); do before[$k]=$(owned_now "$k"); it_note "daemon $k holds shards: ${before[$k]}"; done

since_down() { # WHAT: log lines "shard k: WHAT at T" with T after the outage began, all daemons
  cat "$IT_DIR"/d*/daemon.log | awk -v t="$t_down" -v w="$1 at" 'index($0, w) {
    for (i = 1; i < NF; i++) if ($i == "at" && $(i + 1) + 0 >= t) { n++; break } } END { print n + 0 }'
}
cl_city 600
cl_publish 1
sleep 20
t_down=$(it_now_ms)
cw_pg_stop "$IT_PG_DIR"
it_eq "the daemons lose their $S leases with the database" "$S" "$(it_wait_eq 20 "$S" since_down "lease lost")"
left=$((t_down + 8000 - $(it_now_ms)))
[ "$left" -gt 0 ] && sleep "$((left / 1000)).$(printf %03d $((left % 1000)))"
cw_pg_start "$IT_PG_DIR" "$CW_PG_PORT" >/dev/null || it_fail "postgres restarted" running failed
t_up=$(it_now_ms)
it_eq "and take them back once it returns" "$S" "$(it_wait_eq 60 "$S" since_down "lease acquired")"
it_eq "and connect the shards again" "$S" "$(it_wait_eq 60 "$S" since_down ": connected")"
it_note "leases back and shards subscribed $(($(it_now_ms) - t_up)) ms after the database"
for k in $(seq 1 $D); do
  it_eq "daemon $k takes back the shards it held" "${before[$k]}" "$(owned_now "$k")"
done

cl_check_stored
cl_check_alerts
it_note "the daemons' ingest alerts raised: $(cl_ingest_raised 0 "$t_down") before the outage, $(cl_ingest_raised "$t_down") from it on"
cl_stop_all
