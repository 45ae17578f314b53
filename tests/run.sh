#!/bin/sh
# run.sh - the whole test suite, as `make check` and CI run it: normal build
# and unit tests, the dependency graph check, ASan+UBSan build and unit
# tests, ThreadSanitizer on the concurrency tests, bounded fuzzing, then the integration tests against the
# real daemon (normal build; the most important ones again under ASan).
# Every stage's "ok"/"FAIL" lines are counted; a stage that cannot build or
# run counts as a failure, never as zero tests. Ends with "N passed, M failed".
# Full output of each stage: $CW_CHECK_BUILD/check-logs/ (default build/).
#   sh tests/run.sh          everything (about 15 minutes on 2 cores)
#   sh tests/run.sh it       only the integration tests (normal build)
#   sh tests/run.sh soak     the load integration tests, CW_SOAK_ROUNDS times
set -u
cd "$(dirname "$0")/.." || exit 2
MODE=${1:-all}
R=${CW_CHECK_BUILD:-build}
LOGS=$R/check-logs
RESULTS=$LOGS/results.txt
FUZZ_S=${CW_FUZZ_S:-20}
JOBS=${CW_JOBS:-2}
rm -rf "$LOGS"
mkdir -p "$LOGS"
: >"$RESULTS"

note() { echo "   $*"; echo "# $*" >>"$RESULTS"; }
fail_line() { echo "FAIL $*" >>"$RESULTS"; echo "   FAIL $*"; }

# stage NAME TIMEOUT_S NEED_RESULTS CMD... : runs CMD (stdin closed, output
# to $LOGS/NAME.log, killed after TIMEOUT_S), collects its "ok"/"FAIL" lines.
# A non-zero exit without any FAIL line, a timeout, or (NEED_RESULTS=1) no
# result line at all is recorded as one FAIL for the stage.
stage() {
  name=$1 limit=$2 need=$3
  shift 3
  log=$LOGS/$name.log
  t0=$(date +%s)
  timeout -k 15 "$limit" "$@" >"$log" 2>&1 </dev/null
  rc=$?
  grep -aE '^(ok |FAIL )' "$log" >>"$RESULTS"
  np=$(grep -acE '^ok ' "$log")
  nf=$(grep -acE '^FAIL ' "$log")
  printf '== %-28s %4d passed, %3d failed  (%ds)\n' "$name" "$np" "$nf" "$(($(date +%s) - t0))"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    fail_line "$name: timed out after ${limit} s"
  elif [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then
    fail_line "$name: exited with status $rc without a FAIL line (crash?)"
  elif [ "$need" = 1 ] && [ $((np + nf)) -eq 0 ]; then
    fail_line "$name: no test ran"
  fi
  if [ "$rc" -ne 0 ] || [ "$nf" -gt 0 ]; then
    echo "   --- $log (failures and diagnostics, last 60 lines):"
    grep -avE '^ok ' "$log" | tail -60 | sed 's/^/   | /'
  fi
  return "$rc"
}

# build NAME CMD... : a build; failure is one FAIL and blocks its stages.
build() {
  name=$1
  shift
  t0=$(date +%s)
  if "$@" >"$LOGS/$name.log" 2>&1 </dev/null; then
    printf '== %-28s built  (%ds)\n' "$name" "$(($(date +%s) - t0))"
    return 0
  fi
  fail_line "$name: build failed: $*"
  echo "   --- $LOGS/$name.log (last 30 lines):"
  tail -30 "$LOGS/$name.log" | sed 's/^/   | /'
  return 1
}

# LeakSanitizer needs ptrace-free process inspection; in some containers and
# under debuggers it dies with "LeakSanitizer has encountered a fatal error".
# Probe once and fall back to detect_leaks=0 (and say so).
probe_sanitizers() {
  LEAKS=1
  TSAN_PREFIX=""
  TSAN_OK=1
  printf '#include <stdlib.h>\nint main(void){void *p = malloc(16); free(p); return 0;}\n' >"$LOGS/probe.c"
  if ${CC:-cc} -fsanitize=address "$LOGS/probe.c" -o "$LOGS/probe_asan" >/dev/null 2>&1; then
    if ! ASAN_OPTIONS=detect_leaks=1 "$LOGS/probe_asan" >"$LOGS/probe_asan.log" 2>&1; then
      LEAKS=0
      note "LeakSanitizer does not work here ($(head -1 "$LOGS/probe_asan.log")): ASan runs with detect_leaks=0"
    fi
  fi
  # TSan maps its shadow at fixed addresses; with a kernel's larger mmap
  # randomisation it aborts with "unexpected memory mapping": retry with ASLR
  # off (setarch -R), which is what the sanitizer's own docs suggest.
  if ${CC:-cc} -fsanitize=thread "$LOGS/probe.c" -o "$LOGS/probe_tsan" >/dev/null 2>&1; then
    if ! "$LOGS/probe_tsan" >"$LOGS/probe_tsan.log" 2>&1; then
      if setarch "$(uname -m)" -R "$LOGS/probe_tsan" >>"$LOGS/probe_tsan.log" 2>&1; then
        TSAN_PREFIX="setarch $(uname -m) -R"
        note "ThreadSanitizer needs ASLR off on this kernel: running it under '$TSAN_PREFIX'"
      else
        TSAN_OK=0
        note "ThreadSanitizer cannot run here: $(head -1 "$LOGS/probe_tsan.log")"
      fi
    fi
  else
    TSAN_OK=0
    note "cannot link a ThreadSanitizer program (see $LOGS/probe_tsan.log)"
  fi
}

asan_env() {
  ASAN_OPTIONS="detect_leaks=$LEAKS:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1"
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export ASAN_OPTIONS UBSAN_OPTIONS
}

# it_stage SUFFIX DAEMON SAN TESTS... : one stage per integration test file;
# SUFFIX also labels the result lines, SAN=1 checks the log for reports.
it_stage() {
  suffix=$1 daemon=$2 san=$3
  shift 3
  for t in "$@"; do
    n=$(basename "$t" .sh)
    n=${n#test_}
    stage "it${suffix:+-$suffix}-$n" 420 1 env CW_DAEMON="$daemon" CW_IT_LABEL="$suffix" CW_IT_SAN="$san" bash "$t"
  done
}

IT_ALL=$(ls tests/it/test_*.sh 2>/dev/null)
# Under ASan the daemon runs the tests where memory errors would hide:
# the busy paths (ingest, rejects), the alert sinks, and shutdown/restart.
IT_ASAN=""
for n in ingest rejects alerts sigterm restart fault_db fault_kill; do
  [ -f "tests/it/test_$n.sh" ] && IT_ASAN="$IT_ASAN tests/it/test_$n.sh"
done

T_START=$(date +%s)
if sh .ci/deps.sh >"$LOGS/deps.log" 2>&1; then
  printf '== %-28s ok  (%ds)\n' deps "$(($(date +%s) - T_START))"
else
  fail_line "deps: .ci/deps.sh failed"
  tail -20 "$LOGS/deps.log" | sed 's/^/   | /'
fi

case $MODE in
all)
  # (a) normal build (-Werror, bench tools included) and unit tests. Binaries
  # are removed first and make runs with -k, so a stage runs only on what this
  # build produced, and one broken file blocks only what depends on it.
  rm -f "$R/chargewatchd" "$R/test_unit" "$R/asan/chargewatchd" "$R/asan/test_unit" "$R/tsan/test_unit"
  build build make -k -j"$JOBS" BUILD="$R"
  if [ -x "$R/test_unit" ]; then
    stage unit 300 1 "$R/test_unit"
  else
    fail_line "unit: not run ($R/test_unit was not built)"
  fi
  # the graph of daemon/ and lib/: no cycle, no sibling calls (make graph)
  stage depgraph 60 1 env BUILD="$R" sh tests/depgraph.sh
  probe_sanitizers
  # (b) ASan + UBSan
  asan_env
  build build-asan make -k -j"$JOBS" BUILD="$R/asan" SAN=asan "$R/asan/test_unit" "$R/asan/chargewatchd"
  if [ -x "$R/asan/test_unit" ]; then
    stage unit-asan 600 1 env CW_TEST_LABEL=asan "$R/asan/test_unit"
  else
    fail_line "unit-asan: not run ($R/asan/test_unit was not built)"
  fi
  # (c) ThreadSanitizer on the concurrency tests only: the ring, the
  # pipeline (producer, real worker threads, consumer), the writer's hand-offs,
  # the journal (a full journal's waiting appender and its committer), the
  # per-thread parse arena (two threads parsing at once)
  build build-tsan make -k -j"$JOBS" BUILD="$R/tsan" SAN=tsan "$R/tsan/test_unit"
  if [ -x "$R/tsan/test_unit" ]; then
    if [ "$TSAN_OK" = 1 ]; then
      TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
      export TSAN_OPTIONS
      for f in ring pipeline writer journal json_arena; do
        grep -qs "TEST(${f}_" tests/list_*.h || continue
        # shellcheck disable=SC2086
        stage "unit-tsan-$f" 600 1 env CW_TEST_LABEL=tsan $TSAN_PREFIX "$R/tsan/test_unit" "${f}_"
      done
    else
      fail_line "unit-tsan: ThreadSanitizer cannot run on this machine"
    fi
  else
    fail_line "unit-tsan: not run ($R/tsan/test_unit was not built)"
  fi
  # (d) bounded fuzzing
  if [ -f fuzz/run.sh ]; then
    stage fuzz 900 1 sh fuzz/run.sh "$FUZZ_S"
  else
    fail_line "fuzz: fuzz/run.sh is missing"
  fi
  # (e) integration tests: normal build, then the important ones under ASan
  if [ -z "$IT_ALL" ]; then
    fail_line "it: no tests/it/test_*.sh"
  fi
  if [ -x "$R/chargewatchd" ]; then
    # shellcheck disable=SC2086
    it_stage "" "$R/chargewatchd" 0 $IT_ALL
  else
    fail_line "it: not run ($R/chargewatchd was not built)"
  fi
  if [ -x "$R/asan/chargewatchd" ]; then
    # shellcheck disable=SC2086
    it_stage asan "$R/asan/chargewatchd" 1 $IT_ASAN
  else
    fail_line "it-asan: not run ($R/asan/chargewatchd was not built)"
  fi
  ;;
it)
  if build build make -j"$JOBS" BUILD="$R" "$R/chargewatchd"; then
    # shellcheck disable=SC2086
    it_stage "" "$R/chargewatchd" 0 $IT_ALL
  fi
  ;;
soak)
  # Repeats the load tests to shake out rare losses and shutdown races.
  rounds=${CW_SOAK_ROUNDS:-10}
  if build build make -j"$JOBS" BUILD="$R" "$R/chargewatchd"; then
    i=1
    while [ "$i" -le "$rounds" ]; do
      for n in sigterm ingest restart; do
        stage "soak$i-$n" 420 1 env CW_DAEMON="$R/chargewatchd" CW_IT_LABEL="soak$i" bash "tests/it/test_$n.sh"
      done
      i=$((i + 1))
    done
  fi
  ;;
*)
  echo "usage: sh tests/run.sh [all|it|soak]" >&2
  exit 2
  ;;
esac

passed=$(grep -acE '^ok ' "$RESULTS")
failed=$(grep -acE '^FAIL ' "$RESULTS")
if [ "$failed" -gt 0 ]; then
  echo "== failures:"
  grep -aE '^FAIL ' "$RESULTS" | sed 's/^/   /'
fi
echo "== total time $(($(date +%s) - T_START)) s; logs in $LOGS/"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
