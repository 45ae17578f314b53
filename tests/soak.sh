#!/bin/sh
# soak.sh - the long version of the "nothing lost" fault tests: every
# tests/it/test_fault_*.sh, CW_SOAK_ROUNDS times (default 3), with streams
# CW_FAULT_SCALE times longer (default 3) than in make check, to shake out
# rare losses, duplicates and shutdown races. Then the load tests of
# `tests/run.sh soak`. Ends with "N passed, M failed"; exit 1 on any failure.
#   sh tests/soak.sh            about 40 minutes on 2 cores (a round: ~10 min)
# Output of every run: $CW_CHECK_BUILD/soak-logs/ (default build/).
set -u
cd "$(dirname "$0")/.." || exit 2
R=${CW_CHECK_BUILD:-build}
LOGS=$R/soak-logs
ROUNDS=${CW_SOAK_ROUNDS:-3}
SCALE=${CW_FAULT_SCALE:-3}
rm -rf "$LOGS"
mkdir -p "$LOGS"
if ! make -j"${CW_JOBS:-2}" BUILD="$R" "$R/chargewatchd" >"$LOGS/build.log" 2>&1; then
  echo "FAIL soak: build (see $LOGS/build.log)"
  echo "0 passed, 1 failed"
  exit 1
fi
pass=0
fail=0
i=1
while [ "$i" -le "$ROUNDS" ]; do
  for t in tests/it/test_fault_*.sh; do
    n=$(basename "$t" .sh)
    log=$LOGS/round$i-$n.log
    # bounded: a stuck test counts as a failure, never as a pass
    timeout 900 env CW_DAEMON="$R/chargewatchd" CW_IT_LABEL="soak$i" CW_FAULT_SCALE="$SCALE" \
      bash "$t" </dev/null >"$log" 2>&1
    rc=$?
    ok=$(grep -c '^ok ' "$log")
    bad=$(grep -c '^FAIL ' "$log")
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
      echo "FAIL soak$i $n: exit status $rc without a FAIL line" >>"$log"
      bad=1
    fi
    pass=$((pass + ok))
    fail=$((fail + bad))
    grep -E '^FAIL |figures' "$log" | sed "s/^/   /"
    echo "round $i $n: $ok ok, $bad failed"
  done
  i=$((i + 1))
done
# the load tests (SIGTERM, ingest, restart) as tests/run.sh repeats them
if CW_SOAK_ROUNDS="$ROUNDS" CW_CHECK_BUILD="$R" sh tests/run.sh soak >"$LOGS/run-soak.log" 2>&1; then
  echo "tests/run.sh soak: passed"
else
  echo "FAIL tests/run.sh soak (see $LOGS/run-soak.log)"
  fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
