# shellcheck shell=bash
# cluster_lib.sh - shared by the [cluster] tests (test_cluster*.sh): daemons
# with shards on a nats_lib.sh cluster and one PostgreSQL, a bench/gen city
# with its labelled anomalies, and the accounting. Source after lib.sh and
# nats_lib.sh; call cl_init first.
#   cl_init [N]           services, traps, bench tools, the NATS cluster
#                         (N nodes, default 3)
#   cl_conf K URIS        daemon K's configuration (URIS: broker list)
#   cl_start K            start daemon K (pid in DPID[K])
#   cl_station_of_shard K PREFIX  a station code of shard K, and its partition
#   cl_http_port K        daemon K's [http] port
#   cl_wait_shards        all $S shards leased and subscribed (checked)
#   cl_city DURATION_S    a city ending now: $IT_DIR/city.cap, truth.csv,
#                         its policies applied and the daemons reloaded
#   cl_publish NODE       replay the city at 10x through NODE, in the
#                         background (CL_PUB); cl_sent after it ends
#   cl_check_stored [MAX_LOST]  every published reading stored once; with
#                         MAX_LOST, at most that many missing (a SIGKILLed
#                         daemon's window, docs/RELIABILITY.md section 3)
#   cl_check_alerts       labelled anomalies raised once, nothing twice, no
#                         offline alert while the publisher ran
#   cl_locks_start        sample the shard locks in pg_locks every 0.2 s
#   cl_check_exclusive [K T]  no sample with a shard held twice; the daemons'
#                         own lease records (acquired, then lost or
#                         released; daemon K's end at T, e.g. its SIGKILL)
#                         never overlap; intervals in $IT_DIR/intervals
# shellcheck disable=SC2034 # P, S, D are set for the tests
P=64
S=8
declare -a DPID

cl_init() {
  local b
  it_start_services
  trap nats_teardown EXIT
  trap 'exit 130' INT TERM
  GEN=$IT_ROOT/build/bench/gen
  REPLAY=$IT_ROOT/build/bench/replay
  for b in "$GEN" "$REPLAY"; do
    [ -x "$b" ] || make -s -C "$IT_ROOT" "${b#"$IT_ROOT"/}" >>"$IT_DIR/make.log" 2>&1 ||
      { it_fail "bench tool built" "$b" "make failed"; exit 1; }
  done
  nats_start "${1:-3}" "$P" || exit 1
  it_ok "${1:-3}-node nats-server cluster healthy (P=$P mapping)"
}

cl_conf() { # K URIS
  local d=$IT_DIR/d$1
  mkdir -p "$d"
  cat >"$d/chargewatch.conf" <<CONF
[mqtt]
uri = $2
client_id = cw-it-d$1
topic = cwp/{partition}/cw/{station}/{socket}/telemetry
station_topic = cwp/{partition}/cw/{station}/telemetry
[postgres]
conninfo = host=127.0.0.1 port=$CW_PG_PORT user=postgres dbname=chargewatch
batch_ms = 100
batch_rows = 2000
[pipeline]
ring_slots = 512
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
journal_dir = $IT_DIR/journal
CONF
}

cl_start() { # K
  "$CW_DAEMON" -f -c "$IT_DIR/d$1/chargewatch.conf" >>"$IT_DIR/d$1/daemon.log" 2>&1 &
  DPID[$1]=$!
  IT_BG_PIDS="$IT_BG_PIDS $!"
}

cl_station_of_shard() { # K PREFIX: "CODE PARTITION", the first PREFIX<i> whose partition mod $S is K
  local i p
  for i in $(seq 1 200); do
    p=$(cw_partition "$2$i" "$P")
    [ $((p % S)) -eq "$1" ] && { echo "$2$i $p"; return; }
  done
}
cl_http_port() { sed -n 's/^listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$IT_DIR/d$1/chargewatch.conf"; } # K

cl_acquired() { cat "$IT_DIR"/d*/daemon.log | grep -c "lease acquired"; }
cl_subscribed() { cat "$IT_DIR"/d*/daemon.log | grep -c "cw-shard-[0-9]* subscribed"; }
cl_owned() { # K: the shards daemon K acquired, in one line
  grep -o 'shard [0-9]*: lease acquired' "$IT_DIR/d$1/daemon.log" | awk '{print $2}' | tr -d : |
    sort -n | tr '\n' ' '
}

cl_wait_shards() {
  local t0
  t0=$(it_now_ms)
  it_wait_eq 60 "$S" cl_acquired >/dev/null
  it_eq "all $S shards leased" "$S" "$(cl_acquired)"
  # each QoS 1 filter is a replicated consumer (about 1 s apiece on 2.9.10,
  # docs/SCALING.md): the first start takes a while
  it_wait_eq 120 "$S" cl_subscribed >/dev/null
  it_eq "all $S shard sessions subscribed" "$S" "$(cl_subscribed)"
  it_note "shards leased and subscribed in $(($(it_now_ms) - t0)) ms"
}

cl_city() { # DURATION_S
  local k
  # timestamps as recorded (--no-shift), ending about now: at 10x they all
  # stay in the past while they are published. Station-batched (one message
  # per station and tick, 10 readings): what QoS 1 publishing into a
  # replicated JetStream stream sustains on a loaded 2-core machine.
  "$GEN" -o "$IT_DIR/city.cap" -s 200 -k 10 -i 30 -d "$1" --seed 7 --anomaly-rate 0.01 \
    --start-ms $(($(it_now_ms) - $1 * 1000)) --batched \
    --truth "$IT_DIR/truth.csv" --sql "$IT_DIR/policies.sql" 2>>"$IT_DIR/gen.log"
  "$IT_PSQL" -q -h 127.0.0.1 -p "$CW_PG_PORT" -U postgres -d chargewatch -f "$IT_DIR/policies.sql" \
    >>"$IT_DIR/psql.log" 2>&1
  for k in "${!DPID[@]}"; do kill -HUP "${DPID[$k]}" 2>/dev/null; done
  sleep 1
}

cl_publish() { # NODE
  # A node's death can make the others close publishers for a while (their
  # JetStream writes time out during the re-election, docs/SCALING.md): a
  # publisher that did not finish is run again, whole and as fast as it can
  # (the daemons refuse or the unique index drops what was stored already).
  (
    for try in 1 2 3; do
      speed=(-x 10)
      [ "$try" -gt 1 ] && speed=(--asap)
      timeout 110 "$REPLAY" -f "$IT_DIR/city.cap" -u "$(nats_mqtt_url "$1")" -q 1 -P 16 "${speed[@]}" \
        --no-shift --client-prefix "cw-it-pub$try-" >"$IT_DIR/replay.$try.log" 2>&1
      grep -aq 'msgs=' "$IT_DIR/replay.$try.log" && break
    done
    cat "$IT_DIR"/replay.*.log >"$IT_DIR/replay.log"
  ) &
  CL_PUB=$!
}

# readings in the capture (each published at least once)
cl_sent() { sed -n 's/.* msgs, \([0-9]*\) readings,.*/\1/p' "$IT_DIR/gen.log" | tail -1; }
cl_count() { it_sql "SELECT count(*) FROM readings WHERE station LIKE 'CX-%'"; }

cl_check_stored() {
  local sent max_lost=${1:-0}
  wait "$CL_PUB"
  CL_PUB_END=$(it_now_ms)
  sent=$(cl_sent)
  it_note "publisher: $(grep -ac 'msgs=' "$IT_DIR/replay.log") of $(ls "$IT_DIR"/replay.*.log | wc -l) runs finished: $(grep -a 'msgs=' "$IT_DIR/replay.log" | tail -1)"
  it_ge "publisher finished (a run published the whole capture)" 1 "$(grep -ac 'msgs=' "$IT_DIR/replay.log")"
  # until all are in, or the count has not moved for 10 s
  local last=-1 still=0 n
  for _ in $(seq 1 120); do
    n=$(cl_count)
    [ "$n" = "$sent" ] && break
    if [ "$n" = "$last" ]; then still=$((still + 1)); else still=0; fi
    [ "$still" -ge 10 ] && break
    last=$n
    sleep 1
  done
  if [ "$max_lost" = 0 ]; then
    it_eq "every published reading stored" "$sent" "$(cl_count)"
  else
    it_note "readings missing: $((sent - $(cl_count))) of $sent (bound $max_lost)"
    it_ge "readings stored: all but at most the killed daemon's window" $((sent - max_lost)) "$(cl_count)"
  fi
  it_eq "no duplicated rows" "$(cl_count)" \
    "$(it_sql "SELECT count(DISTINCT (station, socket, ts)) FROM readings WHERE station LIKE 'CX-%'")"
}

cl_raised() { # STATION SOCKET KIND
  it_sql "SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id
          WHERE a.station = '$1' AND a.socket = $2 AND a.kind = '$3' AND e.event = 'raised'"
}

cl_ingest_raised() { # [FROM_MS [TO_MS]]: the daemons' own ingest alerts raised in that time
  it_sql "SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id
          WHERE a.kind = 'ingest' AND e.event = 'raised'
            AND e.ts >= to_timestamp(${1:-0} / 1000.0) AND e.ts < to_timestamp(${2:-32503680000000} / 1000.0)"
}

cl_check_alerts() {
  local bad=0 n=0 kind st so r
  while IFS=, read -r kind _ st so _; do
    case $kind in thermal_runaway | overload) ;; *) continue ;; esac
    n=$((n + 1))
    r=$(cl_raised "$st" "$so" "$kind")
    [ "$r" = 1 ] || { bad=$((bad + 1)); it_note "$kind $st/$so raised $r times"; }
  done < <(tail -n +2 "$IT_DIR/truth.csv")
  it_eq "each of $n labelled thermal/overload anomalies raised exactly once" 0 "$bad"
  # the daemons' own ingest alert is one per blind spell (cl_ingest_raised)
  it_eq "no (station, socket, kind) raised twice" 0 \
    "$(it_sql "SELECT count(*) FROM (SELECT a.station, a.socket, a.kind FROM alert_events e JOIN alerts a
               ON a.id = e.alert_id WHERE e.event = 'raised' AND a.kind <> 'ingest'
               GROUP BY 1, 2, 3 HAVING count(*) > 1) x")"
  # after the publisher ends every station does fall silent: only alerts
  # opened while it ran would be false
  it_eq "no offline alert while the stations were publishing" 0 \
    "$(it_sql "SELECT count(*) FROM alerts WHERE kind = 'offline'
               AND opened_at < to_timestamp(${CL_PUB_END:-0} / 1000.0)")"
}

cl_stop_all() { # the live daemons stop cleanly (their leases go with them)
  local k
  for k in "${!DPID[@]}"; do
    kill -0 "${DPID[$k]}" 2>/dev/null || continue
    kill -TERM "${DPID[$k]}"
    wait "${DPID[$k]}"
    it_eq "daemon $k exits 0 on SIGTERM" 0 "$?"
  done
}

cl_held() { # shards whose lock is held now, one line "shard pid" each
  it_sql "SELECT objid, pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
          AND classid = (hashtext('chargewatch.shard')::bigint & 4294967295)::oid ORDER BY 1" |
    tr '|' ' '
}

cl_locks_start() {
  (while :; do cl_held | sed "s/^/$(it_now_ms) /"; sleep 0.2; done) >"$IT_DIR/locks.log" 2>/dev/null &
  CL_SAMPLER=$!
  IT_BG_PIDS="$IT_BG_PIDS $CL_SAMPLER"
}

cl_check_exclusive() { # [K T]
  local k stop end
  kill "$CL_SAMPLER" 2>/dev/null
  it_eq "no pg_locks sample with a shard held twice" 0 \
    "$(awk '{ k = $1 " " $2; if (k in seen) bad++; seen[k] = 1 } END { print bad + 0 }' "$IT_DIR/locks.log")"
  end=$(it_now_ms)
  for k in "${!DPID[@]}" ${1:+"$1"}; do
    stop=$end
    [ "$k" = "${1:-}" ] && stop=$2
    grep -E "shard [0-9]+: lease (acquired|lost|released) at" "$IT_DIR/d$k/daemon.log" |
      sed -E 's/.*shard ([0-9]+): lease (acquired|lost|released) at ([0-9]+).*/\1 \2 \3/' |
      awk -v d="$k" -v stop="$stop" '{ if ($2 == "acquired") a[$1] = $3; else if ($1 in a) { print $1, a[$1], $3, d; delete a[$1] } }
        END { for (s in a) print s, a[s], stop, d }'
  done | sort -u | sort -n -k1,1 -k2,2 >"$IT_DIR/intervals"
  it_eq "each shard owned by one daemon at a time (daemons' lease records)" 0 \
    "$(awk '{ if ($1 == s && $2 < e) bad++; s = $1; e = $3 } END { print bad + 0 }' "$IT_DIR/intervals")"
  it_eq "every shard has an owner in the records" "$S" "$(awk '{print $1}' "$IT_DIR/intervals" | sort -u | wc -l)"
}
