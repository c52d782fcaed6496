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
# liburing-dev (found with pkgconf) gives the library its io_uring backend.
build_pkgs=(cmake ninja-build gcc make libc6-dev pkgconf liburing-dev)
# The tests: cmocka; python3 (pack cross-checks, peers); iproute2 (netns);
# socat, netcat, nginx and haproxy as foreign peers; g++ and pkgconf for the
# out-of-tree consumers of an installed sockmsg (tests/consumer); libssl-dev
# for TLS (optional for the library, needed by its tests) and openssl (the
# tests make their certificates and run s_server/s_client).
test_pkgs=(libcmocka-dev python3 iproute2 socat netcat-openbsd nginx haproxy g++ pkgconf
           libssl-dev openssl)
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
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
