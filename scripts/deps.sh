#!/usr/bin/env bash
# Install the Debian packages a job needs, only when one is missing. Works as
# root on a fresh Debian 12 machine (or with sudo).
# Usage: scripts/deps.sh [build|test] [extra-package ...]
#   build  what the release build and the demo need (make demo, make install)
#   test   build, plus what the test suite needs (make test)
# With neither, the arguments are just the packages to install (scripts/lint.sh
# asks for clang-format and clang-tidy this way).
set -euo pipefail

# The library, the tool, the examples and the demo: a C11 compiler and CMake.
build_pkgs=(cmake ninja-build gcc make libc6-dev)
# The tests: cmocka; python3 (pack cross-checks, peers); iproute2 (netns);
# socat, netcat, nginx and haproxy as foreign peers; g++ and pkgconf for the
# out-of-tree consumers of an installed sockmsg (tests/consumer).
test_pkgs=(libcmocka-dev python3 iproute2 socat netcat-openbsd nginx haproxy g++ pkgconf)

pkgs=()
case "${1:-}" in
build)
    shift
    pkgs=("${build_pkgs[@]}")
    ;;
test)
    shift
    pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}")
    ;;
esac
pkgs+=("$@")
[ ${#pkgs[@]} -eq 0 ] && { echo "usage: scripts/deps.sh [build|test] [package ...]" >&2; exit 2; }

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
