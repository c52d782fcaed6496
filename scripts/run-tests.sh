#!/usr/bin/env bash
# Run the CTest suite of one build directory.
# Usage: scripts/run-tests.sh BUILD_DIR [JOBS]
set -euo pipefail
dir=$1
jobs=${2:-2}
# Sanitizers: fail on the first report, keep leak checking on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
ctest --test-dir "$dir" -j "$jobs" --output-on-failure --no-tests=error
