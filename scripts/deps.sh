#!/usr/bin/env bash
# Install the Debian packages the build and the tests need, only when one is
# missing. Works as root on a fresh Debian 12 machine (or with sudo).
# Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail

# libssl-dev: TLS (optional for the library, needed by its tests); openssl:
# the tests make their certificates and run s_server/s_client.
# g++ and pkgconf: tests/consumer builds C++ and pkg-config programs against
# an installed sockmsg.
pkgs=(cmake ninja-build gcc make libc6-dev libcmocka-dev python3 iproute2 socat netcat-openbsd
      nginx haproxy g++ pkgconf libssl-dev openssl "$@")

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
