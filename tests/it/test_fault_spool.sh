#!/usr/bin/env bash
# test_fault_spool.sh - a damaged spool (issue "nothing lost" #6): with the
# database down the daemon spools 20 batches of one message (10 readings)
# each and stops; then one record gets a flipped payload byte, one a flipped
# header byte, and the last one is cut mid-record (a crash while writing).
# Restarted with the database up, the daemon must log the damage, replay the
# 17 intact records in order, lose only the 3 damaged ones and keep running.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
it_setup

N=20
BASE=$(($(it_now_ms) - 30 * 60 * 1000))
fault_gen 1 "$N" "$BASE" "$IT_DIR/gen" >/dev/null
spooled() { it_metric 'chargewatch_batches_spooled_total'; }

# it_wait_ready's last PROBE reading may still be on its way through the
# pipeline: let it commit (batch_ms 100) before the database goes, or it
# becomes a 21st spooled batch.
probes() { it_sql "SELECT count(*) FROM readings WHERE station='PROBE'"; }
p1=""
for _ in $(seq 1 20); do
  sleep 0.5
  p2=$(probes)
  [ -n "$p2" ] && [ "$p2" = "$p1" ] && break
  p1=$p2
done
cw_pg_stop "$IT_PG_DIR"
it_wait 30 sh -c "! (exec 3<>/dev/tcp/127.0.0.1/$CW_PG_PORT) 2>/dev/null"
# One message per batch: publish, then wait until that batch is on disk.
ok=1
for k in $(seq 1 "$N"); do
  before=$(spooled)
  it_pub "cw/F1/telemetry" "$(sed -n "${k}p" "$IT_DIR/gen/F1")" || ok=0
  it_wait_eq 20 "$((before + 1))" spooled >/dev/null || ok=0
done
it_eq "20 one-message batches spooled while the database is down" 1 "$ok"
it_daemon_stop
it_eq "daemon exits 0 on SIGTERM with the database down" 0 "$IT_EXIT_RC"

# --- damage the spool (records: [u32 magic][u32 len][u32 crc][payload])
seg=$(ls "$IT_DIR"/spool/readings/*.spool 2>/dev/null | tail -1)
offs=()
lens=()
off=0
size=$(stat -c %s "$seg" 2>/dev/null || echo 0)
while [ "$off" -lt "$size" ]; do
  read -r magic len < <(od -An -tu4 -j "$off" -N 8 "$seg")
  [ "$magic" = 827347779 ] || break # 0x31505343 "CSP1"
  offs+=("$off")
  lens+=("$len")
  off=$((off + 12 + len))
done
it_eq "spool segment holds the 20 records" "$N" "${#offs[@]}"
flip() { # FILE OFFSET : xor one byte with 0x40
  local b
  b=$(od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' ')
  printf "\\x$(printf %02x $((b ^ 64)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
flip "$seg" $((offs[4] + 12 + lens[4] / 2)) # record 5: payload byte (CRC mismatch)
flip "$seg" $((offs[11] + 1))               # record 12: magic (framing lost)
truncate -s $((offs[19] + 12 + lens[19] / 2)) "$seg" # record 20: torn mid-record

# --- restart over it
cw_pg_start "$IT_PG_DIR" "$CW_PG_PORT" >/dev/null || it_fail "postgres restarted" running failed
mark=$(($(wc -l <"$IT_DIR/daemon.log") + 1))
it_daemon_start
it_wait_ready || exit 1
want=$(((N - 3) * 10))
got=$(fault_wait_settled 60 "$want")
it_eq "the 17 intact records replayed (readings)" "$want" "$got"
missing=""
for k in 5 12 20; do
  n=$(it_sql "SELECT count(*) FROM readings WHERE station='F1'
              AND ts = timestamptz 'epoch' + $((BASE + (k - 1) * 1000)) * interval '1 millisecond'")
  [ "$n" = 0 ] && missing="$missing $k"
done
it_eq "exactly the damaged batches are missing" " 5 12 20" "$missing"
it_eq "no duplicates" "$got" "$(fault_distinct)"
det=$(tail -n +"$mark" "$IT_DIR/daemon.log" | sed -nE 's/.*spool in [^:]*: ([0-9]+) damaged record.*/\1/p' |
  awk '{ s += $1 } END { print s + 0 }')
it_eq "the daemon logged the 3 damaged spots" 3 "$det"
it_wait_eq 10 0 sh -c "ls '$IT_DIR/spool/readings' | grep -c 'spool\$'" >/dev/null &&
  it_ok "damaged segment removed after the replay" ||
  it_fail "damaged segment removed after the replay" "no .spool files" "$(ls "$IT_DIR/spool/readings")"
# still running and storing
it_pub "cw/FSP/1/telemetry" "$(it_reading "$(it_now_ms)" 100)"
it_eq "a new reading is stored after the replay" 1 "$(it_wait_eq 20 1 it_rows FSP)"
