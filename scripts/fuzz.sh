#!/usr/bin/env bash
# Run every libFuzzer target for FUZZ_SECONDS each (default 60), one after
# the other (the machine has two shared cores), and print executions, corpus
# growth and findings per target.
#
#   scripts/fuzz.sh BUILD_DIR [TARGET...]     (make fuzz does the build)
#
# Each target starts from its seed corpus (fuzz/corpus/NAME, never written)
# and its regressions (fuzz/regressions/NAME); what it finds new goes to
# BUILD_DIR/fuzz/work/NAME, kept between runs, so a longer campaign resumes.
# A crash, leak or timeout is copied to fuzz/regressions/NAME/, where the
# replay test of every normal build runs it from then on: fix the bug, keep
# the input, commit both. Exits non-zero when any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/fuzz.sh BUILD_DIR [TARGET...]}
shift
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi

failed=0
rows=()
for t in "${targets[@]}"; do
    bin="$build/fuzz/$t"
    [ -x "$bin" ] || { echo "fuzz.sh: $bin not built (configure with CC=clang -DSM_BUILD_FUZZ=ON)" >&2; exit 2; }
    work="$build/fuzz/work/$t"
    art="$build/fuzz/artifacts/$t/"
    mkdir -p "$work" "$art"
    dirs=("$work" "fuzz/corpus/$t")
    [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
    opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$art")
    [ -f "fuzz/$t.dict" ] && opts+=(-dict="fuzz/$t.dict")
    log="$build/fuzz/$t.log"
    rm -f "$art"crash-* "$art"leak-* "$art"timeout-* "$art"oom-*
    echo "== $t: ${seconds}s"
    rc=0
    "$bin" "${opts[@]}" "${dirs[@]}" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    found=$(find "$art" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    status=ok
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        status="FOUND (exit $rc, $found inputs)"
        failed=1
        mkdir -p "fuzz/regressions/$t"
        for f in "$art"*; do
            [ -f "$f" ] && cp "$f" "fuzz/regressions/$t/" && echo "  kept $f as fuzz/regressions/$t/$(basename "$f")"
        done
        grep -m5 -E 'ERROR|check failed|runtime error' "$log" || true
        echo "  log: $log"
    fi
    rows+=("$(printf '%-22s %12s %8s %8s  %s' "$t" "${execs:-?}" "${cov:-?}" "$(find "$work" -type f | wc -l)" "$status")")
done
echo
printf '%-22s %12s %8s %8s  %s\n' target executions cov new result
printf '%s\n' "${rows[@]}"
exit "$failed"
