#!/bin/sh
# run.sh - build and run the libFuzzer targets fuzz/fuzz_*.c.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]   (default 30 s, every target)
# Each target declares what it links in comment lines at its top:
#   /* fuzz-sources: lib/cw.c lib/topic.c */   sources compiled with it
#   /* fuzz-libs: -lcjson -lm */               extra link flags (optional)
#   /* fuzz-pkgs: inih */                      pkg-config packages (optional)
#   /* fuzz-args: -max_len=8192 */             extra libFuzzer flags (optional)
# so adding a target needs no edit here. Seeds in fuzz/seeds/<name>/ are
# copied into a scratch corpus under build/fuzz/ (fuzz/seeds is never
# written); crashes land in build/fuzz/<name>-crash-*. Prints "ok fuzz_<name>"
# or "FAIL fuzz_<name>" per target and exits non-zero if any failed.
set -u

secs=30
if [ $# -gt 0 ]; then
  secs=$1
  shift
fi
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
out=${CW_FUZZ_OUT:-$root/build/fuzz}
cc=${FUZZ_CC:-clang}
mkdir -p "$out" || exit 1

skip() {
  echo "skip fuzz (clang/libFuzzer not available)"
  exit 0
}
command -v "$cc" >/dev/null 2>&1 || skip
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
  'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
  >"$out/probe.c"
"$cc" -fsanitize=fuzzer,address,undefined "$out/probe.c" -o "$out/probe" >/dev/null 2>&1 || skip
rm -f "$out/probe" "$out/probe.c"

# Which targets: the arguments (fuzz_decode, decode or fuzz/fuzz_decode.c), else all.
if [ $# -eq 0 ]; then
  set -- "$root"/fuzz/fuzz_*.c
  [ -e "$1" ] || { echo "no fuzz targets in $root/fuzz" >&2; exit 1; }
fi

# One header line "/* key: value */" of a target file, value only.
header() {
  sed -n "s|^/\\* $2: \\(.*\\) \\*/\$|\\1|p" "$1" | head -n 1
}

cd "$root" || exit 1
failed=0
for arg in "$@"; do
  name=$(basename "$arg" .c)
  name=${name#fuzz_}
  src=fuzz/fuzz_$name.c
  bin=$out/fuzz_$name
  if [ ! -f "$src" ]; then
    echo "FAIL fuzz_$name"
    echo "  no $src" >&2
    failed=1
    continue
  fi
  sources=$(header "$src" fuzz-sources)
  libs=$(header "$src" fuzz-libs)
  pkgs=$(header "$src" fuzz-pkgs)
  args=$(header "$src" fuzz-args)
  pkgflags=""
  if [ -n "$pkgs" ]; then
    # shellcheck disable=SC2086
    pkgflags=$(pkg-config --cflags --libs $pkgs) || { echo "FAIL fuzz_$name"; failed=1; continue; }
  fi
  # Word splitting of the header values is intended (lists of files/flags).
  # shellcheck disable=SC2086
  if ! "$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
      -Ilib -Idaemon -Itests $(pkg-config --cflags libcjson 2>/dev/null) \
      "$src" $sources -o "$bin" $libs $pkgflags >"$bin.build.log" 2>&1; then
    echo "FAIL fuzz_$name"
    echo "  build failed: $bin.build.log" >&2
    failed=1
    continue
  fi
  corpus=$out/corpus_$name
  mkdir -p "$corpus"
  if [ -d "fuzz/seeds/$name" ]; then
    cp fuzz/seeds/"$name"/* "$corpus"/ 2>/dev/null
  fi
  dict=""
  [ -f "fuzz/seeds/$name.dict" ] && dict="-dict=fuzz/seeds/$name.dict"
  # shellcheck disable=SC2086
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/$name-" $dict $args "$corpus" >"$bin.log" 2>&1; then
    echo "ok fuzz_$name"
    echo "  $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$bin.log" | grep -o '[0-9]*$') runs in ${secs}s, log $bin.log" >&2
  else
    echo "FAIL fuzz_$name"
    echo "  log $bin.log" >&2
    grep -m 3 -E 'ERROR|runtime error|SUMMARY' "$bin.log" | sed 's/^/  /' >&2
    failed=1
  fi
done
exit $failed
