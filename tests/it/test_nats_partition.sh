#!/bin/bash
# test_nats_partition.sh - station-affine partitions at the broker, without
# the daemon: a 3-node nats-server cluster (MQTT + JetStream, the mapping of
# docs/SCALING.md, P = 64) and S = 8 "shards", each an MQTT persistent session
# (mosquitto_sub -c) on the 8 partitions it owns (p mod 8 = shard). Traffic is
# a bench/gen city of 200 stations x 10 sockets, per-socket and station-batched
# messages, published QoS 1 to different nodes. Checks:
#  (a) every message arrives exactly once, at the shard owning its partition
#  (b) all messages of a station (both shapes) land in one partition
#  (c) that partition is FNV-1a(station) mod P (cw_partition) and stays the
#      same across rounds published through other nodes
#  (d) a shard offline while messages are published gets its backlog, in
#      order, when it reconnects to another node
#  (e) the same with one node killed -9 while the shards are offline
# Requires nats-server, mosquitto-clients and build/bench/{gen,replay}.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh"

P=64
S=8
declare -a SHARD_PID

nats_it_init
t0=$(it_now_ms)
nats_start 3 "$P" || exit 1
it_note "cluster healthy in $(($(it_now_ms) - t0)) ms"
it_ok "3-node nats-server cluster healthy (MQTT, JetStream, P=$P mapping)"

# shard_filters SHARD: one filter per owned partition.
shard_filters() {
  local p
  for p in $(seq "$1" "$S" $((P - 1))); do printf -- '-t cwp/%s/cw/# ' "$p"; done
}
# shard_create SHARD NODE: the persistent session exists once this returns 0.
# A refused SUBSCRIBE (SUBACK 0x80 while raft settles) is retried.
shard_create() {
  for _ in 1 2 3 4 5 6; do
    # shellcheck disable=SC2046
    timeout 20 mosquitto_sub -h 127.0.0.1 -p "$(nats_mqtt_port "$2")" -q 1 -c -i "cw-shard-$1" \
      $(shard_filters "$1") -E >>"$IT_DIR/sub.err" 2>&1 && return 0
    sleep 1
  done
  return 1
}
# shard_run SHARD NODE FILE: the shard's session online, lines "TOPIC PAYLOAD".
shard_run() {
  # shellcheck disable=SC2046
  mosquitto_sub -h 127.0.0.1 -p "$(nats_mqtt_port "$2")" -q 1 -c -i "cw-shard-$1" \
    $(shard_filters "$1") -F '%t %p' >>"$3" 2>>"$IT_DIR/sub.err" &
  SHARD_PID[$1]=$!
  IT_BG_PIDS="$IT_BG_PIDS $!"
}
shard_stop() { # SHARD
  [ -n "${SHARD_PID[$1]:-}" ] || return 0
  kill -TERM "${SHARD_PID[$1]}" 2>/dev/null
  wait "${SHARD_PID[$1]}" 2>/dev/null
  SHARD_PID[$1]=""
}
all_stop() { local s; for s in $(seq 0 $((S - 1))); do shard_stop "$s"; done; }
lines() { cat "$IT_DIR"/r"$1"-shard*.out 2>/dev/null | wc -l; } # ROUND

# publish ROUND NODE_SOCKETS NODE_STATIONS: one gen round (each socket once,
# then each station once as a batched array), QoS 1 through the given nodes.
# Sets SENT (messages published).
publish() {
  local r=$1 start=$((1764374400000 + $1 * 3600000)) f out try n shape
  SENT=0
  for f in sockets stations; do
    shape=()
    [ $f = stations ] && shape=(--batched)
    "$GEN" -o "$IT_DIR/r$r-$f.cap" -s 200 -k 10 -i 30 -d 30 --seed 1 --anomaly-rate 0 \
      --start-ms "$start" "${shape[@]}" 2>>"$IT_DIR/gen.log"
    # Right after a node dies, a CONNECT can be closed while raft re-elects:
    # nothing was sent then, so trying again (bounded) duplicates nothing.
    for try in 1 2 3 4 5; do
      out=$(timeout 60 "$REPLAY" -f "$IT_DIR/r$r-$f.cap" -u "$(nats_mqtt_url "$([ $f = sockets ] && echo "$2" || echo "$3")")" \
        -q 1 -P 16 --client-prefix "cw-it-pub-$r" 2>&1 | tail -1)
      echo "$(date -u +%T) round $r $f try $try: $out" >>"$IT_DIR/replay.log"
      case $out in *"could not connect"*) sleep 2 ;; *) break ;; esac
    done
    n=$(echo "$out" | sed -n 's/.*msgs=\([0-9]*\).*/\1/p')
    SENT=$((SENT + ${n:-0}))
  done
}

# check_round ROUND: (a) and the ownership of each received message.
check_round() {
  local r=$1 files total uniq wrong s
  files=$(ls "$IT_DIR"/r"$r"-shard*.out)
  total=$(lines "$r")
  # shellcheck disable=SC2086
  uniq=$(cat $files | sort -u | wc -l)
  it_eq "round $r: every message received once ($SENT published)" "$SENT $SENT" "$total $uniq"
  wrong=0
  for s in $(seq 0 $((S - 1))); do
    wrong=$((wrong + $(awk -v s="$s" -v S="$S" '{ split($1, t, "/"); if (t[2] % S != s) n++ } END { print n + 0 }' \
      "$IT_DIR/r$r-shard$s.out")))
  done
  it_eq "round $r: each shard received only its own partitions" 0 "$wrong"
}
# station_map ROUND: "station partition" pairs seen in a round, one per line.
station_map() {
  cat "$IT_DIR"/r"$1"-shard*.out | awk '{ split($1, t, "/"); print t[4], t[2] }' | sort -u
}
# in_order ROUND: topics whose payload timestamps went backwards (0 = ordered).
in_order() {
  cat "$IT_DIR"/r"$1"-shard*.out | sed -E 's/^([^ ]*) .*"ts":([0-9]+).*/\1 \2/' |
    awk '{ if (($1 in last) && $2 < last[$1]) bad++; last[$1] = $2 } END { print bad + 0 }'
}
# collect ROUND TIMEOUT_S: wait until SENT lines arrived (then a moment more
# so a duplicate would show), stop the shards.
collect() {
  local t0
  t0=$(it_now_ms)
  it_wait_eq "$2" "$SENT" lines "$1" >/dev/null
  it_note "round $1: $(lines "$1") of $SENT received in $(($(it_now_ms) - t0)) ms"
  sleep 1
  all_stop
}

# ---- sessions are created while the cluster is whole
created=0
t0=$(it_now_ms)
# Each filter is a replicated JetStream consumer (about a second apiece on
# 2.9.10): the shards create theirs in parallel.
pids=""
for s in $(seq 0 $((S - 1))); do
  (shard_create "$s" $((s % 3 + 1)) && touch "$IT_DIR/created.$s") &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done
created=$(find "$IT_DIR" -maxdepth 1 -name 'created.*' | wc -l)
it_eq "persistent sessions of $S shards created" "$S" "$created"
it_note "sessions created in $(($(it_now_ms) - t0)) ms"

# ---- round 1: shards online, sockets through node 1, stations through node 2
for s in $(seq 0 $((S - 1))); do shard_run "$s" $((s % 3 + 1)) "$IT_DIR/r1-shard$s.out"; done
sleep 1
publish 1 1 2
collect 1 30
check_round 1
station_map 1 >"$IT_DIR/map1"
it_eq "(b) every station in exactly one partition" "200 200" \
  "$(awk '{print $1}' "$IT_DIR/map1" | sort -u | wc -l) $(wc -l <"$IT_DIR/map1")"
bad=0
while read -r st p; do
  [ "$(cw_partition "$st" "$P")" = "$p" ] || { bad=$((bad + 1)); it_note "station $st: broker $p, fnv1a $(cw_partition "$st" "$P")"; }
done <"$IT_DIR/map1"
it_eq "(c) broker partition = FNV-1a 32 of the station code mod $P for every station" 0 "$bad"
it_ge "stations spread over partitions (distinct partitions used)" 50 "$(awk '{print $2}' "$IT_DIR/map1" | sort -u | wc -l)"

# ---- round 2: shards offline; sockets through node 3, stations through node 1;
# each shard comes back on another node and gets its backlog in order
publish 2 3 1
for s in $(seq 0 $((S - 1))); do shard_run "$s" $(((s + 1) % 3 + 1)) "$IT_DIR/r2-shard$s.out"; done
collect 2 30
check_round 2
station_map 2 >"$IT_DIR/map2"
it_eq "(c) same station -> partition map for traffic through other nodes" "" \
  "$(diff "$IT_DIR/map1" "$IT_DIR/map2" | head -3)"
it_eq "(d) backlog delivered in order per topic after reconnecting elsewhere" 0 "$(in_order 2)"

# ---- round 3: shards offline, a round published, node 3 killed -9; the
# shards reconnect to nodes 1 and 2. A reconnect may be closed by the server while raft re-elects (its
# internal requests time out after 4 s): the subscriber is restarted, bounded.
publish 3 2 1
nats_kill 3
it_ok "node 3 killed -9 with the shards offline"
t0=$(it_now_ms)
end=$((t0 + 60000))
while [ "$(lines 3)" -lt "$SENT" ] && [ "$(it_now_ms)" -lt "$end" ]; do
  for s in $(seq 0 $((S - 1))); do
    if [ -z "${SHARD_PID[$s]:-}" ] || ! kill -0 "${SHARD_PID[$s]}" 2>/dev/null; then
      [ -n "${SHARD_PID[$s]:-}" ] && wait "${SHARD_PID[$s]}" 2>/dev/null
      shard_run "$s" $((s % 2 + 1)) "$IT_DIR/r3-shard$s.out"
    fi
  done
  sleep 0.5
done
sleep 1
all_stop
it_note "backlog after the node kill complete in $(($(it_now_ms) - t0)) ms"
check_round 3
it_eq "(e) backlog in order per topic after the node kill" 0 "$(in_order 3)"
station_map 3 >"$IT_DIR/map3"
it_eq "(c) same station -> partition map after the node kill" "" "$(diff "$IT_DIR/map1" "$IT_DIR/map3" | head -3)"

# ---- the killed node comes back (store wiped: the 2.9.10 repair)
if nats_restart 3 wipe; then it_ok "node 3 restarted (store wiped) and healthy"; else
  it_fail "node 3 restarted (store wiped) and healthy" "200" "${IT_HTTP_STATUS:-no answer}"
fi
