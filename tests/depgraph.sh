#!/bin/sh
# depgraph.sh - the dependency graph of daemon/ and lib/, and its checks.
#   1. include graph: an arrow A -> B when file A includes "B" (files of
#      daemon/ and lib/). Fails on a cycle, and when lib/ includes daemon/.
#   2. call graph (when the objects are built, BUILD=build): an arrow A -> B
#      when part A calls functions of part B, with the number of distinct
#      functions. A part is one .c file, except the detection engine of lib/
#      (detect*.c, socket_table.c, alert.c: one part with an internal header,
#      detect_int.h). Fails on a cycle, and when a daemon/ part other than
#      main calls a daemon/ part that is neither a base part (config, log)
#      nor one of its own children (pipeline: worker; alert_sink:
#      alert_render; mqtt_in, mqtt_out: mqtt_client; writer: writer_alerts and the database side db_*, whose
#      files call each other one way): siblings meet only through the
#      callbacks main.c wires.
# Prints "ok NAME" / "FAIL NAME" lines like the unit tests.
#   sh tests/depgraph.sh           checks and a summary
#   sh tests/depgraph.sh -v        also every arrow
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
VERBOSE=0
[ "${1:-}" = "-v" ] && VERBOSE=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0

# ---- 1. include graph
: >"$TMP/inc"
for f in daemon/*.c daemon/*.h lib/*.c lib/*.h; do
  [ -f "$f" ] || continue
  sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f" | while read -r h; do
    if [ -f "daemon/$h" ]; then echo "$f daemon/$h"
    elif [ -f "lib/$h" ]; then echo "$f lib/$h"; fi
  done >>"$TMP/inc"
done
sort -u "$TMP/inc" -o "$TMP/inc"
if [ "$VERBOSE" = 1 ]; then
  echo "# include graph (A -> B: A includes B)"
  awk '{ print "   " $1 " -> " $2 }' "$TMP/inc"
fi
if tsort "$TMP/inc" >/dev/null 2>"$TMP/tsort.err"; then
  echo "ok depgraph: include graph of daemon/ and lib/ has no cycle ($(wc -l <"$TMP/inc") arrows)"
else
  echo "FAIL depgraph: include graph has a cycle:"
  sed 's/^/   /' "$TMP/tsort.err"
  fails=$((fails + 1))
fi
# lib/ never includes daemon/
if grep -q '^lib/[^ ]* daemon/' "$TMP/inc"; then
  echo "FAIL depgraph: lib/ includes daemon/: $(grep '^lib/[^ ]* daemon/' "$TMP/inc" | head -3 | tr '\n' ';')"
  fails=$((fails + 1))
else
  echo "ok depgraph: lib/ includes nothing from daemon/"
fi

# ---- 2. call graph from the objects
objs=$(ls "$BUILD"/daemon/*.o "$BUILD"/lib/*.o 2>/dev/null)
if [ -z "$objs" ]; then
  echo "# depgraph: no objects in $BUILD/ (make first): call graph skipped"
else
  : >"$TMP/def"
  : >"$TMP/use"
  for o in $objs; do
    src=$(echo "$o" | sed "s|^$BUILD/||; s|\.o\$|.c|")
    [ -f "$src" ] || continue # an object left from a removed source
    p=$(echo "$o" | sed "s|^$BUILD/||; s|\.o\$||; s|^lib/detect_.*|lib/detect|; s|^lib/socket_table\$|lib/detect|; s|^lib/alert\$|lib/detect|")
    nm --defined-only -g "$o" | awk -v p="$p" '$2 ~ /[TD]/ { print $3, p }' >>"$TMP/def"
    nm -u "$o" | awk -v p="$p" '{ print $2, p }' >>"$TMP/use"
  done
  sort "$TMP/def" -o "$TMP/def"
  sort "$TMP/use" -o "$TMP/use"
  # caller callee symbol
  join "$TMP/use" "$TMP/def" | awk '$2 != $3 { print $2, $3, $1 }' | sort -u >"$TMP/calls"
  # a symbol defined twice would make join pair it with both: cannot link anyway
  awk '{ print $1, $2 }' "$TMP/calls" | sort | uniq -c | awk '{ print $2, $3, $1 }' >"$TMP/edges"
  if [ "$VERBOSE" = 1 ]; then
    echo "# call graph (A -> B: functions of B that A calls)"
    awk '{ printf "   %s -> %s (%d)\n", $1, $2, $3 }' "$TMP/edges"
  fi
  echo "# cross-file calls per part (distinct functions of other files of daemon/ and lib/):"
  awk '{ n[$1] += $3; k[$1]++ } END { for (p in n) printf "#   %-22s %3d into %d files\n", p, n[p], k[p] }' \
    "$TMP/edges" | sort
  awk '{ print $1, $2 }' "$TMP/edges" >"$TMP/e2"
  if tsort "$TMP/e2" >/dev/null 2>"$TMP/tsort2.err"; then
    echo "ok depgraph: call graph of daemon/ and lib/ has no cycle"
  else
    echo "FAIL depgraph: call graph has a cycle:"
    sed 's/^/   /' "$TMP/tsort2.err"
    fails=$((fails + 1))
  fi
  bad=$(awk '
    $1 ~ /^daemon\// && $2 ~ /^daemon\// && $1 != "daemon/main" {
      to = $2; sub(/^daemon\//, "", to); from = $1; sub(/^daemon\//, "", from)
      if (to == "config" || to == "log") next
      if (from == "pipeline" && to == "worker") next
      if (from ~ /^(writer|writer_alerts|db_.*)$/ && to ~ /^(writer_alerts|db_.*)$/) next
      if (from == "alert_sink" && to == "alert_render") next
      if ((from == "mqtt_in" || from == "mqtt_out") && to == "mqtt_client") next
      print from "->" to
    }' "$TMP/edges" | tr '\n' ' ')
  if [ -n "$bad" ]; then
    echo "FAIL depgraph: a daemon/ part calls a sibling (only main.c wires parts): $bad"
    fails=$((fails + 1))
  else
    echo "ok depgraph: no daemon/ part calls a sibling part"
  fi
fi
[ "$fails" -eq 0 ]
