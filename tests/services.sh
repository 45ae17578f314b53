# services.sh - start and stop a private mosquitto and PostgreSQL on loopback
# under a project-local directory, for tests, `make run` and `make bench`.
# Source it from bash. Everything is stopped by the PID it started; nothing
# else is touched.
#   cw_free_port BASE          -> prints a free loopback TCP port >= BASE
#   cw_pg_start DIR PORT       -> initdb (once) + start; sets CW_PG_PID, CW_PG_CONN
#   cw_pg_stop DIR             -> fast shutdown by PID
#   cw_mqtt_start DIR PORT [SECURITY] -> mosquitto with persistence; sets CW_MQTT_PID, CW_MQTT_URI
#   cw_mqtt_stop DIR

cw_pg_bindir() {
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

# Busy: something listens there, or any socket holds it as its local port
# (a client's ephemeral port, a connection in TIME-WAIT): a server cannot
# bind it either. Ports above 32768 are in Linux's ephemeral range.
cw_port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  command -v ss >/dev/null 2>&1 && [ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]
}

cw_free_port() {
  p=$1
  while cw_port_busy "$p"; do p=$((p + 1)); done
  echo "$p"
}

# Run a command as the unprivileged owner of DIR when we are root
# (postgres refuses to run as root).
cw_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cw_pg_start() {
  dir=$1 port=$2
  bindir=$(cw_pg_bindir) || { echo "services: PostgreSQL server binaries not found" >&2; return 1; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # As root, the server runs as user postgres, which may not be able to
  # reach a checkout under /root: then the cluster lives under /tmp and DIR
  # records where (pgdir), so cw_pg_stop finds it.
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$dir"; then
    if [ -f "$dir/pgdir" ] && [ -d "$(cat "$dir/pgdir")" ]; then
      dir=$(cat "$dir/pgdir")
    else
      real=$(mktemp -d /tmp/cw-pg.XXXXXX)
      echo "$real" >"$dir/pgdir"
      dir=$real
    fi
  fi
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir" && chmod 700 "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    cw_as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; return 1; }
  fi
  cw_as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=50" start >/dev/null ||
    { tail -20 "$dir/server.log" >&2; return 1; }
  CW_PG_PID=$(head -1 "$dir/data/postmaster.pid")
  CW_PG_PORT=$port
  CW_PG_CONN="host=127.0.0.1 port=$port user=postgres dbname=chargewatch"
  # the same server over its Unix socket (as the packaged default reaches it)
  CW_PG_SOCK_CONN="host=$dir port=$port user=postgres dbname=chargewatch"
  "$bindir/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='chargewatch'" | grep -q 1 ||
    "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres chargewatch
  export CW_PG_PID CW_PG_PORT CW_PG_CONN CW_PG_SOCK_CONN
}

cw_pg_stop() {
  dir=$1
  [ -f "$dir/pgdir" ] && dir=$(cat "$dir/pgdir")
  [ -f "$dir/data/postmaster.pid" ] || return 0
  pid=$(head -1 "$dir/data/postmaster.pid")
  kill -INT "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -QUIT "$pid" 2>/dev/null || true
}

# The one mosquitto launcher (plain, TLS, ACL brokers of the tests): the
# caller writes DIR/NAME.conf (its listener and security lines, then
# cw_mosquitto_common's), cw_mosquitto_run starts it, records DIR/NAME.pid
# and waits for PORT; cw_mosquitto_halt stops it by that PID.
cw_mosquitto_common() { # DIR NAME : persistence, no queue limits, log file, user
  cat <<CONF
persistence true
persistence_location $1/
autosave_interval 1
max_queued_messages 0
max_inflight_messages 0
log_dest file $1/$2.log
user $(id -un)
CONF
}

cw_mosquitto_run() { # DIR NAME PORT ; sets CW_MOSQ_PID
  mosquitto -c "$1/$2.conf" >/dev/null 2>&1 &
  CW_MOSQ_PID=$!
  echo "$CW_MOSQ_PID" >"$1/$2.pid"
  for _ in $(seq 1 100); do cw_port_busy "$3" && break; sleep 0.05; done
  cw_port_busy "$3" || { echo "services: mosquitto ($2) did not start" >&2; cat "$1/$2.log" >&2; return 1; }
}

cw_mosquitto_halt() { # DIR NAME
  [ -f "$1/$2.pid" ] || return 0
  pid=$(cat "$1/$2.pid")
  kill -TERM "$pid" 2>/dev/null || { rm -f "$1/$2.pid"; return 0; }
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$1/$2.pid"
}

# cw_mqtt_start DIR PORT [SECURITY]: SECURITY is the broker's access lines
# (default "allow_anonymous true"; e.g. password_file and acl_file lines).
cw_mqtt_start() {
  dir=$1 port=$2
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  {
    echo "listener $port 127.0.0.1"
    echo "${3:-allow_anonymous true}"
    echo "max_packet_size 1048576"
    cw_mosquitto_common "$dir" mosquitto
  } >"$dir/mosquitto.conf"
  cw_mosquitto_run "$dir" mosquitto "$port" || return 1
  CW_MQTT_PID=$CW_MOSQ_PID
  CW_MQTT_PORT=$port
  CW_MQTT_URI="tcp://127.0.0.1:$port"
  export CW_MQTT_PID CW_MQTT_PORT CW_MQTT_URI
}

cw_mqtt_stop() { cw_mosquitto_halt "$1" mosquitto; }

# cw_daemon_conf FILE DIR MQTT_URI CLIENT_ID PG_CONN HTTP_PORT [LOG_LEVEL]
# Writes a chargewatchd config for these services: the dead-letter file,
# spool and alert log under DIR (keys as in daemon/chargewatch.conf).
cw_daemon_conf() {
  {
    echo "# Written by tests/services.sh (cw_daemon_conf); see daemon/chargewatch.conf."
    printf '[mqtt]\nuri = %s\nclient_id = %s\n\n' "$3" "$4"
    printf '[postgres]\nconninfo = %s\n\n' "$5"
    printf '[pipeline]\ndeadletter = %s/deadletter.log\n\n' "$2"
    printf '[spool]\ndir = %s/spool\n\n' "$2"
    printf '[alerts]\nlog = %s/alerts.log\n\n' "$2"
    printf '[http]\nlisten = 127.0.0.1:%s\n' "$6"
    [ -n "${7:-}" ] && printf '\n[log]\nlevel = %s\n' "$7"
    return 0
  } >"$1"
}
