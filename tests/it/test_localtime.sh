#!/usr/bin/env bash
# test_localtime.sh - the alert log's local= time comes from each station's
# IANA zone (stations.timezone, loaded with the policies at start and on
# SIGHUP), daylight saving included, and from [alerts] default_timezone for
# a station the daemon has no zone for. Thermal alerts are raised from
# readings at known instants, so every local= is exact:
#   BER1/1 Europe/Berlin,  2026-07-15T10:00:00.000Z -> 2026-07-15T12:00:00.000+02:00 (summer)
#   BER1/2 Europe/Berlin,  2026-01-15T23:30:00.000Z -> 2026-01-16T00:30:00.000+01:00 (winter)
#   SHA1/1 Asia/Shanghai,  2026-07-15T20:00:00.250Z -> 2026-07-16T04:00:00.250+08:00
#   NYC1/1 not registered, default America/New_York,
#                          2026-07-04T03:00:00.000Z -> 2026-07-03T23:00:00.000-04:00
. "$(dirname "$0")/lib.sh"
IT_EXTRA_CONF=$'[pipeline]\nmax_age_s = 315360000\n[alerts]\ndefault_timezone = America/New_York\n[detectors]\noffline_min_s = 86400\noffline_max_s = 86400\noffline_quiet_s = 86400'
it_setup

it_sql "INSERT INTO stations (code, timezone) VALUES ('BER1', 'Europe/Berlin'), ('SHA1', 'Asia/Shanghai')
        ON CONFLICT (code) DO UPDATE SET timezone = excluded.timezone" >/dev/null
kill -HUP "$IT_DAEMON_PID"
reloaded() { [ "$(grep -c 'loaded [0-9]* station policies' "$IT_DIR/daemon.log")" -ge 2 ]; }
it_wait 15 reloaded || it_fail "policies reloaded after SIGHUP" ">= 2 loads" "$(grep -c 'station policies' "$IT_DIR/daemon.log")"

hot() { # TOPIC TS_MS: 30 C one second before, 95 C at TS_MS
  it_pub "$1" "$(it_reading $(($2 - 1000)) 300 30.0)"
  it_pub "$1" "$(it_reading "$2" 300 95.0)"
}
ms() { echo $(($(date -u -d "$1" +%s) * 1000 + ${2:-0})); }
hot cw/BER1/1/telemetry "$(ms 2026-07-15T10:00:00Z)"
hot cw/BER1/2/telemetry "$(ms 2026-01-15T23:30:00Z)"
hot cw/SHA1/1/telemetry "$(ms 2026-07-15T20:00:00Z 250)"
hot cw/NYC1/1/telemetry "$(ms 2026-07-04T03:00:00Z)"
four() { [ "$(grep -c ' thermal_runaway raised ' "$IT_DIR/alerts.log")" -ge 4 ]; }
it_wait 15 four || it_fail "four thermal alerts in the log" 4 "$(grep -c ' raised ' "$IT_DIR/alerts.log")"
local_of() { # STATION SOCKET
  grep -E " thermal_runaway raised id=[0-9]+ station=$1 socket=$2 " "$IT_DIR/alerts.log" |
    sed -nE 's/.* local=([^ ]+) .*/\1/p' | head -1
}
utc_of() { grep -E " raised id=[0-9]+ station=$1 socket=$2 " "$IT_DIR/alerts.log" | awk '{print $1}' | head -1; }
it_eq "Berlin in summer: CEST" "2026-07-15T10:00:00.000Z 2026-07-15T12:00:00.000+02:00" "$(utc_of BER1 1) $(local_of BER1 1)"
it_eq "Berlin in winter: CET, across midnight" "2026-01-15T23:30:00.000Z 2026-01-16T00:30:00.000+01:00" \
  "$(utc_of BER1 2) $(local_of BER1 2)"
it_eq "Shanghai: +08:00 with the milliseconds" "2026-07-15T20:00:00.250Z 2026-07-16T04:00:00.250+08:00" \
  "$(utc_of SHA1 1) $(local_of SHA1 1)"
it_eq "no zone loaded for the station: [alerts] default_timezone (New York, EDT)" \
  "2026-07-04T03:00:00.000Z 2026-07-03T23:00:00.000-04:00" "$(utc_of NYC1 1) $(local_of NYC1 1)"
# the database renders the same local times (chargewatch tail uses it)
it_eq "the database agrees for the Berlin station" "2026-07-15T12:00:00.000+02:00" \
  "$(it_sql "SELECT cw_local_text(opened_at, 'Europe/Berlin') FROM alerts WHERE station = 'BER1' AND socket = 1")"
