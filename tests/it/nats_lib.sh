# shellcheck shell=bash
# nats_lib.sh - an N-node nats-server cluster (MQTT listener + JetStream) on
# loopback for the integration tests, with the station partition mapping of
# docs/SCALING.md. Source it after tests/it/lib.sh (it uses cw_free_port and
# it_http). Every node runs under $IT_DIR/nats/nK and is stopped by its PID.
#   nats_start [N] [P]      start N nodes (default 3), P partitions (default
#                           64); waits until every node is healthy. Sets
#                           NATS_N, NATS_P; returns 1 on failure
#   nats_mqtt_port K        MQTT port of node K (1..N)
#   nats_mqtt_url K         tcp://127.0.0.1:PORT of node K
#   nats_pid K              PID of node K (empty when it is down)
#   nats_kill K             kill -9 node K by PID
#   nats_restart K [wipe]   start node K again on its ports; "wipe" first
#                           removes its JetStream store (the repair for the
#                           2.9.10 replica defect, docs/SCALING.md)
#   nats_wait_healthy K [S] wait up to S seconds (default 30) for node K
#   nats_stop_all           stop every node (SIGTERM, then SIGKILL) by PID
#   nats_teardown           EXIT trap: nats_stop_all, then it_teardown
#   nats_it_init            for a test without the daemon: fresh $IT_DIR, the
#                           EXIT trap, build/bench/gen and replay (GEN, REPLAY)
# Health is /healthz?js-server-only=true: the full /healthz of 2.9.10 can stay
# 503 after a restart on an idle consumer the node used to lead.

NATS_N=0
NATS_P=64
NATS_DIR=""

nats_bin() { command -v nats-server || echo /usr/sbin/nats-server; }

# The subject mapping: both telemetry shapes of a station get the partition
# of token 1 (the station code). MQTT "/" is NATS ".".
nats_mapping() { # P
  cat <<MAP
mappings = {
  "cw.*.*.telemetry": "cwp.{{partition($1,1)}}.cw.{{wildcard(1)}}.{{wildcard(2)}}.telemetry"
  "cw.*.telemetry": "cwp.{{partition($1,1)}}.cw.{{wildcard(1)}}.telemetry"
}
MAP
}

nats_write_conf() { # K
  local k=$1 d=$NATS_DIR/n$1 j routes=""
  for j in $(seq 1 "$NATS_N"); do
    [ "$j" = "$k" ] && continue
    routes="$routes    nats-route://127.0.0.1:$(cat "$NATS_DIR/n$j/cluster.port")
"
  done
  # one node (NATS_N = 1): no cluster, the MQTT streams unreplicated
  local cluster="cluster {
  name: cw-it
  listen: 127.0.0.1:$(cat "$d/cluster.port")
  routes: [
$routes  ]
}" replicas=3
  [ "$NATS_N" = 1 ] && cluster="" replicas=1
  cat >"$d/nats.conf" <<CONF
# written by tests/it/nats_lib.sh
server_name: cw-n$k
listen: 127.0.0.1:$(cat "$d/client.port")
http: 127.0.0.1:$(cat "$d/http.port")
jetstream {
  store_dir: "$d/js"
}
$cluster
mqtt {
  listen: 127.0.0.1:$(cat "$d/mqtt.port")
  stream_replicas: $replicas
}
$(nats_mapping "$NATS_P")
CONF
}

# Four ports per node, from distinct random bases; a port another node has
# already been given is skipped (nothing listens on it yet).
nats_pick_port() { # BASE
  local p
  p=$(cw_free_port "$1")
  while grep -qsx "$p" "$NATS_DIR"/n*/*.port; do p=$(cw_free_port $((p + 1))); done
  echo "$p"
}

nats_start_node() { # K
  local d=$NATS_DIR/n$1
  "$(nats_bin)" -c "$d/nats.conf" -l "$d/nats.log" >/dev/null 2>&1 &
  echo $! >"$d/pid"
}

nats_start() { # [N] [P]
  local k kind base
  NATS_N=${1:-3}
  NATS_P=${2:-64}
  NATS_DIR=$IT_DIR/nats
  rm -rf "$NATS_DIR"
  for k in $(seq 1 "$NATS_N"); do
    mkdir -p "$NATS_DIR/n$k/js"
    for kind in client cluster mqtt http; do
      case $kind in
      client) base=14222 ;; cluster) base=16222 ;; mqtt) base=11883 ;; http) base=18222 ;;
      esac
      nats_pick_port $((base + RANDOM % 2000)) >"$NATS_DIR/n$k/$kind.port"
    done
  done
  for k in $(seq 1 "$NATS_N"); do nats_write_conf "$k"; done
  for k in $(seq 1 "$NATS_N"); do nats_start_node "$k"; done
  for k in $(seq 1 "$NATS_N"); do
    nats_wait_healthy "$k" 60 || {
      it_fail "nats node $k healthy within 60 s" "200" "${IT_HTTP_STATUS:-no answer}"
      tail -20 "$NATS_DIR/n$k/nats.log" | sed 's/^/#   /'
      return 1
    }
  done
}

nats_pid() {
  local f=$NATS_DIR/n$1/pid
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}
nats_mqtt_port() { cat "$NATS_DIR/n$1/mqtt.port"; }
nats_mqtt_url() { echo "tcp://127.0.0.1:$(nats_mqtt_port "$1")"; }

nats_healthy() { # K
  local port
  port=$(cat "$NATS_DIR/n$1/http.port")
  IT_HTTP_PORT=$port it_http '/healthz?js-server-only=true' >/dev/null || return 1
  [ "$IT_HTTP_STATUS" = 200 ]
}
nats_wait_healthy() { # K [TIMEOUT_S]
  [ -n "$(nats_pid "$1")" ] || return 1
  it_wait "${2:-30}" nats_healthy "$1"
}

nats_kill() { # K
  local pid
  pid=$(nats_pid "$1") || return 0
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -f "$NATS_DIR/n$1/pid"
}

nats_restart() { # K [wipe]
  [ -n "$(nats_pid "$1")" ] && return 0
  [ "${2:-}" = wipe ] && rm -rf "$NATS_DIR/n$1/js" && mkdir -p "$NATS_DIR/n$1/js"
  echo "=== restart $(date -u +%T.%N)" >>"$NATS_DIR/n$1/nats.log"
  nats_start_node "$1"
  nats_wait_healthy "$1" 60
}

nats_stop_all() {
  local k pid
  [ -n "$NATS_DIR" ] || return 0
  for k in $(seq 1 "$NATS_N"); do
    pid=$(nats_pid "$k") && kill -TERM "$pid" 2>/dev/null
  done
  for k in $(seq 1 "$NATS_N"); do
    pid=$(nats_pid "$k") || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -f "$NATS_DIR/n$k/pid"
  done
}

nats_it_init() {
  local b
  GEN=$IT_ROOT/build/bench/gen
  REPLAY=$IT_ROOT/build/bench/replay
  rm -rf "$IT_DIR"
  mkdir -p "$IT_DIR"
  trap nats_teardown EXIT
  trap 'exit 130' INT TERM
  for b in "$GEN" "$REPLAY"; do
    [ -x "$b" ] || make -s -C "$IT_ROOT" "${b#"$IT_ROOT"/}" >>"$IT_DIR/make.log" 2>&1 ||
      { it_fail "bench tool built" "$b" "make failed"; exit 1; }
  done
}

nats_teardown() {
  local rc=$?
  nats_stop_all
  (exit "$rc")
  it_teardown
}

# The partition of a station, as the broker's partition(P,1) computes it:
# FNV-1a 32-bit over the bytes of the station code, modulo P.
cw_partition() { # STATION P
  local h=2166136261 b
  for b in $(printf '%s' "$1" | od -An -v -tu1); do
    h=$(((h ^ b) * 16777619 & 0xffffffff))
  done
  echo $((h % $2))
}
