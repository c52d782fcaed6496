#!/usr/bin/env bash
# The main job: run by `make demo` after a release build.
set -euo pipefail
build=${1:-build/release}
exec "$build/examples/howto_demo"
