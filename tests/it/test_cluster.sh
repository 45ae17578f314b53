#!/bin/bash
# test_cluster.sh - several daemons on the same stations ([cluster],
# docs/SCALING.md): a 3-node nats-server cluster (MQTT + JetStream, the
# partition mapping, P = 64), three chargewatchd with shards = 8, own = auto
# and one PostgreSQL; a paced publisher of a bench/gen city (200 stations x
# 10 sockets, labelled anomalies in its truth file). Checks:
#  (a) the 8 shards are shared out, each held by exactly one daemon at every
#      sample of pg_locks, and the daemons' own lease records (acquired/lost
#      lines with their wall-clock time) never overlap for a shard
#  (b) SIGKILL of the daemon owning the most shards under load: its shards
#      are leased and connected again by the others (the time is printed;
#      the bound is TCP close + lease_check_ms + session takeover)
#  (c) every published reading stored once (count = sent = distinct)
#  (d) each labelled thermal runaway and overload raised exactly once; no
#      (station, socket, kind) raised twice; no offline alert (nothing was
#      silent long enough at this replay speed)
# Requires nats-server, mosquitto-clients and build/bench/{gen,replay}.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_lib.sh"

P=64
S=8
D=3
declare -a DPID

it_start_services
trap nats_teardown EXIT
trap 'exit 130' INT TERM
GEN=$IT_ROOT/build/bench/gen
REPLAY=$IT_ROOT/build/bench/replay
for b in "$GEN" "$REPLAY"; do
  [ -x "$b" ] || make -s -C "$IT_ROOT" "${b#"$IT_ROOT"/}" >>"$IT_DIR/make.log" 2>&1 ||
    { it_fail "bench tool built" "$b" "make failed"; exit 1; }
done
nats_start 3 "$P" || exit 1
it_ok "3-node nats-server cluster healthy (P=$P mapping)"

# d_conf K: daemon K's configuration (its own node, paths and HTTP port).
d_conf() {
  local k=$1 d=$IT_DIR/d$1
  mkdir -p "$d"
  cat >"$d/chargewatch.conf" <<CONF
[mqtt]
uri = $(nats_mqtt_url "$k")
client_id = cw-it-d$k
topic = cwp/{partition}/cw/{station}/{socket}/telemetry
station_topic = cwp/{partition}/cw/{station}/telemetry
[postgres]
conninfo = host=127.0.0.1 port=$CW_PG_PORT user=postgres dbname=chargewatch
batch_ms = 100
[pipeline]
deadletter = $d/deadletter.log
shutdown_timeout_s = 20
[spool]
dir = $d/spool
[alerts]
log = $d/alerts.log
[http]
listen = 127.0.0.1:$(cw_free_port $((29187 + RANDOM % 2000)))
[cluster]
shards = $S
partitions = $P
lease_check_ms = 500
blind_s = 60
CONF
}
d_start() { # K
  "$CW_DAEMON" -f -c "$IT_DIR/d$1/chargewatch.conf" >>"$IT_DIR/d$1/daemon.log" 2>&1 &
  DPID[$1]=$!
  IT_BG_PIDS="$IT_BG_PIDS $!"
}
acquired() { cat "$IT_DIR"/d*/daemon.log | grep -c "lease acquired"; }
subscribed() { cat "$IT_DIR"/d*/daemon.log | grep -c "cw-shard-[0-9]* subscribed"; }
# held: shards whose lock is held now, one line "shard pid" each
held() {
  it_sql "SELECT objid, pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
          AND classid = (hashtext('chargewatch.shard')::bigint & 4294967295)::oid ORDER BY 1" |
    tr '|' ' '
}

for k in $(seq 1 $D); do d_conf "$k"; done
d_start 1
it_wait 30 it_sql "SELECT 1 FROM schema_migrations LIMIT 1" >/dev/null
for k in $(seq 2 $D); do d_start "$k"; done
t0=$(it_now_ms)
it_wait_eq 60 "$S" acquired >/dev/null
it_eq "all $S shards leased" "$S" "$(acquired)"
# QoS 1 sessions: each filter is a replicated consumer (about 1 s apiece on
# 2.9.10, docs/SCALING.md): first start takes a while
it_wait_eq 120 "$S" subscribed >/dev/null
it_eq "all $S shard sessions subscribed" "$S" "$(subscribed)"
it_note "shards leased and subscribed in $(($(it_now_ms) - t0)) ms"
for k in $(seq 1 $D); do
  it_note "daemon $k owns shards: $(grep -o 'shard [0-9]*: lease acquired' "$IT_DIR/d$k/daemon.log" | awk '{print $2}' | tr -d : | tr '\n' ' ')"
done

# ---- policies of the capture, then the paced load
# timestamps as recorded (--no-shift), ending about now: at 10x they all stay
# in the past while they are published
"$GEN" -o "$IT_DIR/city.cap" -s 200 -k 10 -i 30 -d 900 --seed 7 --anomaly-rate 0.01 \
  --start-ms $(($(it_now_ms) - 900000)) --batched \
  --truth "$IT_DIR/truth.csv" --sql "$IT_DIR/policies.sql" 2>>"$IT_DIR/gen.log"
"$IT_PSQL" -q -h 127.0.0.1 -p "$CW_PG_PORT" -U postgres -d chargewatch -f "$IT_DIR/policies.sql" \
  >>"$IT_DIR/psql.log" 2>&1
for k in $(seq 1 $D); do kill -HUP "${DPID[$k]}"; done
sleep 1

# sample the lease table while the load runs
(while :; do held | sed "s/^/$(it_now_ms) /"; sleep 0.2; done) >"$IT_DIR/locks.log" 2>/dev/null &
SAMPLER=$!
IT_BG_PIDS="$IT_BG_PIDS $SAMPLER"

# 900 s of city at 10x: ~90 s; station-batched (one message per station and
# tick, 10 readings): ~70 msgs/s, within what QoS 1 publishing into a
# replicated JetStream stream sustains on a loaded 2-core machine
(timeout 170 "$REPLAY" -f "$IT_DIR/city.cap" -u "$(nats_mqtt_url 3)" -q 1 -P 16 -x 10 --no-shift \
  --client-prefix cw-it-pub >"$IT_DIR/replay.log" 2>&1) &
PUB=$!

# ---- kill the daemon holding the most shards, a third of the way in
sleep 30
# the victim is chosen by the daemons' own records (most shards acquired)
vk=""
for k in $(seq 1 $D); do
  n=$(grep -c "lease acquired" "$IT_DIR/d$k/daemon.log")
  [ -z "$vk" ] || [ "$n" -gt "$(grep -c "lease acquired" "$IT_DIR/d$vk/daemon.log")" ] && vk=$k
done
vshards=$(grep -o 'shard [0-9]*: lease acquired' "$IT_DIR/d$vk/daemon.log" | awk '{print $2}' | tr -d : | sort -n | tr '\n' ' ')
tk=$(it_now_ms)
kill -KILL "${DPID[$vk]}"
wait "${DPID[$vk]}" 2>/dev/null
it_ok "daemon $vk (shards $vshards) killed -9 under load"
# taken over = every shard leased again by a live daemon and its client connected
retaken() {
  local k n=0 s
  for s in $vshards; do
    for k in $(seq 1 $D); do
      [ "$k" = "$vk" ] && continue
      awk -v s="$s" -v t="$tk" '$0 ~ "shard " s ": connected at" { for (i = 1; i <= NF; i++) if ($i == "at") if ($(i + 1) + 0 >= t) f = 1 } END { exit !f }' \
        "$IT_DIR/d$k/daemon.log" && { n=$((n + 1)); break; }
    done
  done
  echo "$n"
}
it_wait_eq 60 "$(echo "$vshards" | wc -w)" retaken >/dev/null
tt=$(($(it_now_ms) - tk))
it_eq "(b) the killed daemon's shards leased and connected by the others" "$(echo "$vshards" | wc -w)" "$(retaken)"
it_note "(b) takeover of $(echo "$vshards" | wc -w) shards complete ${tt} ms after the SIGKILL"

wait "$PUB"
sent=$(sed -n 's/.*readings=\([0-9]*\).*/\1/p' "$IT_DIR/replay.log" | tail -1)
[ -n "$sent" ] || sent=$(sed -n 's/.*msgs=\([0-9]*\).*/\1/p' "$IT_DIR/replay.log" | tail -1)
it_note "publisher: $(grep -a 'msgs=' "$IT_DIR/replay.log" | tail -1)"
it_ge "publisher finished (readings published)" 1 "${sent:-0}"
count() { it_sql "SELECT count(*) FROM readings WHERE station LIKE 'CX-%'"; }
for _ in $(seq 1 120); do
  n=$(count)
  [ "$n" = "$sent" ] && break
  sleep 1
done
kill "$SAMPLER" 2>/dev/null
it_eq "(c) every published reading stored" "$sent" "$(count)"
it_eq "(c) no duplicated rows" "$(count)" \
  "$(it_sql "SELECT count(DISTINCT (station, socket, ts)) FROM readings WHERE station LIKE 'CX-%'")"

# ---- (a) exclusivity: pg_locks samples and the daemons' own records
it_eq "(a) no pg_locks sample with a shard held twice" 0 \
  "$(awk '{ k = $1 " " $2; if (k in seen) bad++; seen[k] = 1 } END { print bad + 0 }' "$IT_DIR/locks.log")"
# intervals from the logs: acquired at T .. lost at T / the kill / the end
end=$(it_now_ms)
for k in $(seq 1 $D); do
  stop=$end
  [ "$k" = "$vk" ] && stop=$tk
  grep -E "shard [0-9]+: lease (acquired|lost) at" "$IT_DIR/d$k/daemon.log" |
    sed -E 's/.*shard ([0-9]+): lease (acquired|lost) at ([0-9]+).*/\1 \2 \3/' |
    awk -v d="$k" -v stop="$stop" '{ if ($2 == "acquired") a[$1] = $3; else if ($1 in a) { print $1, a[$1], $3, d; delete a[$1] } }
      END { for (s in a) print s, a[s], stop, d }'
done | sort -n -k1,1 -k2,2 >"$IT_DIR/intervals"
overlap=$(awk '{ if ($1 == s && $2 < e) bad++; s = $1; e = $3 } END { print bad + 0 }' "$IT_DIR/intervals")
it_eq "(a) each shard owned by one daemon at a time (daemons' lease records)" 0 "$overlap"
it_eq "(a) every shard has an owner in the records" "$S" "$(awk '{print $1}' "$IT_DIR/intervals" | sort -u | wc -l)"

# ---- (d) alerts
raised() { # STATION SOCKET KIND
  it_sql "SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id
          WHERE a.station = '$1' AND a.socket = $2 AND a.kind = '$3' AND e.event = 'raised'"
}
bad=0
n=0
while IFS=, read -r kind _ st so _; do
  case $kind in thermal_runaway | overload) ;; *) continue ;; esac
  n=$((n + 1))
  r=$(raised "$st" "$so" "$kind")
  [ "$r" = 1 ] || { bad=$((bad + 1)); it_note "$kind $st/$so raised $r times"; }
done < <(tail -n +2 "$IT_DIR/truth.csv")
it_eq "(d) each of $n labelled thermal/overload anomalies raised exactly once" 0 "$bad"
it_eq "(d) no (station, socket, kind) raised twice" 0 \
  "$(it_sql "SELECT count(*) FROM (SELECT a.station, a.socket, a.kind FROM alert_events e JOIN alerts a
             ON a.id = e.alert_id WHERE e.event = 'raised' GROUP BY 1, 2, 3 HAVING count(*) > 1) x")"
it_eq "(d) no offline alert (every station kept publishing)" 0 \
  "$(it_sql "SELECT count(*) FROM alerts WHERE kind = 'offline'")"

# ---- the survivors stop cleanly (their leases go with their connections)
for k in $(seq 1 $D); do
  [ "$k" = "$vk" ] && continue
  kill -TERM "${DPID[$k]}"
  wait "${DPID[$k]}"
  it_eq "daemon $k exits 0 on SIGTERM" 0 "$?"
done
