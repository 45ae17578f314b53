#!/usr/bin/env bash
# test_acl.sh - only authorised operators close alerts, and the record says
# how the command came. A mosquitto with a password_file (written here with
# mosquitto_passwd) and the acl_file of docs/OPERATIONS.md (docs/mosquitto.acl,
# used as is): stations publish only under their own cw/<station>/, operators
# only on the command topic, the daemon's login reads telemetry and commands
# and writes alerts. A client without a login, a login the ACL grants
# nothing and a station cannot close an alert (the broker refuses or drops
# the command: the alert stays open); the operator's acknowledgement and
# close are applied, and their alert_events rows record the command topic and
# [mqtt] cmd_publishers beside the claimed "by" (control characters escaped).
. "$(dirname "$0")/lib.sh"
trap it_teardown EXIT
trap 'exit 130' INT TERM
it_start_services # PostgreSQL, and an open mosquitto replaced below on its port

AUTH=$IT_DIR/auth
ACL_DOC=$IT_ROOT/docs/mosquitto.acl
mkdir -p "$AUTH"
mosquitto_passwd -c -b "$AUTH/passwd" chargewatchd pw-chargewatchd
for u in operator CX1 CX2 PROBE mallory; do mosquitto_passwd -b "$AUTH/passwd" "$u" "pw-$u"; done
cp "$ACL_DOC" "$AUTH/acl"
printf 'pw-chargewatchd\n' >"$AUTH/daemon.pw"
chmod 600 "$AUTH/daemon.pw"

# The ACL in docs/OPERATIONS.md is this file, line for line.
doc_block=$(awk '/\(`docs\/mosquitto.acl`/ {f = 1; next} f && /^```/ {if (in_b) exit; in_b = 1; next} in_b' \
  "$IT_ROOT/docs/OPERATIONS.md")
it_eq "docs/OPERATIONS.md shows docs/mosquitto.acl" "$(cat "$ACL_DOC")" "$doc_block"

cw_mqtt_stop "$IT_DIR/mqtt"
cw_mqtt_start "$IT_DIR/mqtt" "$CW_MQTT_PORT" "allow_anonymous false
password_file $AUTH/passwd
acl_file $AUTH/acl" || { it_fail "mosquitto with ACL started" running failed; exit 1; }

PUBLISHERS="MQTT user operator (docs/mosquitto.acl)"
IT_EXTRA_CONF="[mqtt]
username = chargewatchd
password_file = $AUTH/daemon.pw
cmd_publishers = $PUBLISHERS"
it_write_config

# lib.sh publishes as PROBE (its readiness probe); others say who they are.
it_pub() { pub_as PROBE "$1" "$2"; }
pub_as() { # USER TOPIC PAYLOAD
  mosquitto_pub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -u "$1" -P "pw-$1" -t "$2" -m "$3"
}
it_daemon_start
it_wait_ready || exit 1

# A station publishes only its own telemetry: CX1 posing as CX2 is dropped.
now=$(it_now_ms)
pub_as CX1 cw/CX2/1/telemetry "$(it_reading $((now - 4000)) 300 30.0)"
pub_as CX1 cw/CX1/1/telemetry "$(it_reading $((now - 3000)) 300 30.0)"
pub_as CX1 cw/CX1/1/telemetry "$(it_reading $((now - 2000)) 300 31.0)"
pub_as CX1 cw/CX1/1/telemetry "$(it_reading $((now - 1000)) 300 95.0)"
it_eq "station CX1: its thermal alert is open" open \
  "$(it_wait_eq 15 open it_sql "SELECT state FROM alerts WHERE station='CX1' AND kind='thermal_runaway'")"
it_eq "station CX1 cannot publish as CX2 (nothing stored for CX2)" 0 "$(it_rows CX2)"
id=$(it_sql "SELECT id FROM alerts WHERE station='CX1' AND kind='thermal_runaway'")

# The operator reads alerts; a station does not.
it_eq "operator reads the retained alert" "$id" \
  "$(mosquitto_sub -h 127.0.0.1 -p "$CW_MQTT_PORT" -u operator -P pw-operator -t cw/alerts/CX1/1/thermal_runaway \
     -C 1 -W 5 2>/dev/null | it_json id)"
it_eq "a station does not read alerts" "" \
  "$(mosquitto_sub -h 127.0.0.1 -p "$CW_MQTT_PORT" -u CX2 -P pw-CX2 -t 'cw/alerts/#' -C 1 -W 2 2>/dev/null)"

# Who cannot close it: no login (refused at connect), a wrong password,
# a login the ACL grants nothing, a station.
close='{"id":'"$id"',"action":"close","by":"mallory"}'
out=$(mosquitto_pub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -t cw/ops/cmd -m "$close" 2>&1)
rc=$?
it_eq "anonymous close: refused by the broker" "refused" \
  "$([ $rc -ne 0 ] && echo "$out" | grep -qi 'not authori' && echo refused || echo "rc=$rc $out")"
out=$(mosquitto_pub -h 127.0.0.1 -p "$CW_MQTT_PORT" -q 1 -u operator -P wrong -t cw/ops/cmd -m "$close" 2>&1)
rc=$?
it_eq "operator with a wrong password: refused" refused \
  "$([ $rc -ne 0 ] && echo refused || echo "rc=$rc $out")"
pub_as mallory cw/ops/cmd "$close"
pub_as CX1 cw/ops/cmd "$close"

# The operator acknowledges (a newline in "by" must not forge a log line),
# then closes. Had any command above reached the daemon, the alert would be
# closed before the acknowledgement, which would then be refused.
pub_as operator cw/ops/cmd '{"id":'"$id"',"action":"ack","by":"alice\nFAKE"}'
it_eq "operator's ack applied" acknowledged \
  "$(it_wait_eq 15 acknowledged it_sql "SELECT state FROM alerts WHERE id=$id")"
it_eq "no command from mallory or a station reached the daemon" 0 \
  "$(grep -c 'by mallory' "$IT_DIR/daemon.log")"
it_eq "no forged log line from the name" 0 "$(grep -c '^FAKE' "$IT_DIR/daemon.log")"
pub_as operator cw/ops/cmd '{"id":'"$id"',"action":"close","by":"alice"}'
it_eq "operator's close applied" "closed alice" \
  "$(it_wait_eq 15 "closed alice" it_sql "SELECT state || ' ' || closed_by FROM alerts WHERE id=$id")"

# Each event records where it came from.
q="SELECT concat_ws('|', detail->>'via', detail->>'topic', detail->>'publishers', detail->>'by')
   FROM alert_events WHERE alert_id=$id AND event="
it_eq "acknowledged event: via, topic, publishers, claimed by (escaped)" \
  "mqtt|cw/ops/cmd|$PUBLISHERS|alice\\x0aFAKE" "$(it_wait_eq 10 "mqtt|cw/ops/cmd|$PUBLISHERS|alice\\x0aFAKE" it_sql "${q}'acknowledged'")"
it_eq "closed event: via, topic, publishers, claimed by" "mqtt|cw/ops/cmd|$PUBLISHERS|alice" \
  "$(it_wait_eq 10 "mqtt|cw/ops/cmd|$PUBLISHERS|alice" it_sql "${q}'closed'")"
it_eq "only the operator's two events" "acknowledged closed" \
  "$(it_sql "SELECT string_agg(event, ' ' ORDER BY ts) FROM alert_events WHERE alert_id=$id AND event IN ('acknowledged', 'rectified', 'closed')")"
