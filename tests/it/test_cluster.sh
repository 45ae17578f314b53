#!/bin/bash
# test_cluster.sh - several daemons on the same stations ([cluster],
# docs/SCALING.md): a 3-node nats-server cluster (MQTT + JetStream, the
# partition mapping, P = 64), three chargewatchd with shards = 8, own = auto
# and one PostgreSQL; a paced publisher of a bench/gen city (200 stations x
# 10 sockets, labelled anomalies in its truth file). Checks:
#  (a) each shard held by exactly one daemon at every sample of pg_locks, and
#      the daemons' own lease records (acquired/lost lines with their
#      wall-clock time; the SIGKILL time for the killed one) never overlap
#  (b) SIGKILL of the daemon owning the most shards under load: its shards
#      are leased and connected again by the others (the time is printed;
#      on loopback the bound is lease_check_ms + connect, see SCALING.md)
#  (c) no duplicated row; every published reading stored, none lost to the
#      SIGKILL: what the killed daemon had acknowledged to the broker and not
#      yet committed is in its shards' journals (one journal_dir for the
#      daemons of this machine), which the daemons taking the shards over
#      replay first (docs/RELIABILITY.md); the replayed count is printed
#  (d) each labelled thermal runaway and overload raised exactly once; no
#      (station, socket, kind) raised twice; no offline alert (nothing was
#      silent long enough at this replay speed)
# Requires nats-server, mosquitto-clients and build/bench/{gen,replay}.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

D=3
cl_init
for k in $(seq 1 $D); do cl_conf "$k" "$(nats_mqtt_url "$k")"; done
# all together: the schema migrations take a lock, the shards are shared out
for k in $(seq 1 $D); do cl_start "$k"; done
cl_wait_shards
for k in $(seq 1 $D); do it_note "daemon $k owns shards: $(cl_owned "$k")"; done

# held: shards whose lock is held now, one line "shard pid" each
held() {
  it_sql "SELECT objid, pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
          AND classid = (hashtext('chargewatch.shard')::bigint & 4294967295)::oid ORDER BY 1" |
    tr '|' ' '
}
(while :; do held | sed "s/^/$(it_now_ms) /"; sleep 0.2; done) >"$IT_DIR/locks.log" 2>/dev/null &
SAMPLER=$!
IT_BG_PIDS="$IT_BG_PIDS $SAMPLER"

cl_city 900
cl_publish 3

# ---- kill the daemon holding the most shards (by its own records), a third
# of the way in
sleep 30
vk=""
for k in $(seq 1 $D); do
  n=$(grep -c "lease acquired" "$IT_DIR/d$k/daemon.log")
  [ -z "$vk" ] || [ "$n" -gt "$(grep -c "lease acquired" "$IT_DIR/d$vk/daemon.log")" ] && vk=$k
done
vshards=$(cl_owned "$vk")
nv=$(echo "$vshards" | wc -w)
tk=$(it_now_ms)
kill -KILL "${DPID[$vk]}"
wait "${DPID[$vk]}" 2>/dev/null
unset "DPID[$vk]"
it_ok "daemon $vk (shards $vshards) killed -9 under load"
# taken over = each of its shards connected by another daemon after the kill
retaken() {
  local k n=0 s
  for s in $vshards; do
    for k in "${!DPID[@]}"; do
      awk -v s="$s" -v t="$tk" '$0 ~ "shard " s ": connected at" {
          for (i = 1; i < NF; i++) if ($i == "at" && $(i + 1) + 0 >= t) f = 1 } END { exit !f }' \
        "$IT_DIR/d$k/daemon.log" && { n=$((n + 1)); break; }
    done
  done
  echo "$n"
}
it_wait_eq 60 "$nv" retaken >/dev/null
tt=$(($(it_now_ms) - tk))
it_eq "(b) the killed daemon's shards leased and connected by the others" "$nv" "$(retaken)"
it_note "(b) takeover of $nv shards complete $tt ms after the SIGKILL"

cl_check_stored
it_note "(c) messages replayed from the killed daemon's shard journals by the others: $(
  cat "$IT_DIR"/d*/daemon.log | grep -o 'replayed [0-9]* messages' | awk '{ n += $2 } END { print n + 0 }')"
kill "$SAMPLER" 2>/dev/null

# ---- (a) exclusivity: pg_locks samples and the daemons' own records
it_eq "(a) no pg_locks sample with a shard held twice" 0 \
  "$(awk '{ k = $1 " " $2; if (k in seen) bad++; seen[k] = 1 } END { print bad + 0 }' "$IT_DIR/locks.log")"
end=$(it_now_ms)
for k in $(seq 1 $D); do
  stop=$end
  [ "$k" = "$vk" ] && stop=$tk
  grep -E "shard [0-9]+: lease (acquired|lost) at" "$IT_DIR/d$k/daemon.log" |
    sed -E 's/.*shard ([0-9]+): lease (acquired|lost) at ([0-9]+).*/\1 \2 \3/' |
    awk -v d="$k" -v stop="$stop" '{ if ($2 == "acquired") a[$1] = $3; else if ($1 in a) { print $1, a[$1], $3, d; delete a[$1] } }
      END { for (s in a) print s, a[s], stop, d }'
done | sort -n -k1,1 -k2,2 >"$IT_DIR/intervals"
it_eq "(a) each shard owned by one daemon at a time (daemons' lease records)" 0 \
  "$(awk '{ if ($1 == s && $2 < e) bad++; s = $1; e = $3 } END { print bad + 0 }' "$IT_DIR/intervals")"
it_eq "(a) every shard has an owner in the records" "$S" "$(awk '{print $1}' "$IT_DIR/intervals" | sort -u | wc -l)"

cl_check_alerts
cl_stop_all
