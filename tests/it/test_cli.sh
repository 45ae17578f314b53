#!/usr/bin/env bash
# test_cli.sh - the command-line contract of chargewatchd(8): --version,
# --help, --check-config on a good, an empty and a broken file (the error
# names FILE:LINE, section and key), and exit status 2 for a bad argument.
# Needs no broker or database.
. "$(dirname "$0")/lib.sh"
trap it_teardown EXIT
mkdir -p "$IT_DIR"

ver=$(sed -nE 's/^#define CW_VERSION "([^"]*)".*/\1/p' "$IT_ROOT/lib/cw.h")
out=$("$CW_DAEMON" --version 2>&1)
it_eq "--version prints the version, exit 0" "chargewatchd $ver 0" "$out $?"
"$CW_DAEMON" --help >"$IT_DIR/help.txt" 2>&1
it_eq "--help exits 0" 0 "$?"
it_ge "--help mentions --check-config" 1 "$(grep -c -- --check-config "$IT_DIR/help.txt")"

: >"$IT_DIR/empty.conf"
out=$("$CW_DAEMON" --check-config -c "$IT_DIR/empty.conf" 2>&1)
it_eq "--check-config: an empty file is valid" "config OK 0" "$out $?"

cat >"$IT_DIR/good.conf" <<'CONF'
[mqtt]
uri = tcp://127.0.0.1:1883
client_id = cw-test
[postgres]
conninfo = dbname=chargewatch
batch_rows = 100
[detectors]
offline_min_s = 120
[http]
listen = 127.0.0.1:9187
CONF
out=$("$CW_DAEMON" --check-config -c "$IT_DIR/good.conf" 2>&1)
it_eq "--check-config: a good file" "config OK 0" "$out $?"

printf '[mqtt]\nuri = tcp://127.0.0.1:1883\n[postgres]\nbatch_rowz = 5\n' >"$IT_DIR/typo.conf"
out=$("$CW_DAEMON" --check-config -c "$IT_DIR/typo.conf" 2>&1)
rc=$?
it_eq "--check-config: unknown key fails" 1 "$rc"
it_eq "--check-config: error names file:line, section and key" 1 \
  "$(echo "$out" | grep -cF "typo.conf:4: [postgres] batch_rowz")"

printf '[pipeline]\nshutdown_timeout_s = -3\n' >"$IT_DIR/range.conf"
"$CW_DAEMON" --check-config -c "$IT_DIR/range.conf" >/dev/null 2>&1
it_eq "--check-config: out-of-range value fails" 1 "$?"
printf '[nosuch]\nx = 1\n' >"$IT_DIR/section.conf"
"$CW_DAEMON" --check-config -c "$IT_DIR/section.conf" >/dev/null 2>&1
it_eq "--check-config: unknown section fails" 1 "$?"

"$CW_DAEMON" --no-such-option >/dev/null 2>&1
it_eq "unknown argument: exit 2" 2 "$?"
