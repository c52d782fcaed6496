#!/usr/bin/env bash
# The main job: run by `make demo` after a release build. `sockmsg demo`
# starts echo servers in-process and checks every byte of every echo
# (examples/howto_demo, the HOWTO in one program, is built alongside).
set -euo pipefail
build=${1:-build/release}
exec "$build/tools/sockmsg" demo
