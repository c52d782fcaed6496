#!/usr/bin/env bash
# Install the Debian packages a job needs, only when one is missing. Works as
# root on a fresh Debian 12 machine (or with sudo).
# Usage: scripts/deps.sh [build|test|docs] [extra-package ...]
#   build  what the release build and the demo need (make demo, make install)
#   test   build, plus what the test suite needs (make test); the default, so
#          `scripts/deps.sh PKG...` (bench/run.sh, scripts/lint.sh) installs
#          everything a build with tests needs, and PKG
#   docs   only what the API reference needs (make docs): no compiler
set -euo pipefail

# The library, the tool, the examples and the demo: a C11 compiler and CMake;
# liburing-dev (found with pkgconf) gives the library its io_uring backend,
# libssl-dev its TLS (the demo's TLS rows need it; openssl makes the
# certificates the README's TLS lines use).
build_pkgs=(cmake ninja-build gcc make libc6-dev pkgconf liburing-dev libssl-dev openssl)
# The tests: cmocka; python3 (pack cross-checks, peers); iproute2 (netns);
# socat, netcat, nginx and haproxy as foreign peers; g++ and pkgconf for the
# out-of-tree consumers of an installed sockmsg (tests/consumer); libssl-dev
# for TLS (optional for the library, needed by its tests) and openssl (the
# tests make their certificates and run s_server/s_client).
test_pkgs=(libcmocka-dev python3 iproute2 socat netcat-openbsd nginx haproxy g++ pkgconf
           libssl-dev openssl)
# The real servers the protocol examples run against (issue 13): each test
# starts its own instance in a temp dir, so none of them may run as a system
# service (see no_services below). dnsmasq-base is the dnsmasq binary without
# the dnsmasq package's service and resolv.conf hooks.
test_pkgs+=(postgresql mosquitto redis-server dnsmasq-base)
# The benchmark peers test_bench_peers checks byte for byte (bench/peers):
# without their libraries those peers are not built and go unchecked.
test_pkgs+=(libuv1-dev libevent-dev libzmq3-dev libnng-dev)
# The reference: doxygen, and python3 for scripts/docs-check.py.
docs_pkgs=(doxygen python3)

mode=test
case "${1:-}" in
build | test | docs)
    mode=$1
    shift
    ;;
esac
pkgs=("${build_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${test_pkgs[@]}")
[ "$mode" = docs ] && pkgs=("${docs_pkgs[@]}")
pkgs+=("$@")

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Debian's postgresql, mosquitto and redis-server start their service on
# install (invoke-rc.d/deb-systemd-invoke), and would hold 5432, 1883 and
# 6379, or fail the install in a container without an init. Both ask
# policy-rc.d first: while we install, one that denies every start (101),
# unless the machine already has its own (a container image's), which is kept.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# scripts/deps.sh: no service starts while it installs\nexit 101\n' |
        $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
