# tls_lib.sh - a throwaway PKI and a TLS + ACL mosquitto for the integration
# tests of the MQTT security promises (docs/OPERATIONS.md, "Broker security").
# Source it from bash after tests/services.sh. Everything lives under the DIR
# given; nothing is installed system-wide; the broker is stopped by PID.
#   tls_make_pki DIR
#       test CA (ca.crt), server certificate for 127.0.0.1/localhost
#       (server.crt/key), client certificates whose CN is the MQTT user name:
#       chargewatchd.crt/key (the daemon), operator.crt/key (an operator),
#       station-CX1.crt/key (a station controller), expired.crt/key (CN
#       chargewatchd, valid 2020-01-01..2020-01-02), and a second, unrelated
#       CA (wrong-ca.crt) with a server certificate of its own
#       (wrong-server.crt/key). Encrypted key: chargewatchd-enc.key with its
#       passphrase in keypass.txt.
#   tls_mosquitto_start DIR PORT [SERVER_PREFIX]
#       mosquitto with one TLS listener on 127.0.0.1:PORT that requires a
#       client certificate signed by the test CA and takes the certificate's
#       CN as the user name, persistence on, and the acl_file of
#       tls_write_acl. SERVER_PREFIX (default server) picks the server
#       certificate (wrong-server: signed by the unrelated CA). Sets
#       CW_TLS_PID, CW_TLS_PORT, CW_TLS_URI (ssl://127.0.0.1:PORT).
#   tls_mosquitto_stop DIR
#   tls_write_acl FILE      the ACL of docs/OPERATIONS.md (docs/mosquitto.acl)

tls_openssl() { openssl "$@" >/dev/null 2>&1; }

# tls__sign DIR NAME CN [CA] [EXTRA openssl-ca ARGS...]: key + certificate
# NAME.key/NAME.crt for CN, signed by CA (default ca) through `openssl ca`,
# which (unlike `x509 -req` in OpenSSL 3.0) can set arbitrary validity dates.
tls__sign() {
  local dir=$1 name=$2 cn=$3 ca=${4:-ca}
  shift 4 2>/dev/null || shift $#
  tls_openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/$name.key" \
    -out "$dir/$name.csr" -subj "/O=chargewatch test/CN=$cn" || return 1
  tls_openssl ca -batch -config "$dir/$ca.cnf" -in "$dir/$name.csr" \
    -out "$dir/$name.crt" -notext "$@" || return 1
  chmod 600 "$dir/$name.key"
}

# tls__ca DIR NAME CN: a self-signed CA with a minimal `openssl ca` database.
tls__ca() {
  local dir=$1 name=$2 cn=$3
  mkdir -p "$dir/$name.db"
  : >"$dir/$name.db/index.txt"
  echo 1000 >"$dir/$name.db/serial"
  cat >"$dir/$name.cnf" <<CNF
[ ca ]
default_ca = this
[ this ]
dir = $dir/$name.db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $dir/$name.crt
private_key = $dir/$name.key
default_md = sha256
default_days = 30
policy = any
unique_subject = no
copy_extensions = copy
x509_extensions = leaf
[ any ]
organizationName = optional
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
CNF
  tls_openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$dir/$name.key" \
    -out "$dir/$name.crt" -subj "/O=chargewatch test/CN=$cn" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

tls_make_pki() {
  local dir=$1
  mkdir -p "$dir"
  tls__ca "$dir" ca "chargewatch test CA" || return 1
  tls__ca "$dir" wrong-ca "unrelated CA" || return 1
  # Server: hostname and IP in subjectAltName (what hostname checks read).
  tls_openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/server.key" -out "$dir/server.csr" \
    -subj "/O=chargewatch test/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" || return 1
  tls_openssl ca -batch -config "$dir/ca.cnf" -in "$dir/server.csr" -out "$dir/server.crt" -notext || return 1
  tls_openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/wrong-server.key" -out "$dir/wrong-server.csr" \
    -subj "/O=chargewatch test/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" || return 1
  tls_openssl ca -batch -config "$dir/wrong-ca.cnf" -in "$dir/wrong-server.csr" \
    -out "$dir/wrong-server.crt" -notext || return 1
  # A server certificate for another name: hostname mismatch on 127.0.0.1.
  tls_openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/other-server.key" -out "$dir/other-server.csr" \
    -subj "/O=chargewatch test/CN=broker.example" -addext "subjectAltName=DNS:broker.example" || return 1
  tls_openssl ca -batch -config "$dir/ca.cnf" -in "$dir/other-server.csr" -out "$dir/other-server.crt" -notext ||
    return 1
  tls__sign "$dir" chargewatchd chargewatchd ca || return 1
  tls__sign "$dir" operator operator ca || return 1
  tls__sign "$dir" station-CX1 CX1 ca || return 1
  tls__sign "$dir" expired chargewatchd ca -startdate 20200101000000Z -enddate 20200102000000Z || return 1
  echo "test passphrase" >"$dir/keypass.txt"
  chmod 600 "$dir/keypass.txt"
  tls_openssl pkey -in "$dir/chargewatchd.key" -out "$dir/chargewatchd-enc.key" -aes256 \
    -passout "file:$dir/keypass.txt" || return 1
  rm -f "$dir"/*.csr
  # mosquitto drops privileges to its own user when started as root: let it
  # read the server key.
  chmod 644 "$dir"/*.crt
  chmod 644 "$dir/server.key" "$dir/wrong-server.key" "$dir/other-server.key"
}

# The broker side of "only operators close alerts": stations publish only
# under their own cw/<station>/ (the CN is the station code), the daemon reads
# telemetry and the command topic and writes alerts, operators read alerts and
# write commands. Anything not granted is denied.
tls_write_acl() {
  cp "$(dirname "${BASH_SOURCE[0]}")/../../docs/mosquitto.acl" "$1"
}

tls_mosquitto_start() {
  local dir=$1 port=$2 srv=${3:-server}
  dir=$(cd "$dir" && pwd)
  tls_write_acl "$dir/acl"
  {
    cat <<CONF
per_listener_settings false
allow_anonymous false
acl_file $dir/acl
listener $port 127.0.0.1
cafile $dir/ca.crt
certfile $dir/$srv.crt
keyfile $dir/$srv.key
require_certificate true
use_identity_as_username true
log_type all
CONF
    cw_mosquitto_common "$dir" mosquitto-tls
  } >"$dir/mosquitto-tls.conf"
  cw_mosquitto_run "$dir" mosquitto-tls "$port" || return 1
  CW_TLS_PID=$CW_MOSQ_PID
  CW_TLS_PORT=$port
  CW_TLS_URI="ssl://127.0.0.1:$port"
  export CW_TLS_PID CW_TLS_PORT CW_TLS_URI
}

tls_mosquitto_stop() { cw_mosquitto_halt "$1" mosquitto-tls; }

# tls_pub DIR CERTNAME TOPIC MESSAGE: mosquitto_pub over TLS with a client
# certificate; returns its status (non-zero when the broker refused).
tls_pub() {
  mosquitto_pub -h 127.0.0.1 -p "$CW_TLS_PORT" --cafile "$1/ca.crt" --cert "$1/$2.crt" --key "$1/$2.key" \
    -q 1 -t "$3" -m "$4"
}
