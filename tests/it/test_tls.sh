#!/usr/bin/env bash
# test_tls.sh - both MQTT clients over TLS with client certificates
# (tests/it/tls_lib.sh: a PKI made at test time, a mosquitto that requires a
# client certificate and applies the ACL of docs/OPERATIONS.md). A station's
# reading goes through and an alert comes out; a wrong CA and an expired
# client certificate fail with words in the log, not paho's numbers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tls_lib.sh"
trap it_teardown EXIT
it_start_services
PKI=$IT_DIR/pki
mkdir -p "$PKI"
tls_make_pki "$PKI" || { it_fail "test PKI made" made failed; exit 1; }
tls_mosquitto_start "$PKI" "$(cw_free_port $((24883 + RANDOM % 2000)))" ||
  { it_fail "TLS mosquitto started" running failed; exit 1; }
trap 'tls_mosquitto_stop "$PKI"; it_teardown' EXIT

tls_conf() { # FILE CERTNAME CAFILE SPOOL CLIENT_ID
  it_write_config
  sed -e "s|^uri = .*|uri = $CW_TLS_URI\ncafile = $3\ncertfile = $PKI/$2.crt\nkeyfile = $PKI/$2.key\ncmd_topic = cw/ops/cmd|" \
    -e "s|^dir = .*|dir = $4|" -e "s|^client_id = .*|client_id = $5|" \
    -e "s|^listen = .*|listen =|" "$IT_DIR/chargewatch.conf" >"$1"
}

# 1. The daemon's own certificate, the test CA: readings in, alerts out.
tls_conf "$IT_DIR/tls.conf" chargewatchd "$PKI/ca.crt" "$IT_DIR/spool" cw-it-tls
cp "$IT_DIR/tls.conf" "$IT_DIR/chargewatch.conf"
it_daemon_start
stored() { [ "$(it_rows CX1)" -ge 1 ] 2>/dev/null; }
for _ in $(seq 1 40); do
  tls_pub "$PKI" station-CX1 cw/CX1/1/telemetry "$(it_reading "$(it_now_ms)" 200 97.0)" 2>/dev/null
  stored && break
  sleep 0.5
done
it_ge "a station's reading over TLS stored" 1 "$(it_rows CX1)"
raised() { [ "$(it_events CX1 1 thermal_runaway raised)" = 1 ]; }
it_wait 15 raised && it_ok "its alert stored" || it_fail "its alert stored" 1 0
got=$(mosquitto_sub -h 127.0.0.1 -p "$CW_TLS_PORT" --cafile "$PKI/ca.crt" --cert "$PKI/operator.crt" \
  --key "$PKI/operator.key" -t 'cw/alerts/CX1/#' --retained-only -W 3 -F '%t' 2>/dev/null)
it_eq "and published over TLS by the alert publisher (retained)" "cw/alerts/CX1/1/thermal_runaway" "$got"

# 2./3. A wrong CA, an expired client certificate: refused, in words.
bad() { # NAME CERT CAFILE PATTERN
  tls_conf "$IT_DIR/$1.conf" "$2" "$3" "$IT_DIR/spool-$1" "cw-it-$1"
  "$CW_DAEMON" -f -c "$IT_DIR/$1.conf" >"$IT_DIR/$1.log" 2>&1 &
  local pid=$!
  IT_BG_PIDS="$IT_BG_PIDS $pid"
  it_wait 20 grep -qiE "$4" "$IT_DIR/$1.log" && it_ok "$1: fails in words ($4)" ||
    it_fail "$1: fails in words" "$4" "$(grep -m1 'mqtt' "$IT_DIR/$1.log")"
  grep -m1 -iE "$4" "$IT_DIR/$1.log" | sed 's/^/# /'
  sleep 0.5
  if kill -0 "$pid" 2>/dev/null; then BAD_RC=running; kill "$pid"; else wait "$pid"; BAD_RC=$?; fi
}
bad wrongca chargewatchd "$PKI/wrong-ca.crt" "certificate verify failed"
bad expired expired "$PKI/ca.crt" "client certificate .*expired.crt: certificate expired"
it_eq "expired: a start-up error (exit 1)" 1 "$BAD_RC"
