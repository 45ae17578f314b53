#!/bin/sh
# deps.sh - install the Debian 12 packages chargewatch needs to build, test,
# run and benchmark, through sudo when not root. Does nothing when all are there.
set -eu
PKGS="build-essential pkg-config libuv1-dev libpaho-mqtt-dev libssl-dev libpq-dev libcjson-dev libinih-dev
libsystemd-dev libck-dev mosquitto mosquitto-clients postgresql postgresql-client iproute2 clang
libclang-rt-14-dev procps gnuplot-nox valgrind nats-server debhelper dpkg-dev fakeroot lintian tmux systemd man-db openssl"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
