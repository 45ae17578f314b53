#!/usr/bin/env bash
# test_dbauth.sh - PostgreSQL refusing the daemon's login, at start and later
# in life, with a real password: a role "cw" with a scram-sha-256 password
# over TCP on 127.0.0.1 (a pg_hba.conf line put in front of the test
# cluster's "trust" ones).
#   At start, a wrong password: exit non-zero with the server's message at
#   error level, the password in no log line.
#   Later, the password changed and the session dropped: the server's message
#   at error level (once), /healthz 503 with it in the body, readings spooled
#   (nothing lost); the password put back: /healthz 200 and every reading
#   stored.
. "$(dirname "$0")/lib.sh"
trap it_teardown EXIT
trap 'exit 130' INT TERM
it_start_services

PW_GOOD=Gd-pw-4711
PW_NEW=Nw-pw-0815
PW_BAD=Bd-pw-9999
it_sql "CREATE ROLE cw LOGIN SUPERUSER PASSWORD '$PW_GOOD'" >/dev/null
it_eq "the role's password is a SCRAM verifier" SCRAM-SHA-256 \
  "$(it_sql "SELECT split_part(rolpassword, '\$', 1) FROM pg_authid WHERE rolname='cw'")"
hba=$(it_sql "SHOW hba_file")
{ echo "host all cw 127.0.0.1/32 scram-sha-256"; cat "$hba"; } >"$IT_DIR/hba.new"
cat "$IT_DIR/hba.new" >"$hba" # in place: the server's owner and mode stay
it_sql "SELECT pg_reload_conf()" >/dev/null
sleep 1
as_cw() { PGPASSWORD=$1 "$IT_PSQL" -X -h 127.0.0.1 -p "$CW_PG_PORT" -U cw -d chargewatch -tAc 'SELECT 1' 2>&1; }
it_eq "the server checks cw's password (sanity)" "1 refused" \
  "$(as_cw "$PW_GOOD") $(as_cw wrong | grep -q 'password authentication failed' && echo refused)"

it_write_config
conf_with() { # CONNINFO FILE
  sed -e "s|^conninfo = .*|conninfo = $1|" "$IT_DIR/chargewatch.conf" >"$2"
}

# ---- at start: a wrong password
conf_with "host=127.0.0.1 port=$CW_PG_PORT user=cw password=$PW_BAD dbname=chargewatch" "$IT_DIR/bad.conf"
timeout 30 "$CW_DAEMON" -f -c "$IT_DIR/bad.conf" >"$IT_DIR/bad-start.log" 2>&1
rc=$?
it_eq "wrong password at start: exit 1" 1 "$rc"
it_eq "with the server's message at error level" 1 \
  "$(grep -cE 'error: writer: start: the database refused the connection: .*password authentication failed for user "cw"' "$IT_DIR/bad-start.log")"
it_eq "the wrong password in no log line" 0 "$(grep -c -- "$PW_BAD" "$IT_DIR/bad-start.log")"

# ---- running; then the password changes under it
printf '127.0.0.1:%s:chargewatch:cw:%s\n' "$CW_PG_PORT" "$PW_GOOD" >"$IT_DIR/pgpass"
chmod 600 "$IT_DIR/pgpass"
conf_with "host=127.0.0.1 port=$CW_PG_PORT user=cw dbname=chargewatch passfile=$IT_DIR/pgpass" \
  "$IT_DIR/chargewatch.conf.new"
mv "$IT_DIR/chargewatch.conf.new" "$IT_DIR/chargewatch.conf"
it_daemon_start
it_wait_ready || exit 1
it_eq "healthz 200 with the right password" 200 "$(it_http /healthz >/dev/null; echo "$IT_HTTP_STATUS")"

it_sql "ALTER ROLE cw PASSWORD '$PW_NEW'" >/dev/null
it_sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename='cw'" >/dev/null
now=$(it_now_ms)
for i in $(seq 1 20); do it_reading $((now - 30000 + i * 1000)) 300 25.0; echo; done >"$IT_DIR/r1.lines"
it_pub_lines cw/AUTH1/1/telemetry "$IT_DIR/r1.lines"
refused_health() { it_http /healthz >/dev/null; [ "$IT_HTTP_STATUS" = 503 ]; }
it_wait 30 refused_health
body=$(it_http /healthz)
it_eq "refused later: healthz 503" 503 "$IT_HTTP_STATUS"
it_eq "refused later: the body gives the server's reason" 1 \
  "$(echo "$body" | grep -c 'unavailable: database (refused: .*password authentication failed for user "cw"')"
it_eq "refused later: logged at error level with the server's message" 1 \
  "$(it_wait 10 grep -qE 'error: writer: reconnect: the database refused the connection: .*password authentication failed' "$IT_DIR/daemon.log"; echo $(( $? == 0 )))"
spooled() { [ "$(it_metric chargewatch_batches_spooled_total)" -gt 0 ] 2>/dev/null; }
it_eq "refused later: the readings are spooled" 0 "$(it_wait 20 spooled; echo $?)"
sleep 3
it_eq "still 503 while refused (reconnects keep failing)" 503 "$(it_http /healthz >/dev/null; echo "$IT_HTTP_STATUS")"
it_eq "nothing of AUTH1 stored while refused" 0 "$(it_rows AUTH1)"

# ---- the password put back
it_sql "ALTER ROLE cw PASSWORD '$PW_GOOD'" >/dev/null
ok_health() { it_http /healthz >/dev/null; [ "$IT_HTTP_STATUS" = 200 ]; }
it_eq "accepted again: healthz 200" 0 "$(it_wait 30 ok_health; echo $?)"
it_eq "accepted again: every reading stored" 20 "$(it_wait_eq 30 20 it_rows AUTH1)"
it_eq "accepted again: logged" 1 "$(grep -c 'the database accepts the connection again' "$IT_DIR/daemon.log")"
it_eq "no password in any log line" 0 \
  "$(cat "$IT_DIR"/*.log | grep -cE -- "$PW_GOOD|$PW_NEW|$PW_BAD")"
