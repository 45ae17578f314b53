#!/usr/bin/env bash
# test_preflight.sh - --check-config refuses what start-up would fail on:
# a directory as the configuration file, a URI scheme paho does not speak, a
# password or TLS file that does not exist, a directory that cannot be
# written, thresholds out of order, a key given twice in one section. No services needed.
. "$(dirname "$0")/lib.sh"
trap it_teardown EXIT
rm -rf "$IT_DIR"
mkdir -p "$IT_DIR/ro"
base() {
  printf '[spool]\ndir = %s/spool\n[alerts]\nlog = %s/alerts.log\n[pipeline]\ndeadletter = %s/dl.log\n%s\n' \
    "$IT_DIR" "$IT_DIR" "$IT_DIR" "$1" >"$IT_DIR/c.conf"
}
check() { # NAME WANT(OK|pattern) EXTRA-INI [CONFIG]
  local out rc
  base "$3"
  out=$("$CW_DAEMON" --check-config -c "${4:-$IT_DIR/c.conf}" 2>&1)
  rc=$?
  if [ "$2" = OK ]; then it_eq "$1" "0 config OK" "$rc $out"
  elif [ "$rc" -ne 0 ] && echo "$out" | grep -q "$2"; then it_ok "$1: $out"
  else it_fail "$1" "non-zero and '$2'" "$rc $out"; fi
}
check "a good configuration" OK ""
check "-c a directory" "not a regular file" "" /tmp
check "uri http://" "expected tcp://" $'[mqtt]\nuri = http://x'
check "password_file missing" "password_file" $'[mqtt]\npassword_file = /nonexistent/pw'
check "cafile missing" "cafile" $'[mqtt]\nuri = ssl://127.0.0.1:8883\ncafile = /nonexistent/ca.crt'
check "a key given twice in one section, with the line of both" \
  "c.conf:9: \[mqtt\] qos: duplicate key, first given at .*c.conf:8" $'[mqtt]\nqos = 0\nqos = 1'
check "a key given twice across a repeated section" \
  "c.conf:8: \[spool\] dir: duplicate key, first given at .*c.conf:2" $'[spool]\ndir = /tmp/x'
check "thermal_warn_c above thermal_crit_c" "must be below" $'[detectors]\nthermal_warn_c = 95\nthermal_crit_c = 90'
if [ "$(id -u)" -ne 0 ]; then
  chmod 555 "$IT_DIR/ro"
  check "alert log in a directory that cannot be written" "\[alerts\] log" $'[alerts]\nlog = '"$IT_DIR/ro/a.log"
else
  check "alert log path that is a directory" "is a directory" $'[alerts]\nlog = '"$IT_DIR/ro"
fi
