#!/bin/sh
# build.sh OUTDIR - `make deb`: builds chargewatch_<version>_<arch>.deb with
# dpkg-buildpackage from a clean copy of the tracked (and new, not ignored)
# files, so the work tree's build/ never leaks in, then runs lintian on it.
# Leaves OUTDIR/chargewatch_<version>_<arch>.deb and OUTDIR/lintian.txt;
# fails when the build fails or lintian reports an error or a warning that
# debian/chargewatch.lintian-overrides does not explain.
set -eu
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
VER=$(dpkg-parsechangelog -S Version)
ARCH=$(dpkg --print-architecture)
SRC=$OUT/src/chargewatch-$VER
rm -rf "$OUT/src"
mkdir -p "$SRC"
git ls-files -co --exclude-standard | grep -v '^build/' | tar -cf - -T - | tar -xf - -C "$SRC"
(cd "$SRC" && dpkg-buildpackage -us -uc -b -j2 >"$OUT/build.log" 2>&1) || {
  tail -30 "$OUT/build.log" >&2
  exit 1
}
DEB=chargewatch_${VER}_${ARCH}.deb
mv "$OUT/src/$DEB" "$OUT/$DEB"
rc=0
lintian --fail-on error,warning --info "$OUT/$DEB" >"$OUT/lintian.txt" 2>&1 || rc=$?
cat "$OUT/lintian.txt"
echo "$OUT/$DEB"
exit "$rc"
