#!/usr/bin/env bash
# test_package.sh - the install paths: `make install` with another PREFIX
# writes a unit whose ExecStart is that prefix's binary, and `make deb`
# builds a .deb that lintian passes (apart from the documented overrides in
# debian/chargewatch.lintian-overrides). The .deb is unpacked into a
# throwaway root with dpkg -x: dpkg --root would run the maintainer scripts
# chrooted into a root that has no shell or systemd; instead the scripts are
# checked for their steps, and the same steps (systemd-sysusers and
# systemd-tmpfiles with --root) are run on the root. The installed unit is
# checked with systemd-analyze verify, its paths pointing into the root.
# Needs no broker or database.
. "$(dirname "$0")/lib.sh"
trap it_teardown EXIT
rm -rf "$IT_DIR"
mkdir -p "$IT_DIR"

# verify_unit UNIT ROOT: systemd-analyze verify on a copy whose absolute
# binary paths point into ROOT; man pages are looked up in ROOT too.
verify_unit() {
  local copy=$IT_DIR/verify/$(basename "$1")
  mkdir -p "$IT_DIR/verify"
  sed -E "s#^(ExecStart=)/#\\1$2/#" "$1" >"$copy"
  MANPATH=$2/usr/share/man:$2/opt/cw/share/man systemd-analyze verify "$copy" >"$IT_DIR/verify.out" 2>&1
  echo "$? $(grep -v 'Failed to .* unit' "$IT_DIR/verify.out" | grep -c .)"
}

# ---------------------------------------------------------------- make install
INST=$IT_DIR/inst
make -s -C "$IT_ROOT" BUILD="$IT_DIR/build" PREFIX=/opt/cw DESTDIR="$INST" install >"$IT_DIR/install.log" 2>&1
it_eq "make install PREFIX=/opt/cw DESTDIR=...: exit 0" 0 "$?"
it_eq "the unit runs the installed binary" "ExecStart=/opt/cw/bin/chargewatchd -c /etc/chargewatch/chargewatch.conf" \
  "$(grep '^ExecStart=' "$INST/lib/systemd/system/chargewatchd.service")"
it_eq "both binaries, both man pages" "4" \
  "$(ls "$INST/opt/cw/bin/chargewatchd" "$INST/opt/cw/bin/chargewatch" "$INST/opt/cw/share/man/man8/chargewatchd.8" \
        "$INST/opt/cw/share/man/man1/chargewatch.1" 2>/dev/null | wc -l)"
it_eq "a default configuration that passes --check-config" "config OK" \
  "$("$INST/opt/cw/bin/chargewatchd" --check-config -c "$INST/etc/chargewatch/chargewatch.conf" 2>&1)"
it_eq "the configuration is readable by the daemon's user (644)" 644 "$(stat -c %a "$INST/etc/chargewatch/chargewatch.conf")"
it_eq "systemd-analyze verify of the installed unit" "0 0" "$(verify_unit "$INST/lib/systemd/system/chargewatchd.service" "$INST")"
cat "$IT_DIR/verify.out"
echo "# local change" >>"$INST/etc/chargewatch/chargewatch.conf"
make -s -C "$IT_ROOT" BUILD="$IT_DIR/build" PREFIX=/opt/cw DESTDIR="$INST" install >>"$IT_DIR/install.log" 2>&1
it_eq "make install again keeps an edited configuration" 1 "$(grep -c '^# local change' "$INST/etc/chargewatch/chargewatch.conf")"

# ---------------------------------------------------------------- make deb
for t in dpkg-buildpackage dh lintian systemd-analyze systemd-sysusers systemd-tmpfiles; do
  command -v "$t" >/dev/null || it_fail "$t installed" "$t" "missing (.ci/deps.sh)"
done
sh "$IT_ROOT/debian/build.sh" "$IT_DIR/deb" >"$IT_DIR/deb.log" 2>&1
rc=$?
ver=$(cd "$IT_ROOT" && dpkg-parsechangelog -S Version)
DEB=$IT_DIR/deb/chargewatch_${ver}_$(dpkg --print-architecture).deb
it_eq "make deb: built and lintian clean (errors, warnings)" "0 yes" "$rc $([ -f "$DEB" ] && echo yes)"
grep -E '^[EW]:' "$IT_DIR/deb/lintian.txt" | sed 's/^/#   /'
[ -f "$DEB" ] || { tail -20 "$IT_DIR/deb.log" | sed 's/^/#   /'; exit 1; }
it_eq "conffiles: configuration and logrotate" "/etc/chargewatch/chargewatch.conf /etc/logrotate.d/chargewatch" \
  "$(dpkg-deb -f "$DEB" Package >/dev/null && dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles | xargs)"
dpkg-deb -e "$DEB" "$IT_DIR/ctl"
it_eq "postinst: user (sysusers), then log directory (tmpfiles), then enable" "sysusers tmpfiles enable" \
  "$(grep -oE 'systemd-sysusers|systemd-tmpfiles|deb-systemd-helper enable' "$IT_DIR/ctl/postinst" | sed -E 's/deb-systemd-helper //; s/systemd-//' | uniq | xargs)"
it_eq "postinst does not start the daemon before the database role exists" 0 \
  "$(grep -c 'deb-systemd-invoke .*start' "$IT_DIR/ctl/postinst")"

ROOT=$IT_DIR/root
mkdir -p "$ROOT/etc"
dpkg -x "$DEB" "$ROOT"
it_eq "installed: /usr/bin/chargewatchd --version" "chargewatchd $ver" "$("$ROOT/usr/bin/chargewatchd" --version 2>&1)"
it_eq "installed: /usr/bin/chargewatch --version" "chargewatch $ver" "$("$ROOT/usr/bin/chargewatch" --version 2>&1)"
it_eq "installed unit: ExecStart" "ExecStart=/usr/bin/chargewatchd -c /etc/chargewatch/chargewatch.conf" \
  "$(grep '^ExecStart=' "$ROOT/lib/systemd/system/chargewatchd.service")"
it_eq "installed unit: systemd-analyze verify (binary and man page in the root)" "0 0" \
  "$(verify_unit "$ROOT/lib/systemd/system/chargewatchd.service" "$ROOT")"
cat "$IT_DIR/verify.out"
it_eq "installed configuration: --check-config" "config OK" \
  "$("$ROOT/usr/bin/chargewatchd" --check-config -c "$ROOT/etc/chargewatch/chargewatch.conf" 2>&1)"
it_eq "installed configuration: logs where logrotate looks" 2 \
  "$(grep -cE '^(log|deadletter) = /var/log/chargewatch/' "$ROOT/etc/chargewatch/chargewatch.conf")"
it_eq "logrotate names the same alert log" 1 "$(grep -c '^/var/log/chargewatch/alerts.log {' "$ROOT/etc/logrotate.d/chargewatch")"

# What postinst does, on the root: the user, then its log directory.
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nadm:x:4:\n' >"$ROOT/etc/group"
systemd-sysusers --root="$ROOT" >"$IT_DIR/sysusers.log" 2>&1
it_eq "sysusers: system user chargewatch with its home" "1 /var/lib/chargewatch" \
  "$(grep -c '^chargewatch:' "$ROOT/etc/passwd") $(awk -F: '$1 == "chargewatch" {print $6}' "$ROOT/etc/passwd")"
systemd-tmpfiles --root="$ROOT" --create "$ROOT/usr/lib/tmpfiles.d/chargewatch.conf" >"$IT_DIR/tmpfiles.log" 2>&1
uid=$(awk -F: '$1 == "chargewatch" {print $3}' "$ROOT/etc/passwd")
it_eq "tmpfiles: /var/log/chargewatch is chargewatch:adm, set-group-id, not world-readable" "2750 $uid 4" \
  "$(stat -c '%a %u %g' "$ROOT/var/log/chargewatch" 2>&1)"
it_eq "unit: runs as that user, writes the log directory" "User=chargewatch ReadWritePaths=/var/log/chargewatch" \
  "$(grep -E '^(User|ReadWritePaths)=' "$ROOT/lib/systemd/system/chargewatchd.service" | xargs)"
