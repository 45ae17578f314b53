#!/usr/bin/env bash
# test_fault_db.sh - PostgreSQL stopped for 10 s, then started, twice, while
# a paced stream of ~1,000 readings/s flows (docs/RELIABILITY.md,
# "nothing lost"): the writer spools to disk meanwhile and replays in
# order; afterwards every valid reading is stored exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
it_setup

TICKS=$((1200 * FAULT_SCALE))
total=$(fault_gen 2 "$TICKS" "$(($(it_now_ms) - (TICKS + 1200) * 1000))" "$IT_DIR/gen")
fault_publish "$IT_DIR/gen" 40 1 &
PUB=$!
IT_BG_PIDS="$IT_BG_PIDS $PUB"

outage() { # N
  local t0 t1 health left
  cw_pg_stop "$IT_PG_DIR"
  t0=$(it_now_ms)
  sleep 3
  it_http /healthz >/dev/null
  health=$IT_HTTP_STATUS
  if [ "$1" = 1 ]; then
    # an alert raised while the database is down reaches MQTT and the log now
    it_pub "cw/ALDB/3/telemetry" "$(it_reading "$(it_now_ms)" 200 97.0)"
    it_wait 5 grep -q 'ALDB/3/thermal_runaway' "$IT_DIR/alerts.sub" &&
      it_ok "alert published on MQTT while the database is down" ||
      it_fail "alert published on MQTT while the database is down" "a cw/alerts/ALDB/3/thermal_runaway message" "none"
    it_wait 5 grep -q 'ALDB' "$IT_DIR/alerts.log" &&
      it_ok "alert in the alert log while the database is down" ||
      it_fail "alert in the alert log while the database is down" "an ALDB line" "none"
  fi
  # down for 10 s in all
  left=$((t0 + 10000 - $(it_now_ms)))
  [ "$left" -gt 0 ] && sleep "$((left / 1000)).$(printf %03d $((left % 1000)))"
  cw_pg_start "$IT_PG_DIR" "$CW_PG_PORT" >/dev/null || it_fail "postgres restarted ($1)" running failed
  t1=$(it_now_ms)
  it_eq "outage $1: /healthz says 503 while the database is down" 503 "$health"
  # Recovery: from the database being back to the spool drained (the stream
  # keeps flowing meanwhile, so new batches queue behind the replay).
  if it_wait_eq 30 1 it_metric 'chargewatch_db_connected' >/dev/null &&
    it_wait_eq 60 0 it_metric 'chargewatch_spool_bytes' >/dev/null; then
    it_note "outage $1: database down for $((t1 - t0)) ms; spool drained $(($(it_now_ms) - t1)) ms after it was back"
  else
    it_fail "outage $1: spool drained within 60 s of the database returning" 0 "$(it_metric 'chargewatch_spool_bytes') bytes"
  fi
}

it_sub_bg 'cw/alerts/#' "$IT_DIR/alerts.sub"
sleep 4
outage 1
sleep 3
outage 2
wait "$PUB"
it_eq "publishers: broker acknowledged every message" 0 "$(cat "$IT_DIR/gen/pubfail")"
t_pub_done=$(it_now_ms)
got=$(it_wait_eq 120 "$total" fault_count)
t_caught_up=$(it_now_ms)
it_eq "every reading stored after two outages" "$total" "$got"
it_eq "no duplicates (distinct station, socket, ts)" "$total" "$(fault_distinct)"
spooled=$(it_metric 'chargewatch_batches_spooled_total')
it_ge "the spool was used during the outages (batches spooled)" 1 "${spooled:-0}"
it_note "figures: $total readings, batches spooled=${spooled:-?}, caught up $((t_caught_up - t_pub_done)) ms after the last publish"
it_eq "the alert raised during the outage stored once the database was back" 1 \
  "$(it_wait_eq 30 1 it_events ALDB 3 thermal_runaway raised)"
health_status() { it_http /healthz >/dev/null; echo "$IT_HTTP_STATUS"; }
it_eq "/healthz back to 200" 200 "$(it_wait_eq 20 200 health_status)"
