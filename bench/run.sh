#!/usr/bin/env bash
# bench/run.sh: every server side by side in one run (issue "Prove it").
#
#   bench/run.sh [--quick] [--rounds N] [--only LIST] [--no-deps] [--build-dir DIR]
#                [--out DIR]
#
# Installs what it needs on Debian when something is missing, builds a Release
# tree (the library, the sockmsg CLI, every bench peer whose library is there),
# then bench/run.py runs the scenarios (ping-pong, pipelined, bulk, idle
# connections, threads and Unix sockets, and R1/R2: every server at the same
# open-loop rate, CPU and syscalls per message), each server fresh for every
# run, pinned to core 0 with the load generator on core 1, three interleaved
# rounds (five for R), and writes bench/results/<date>.md and .png plus
# latest.md / latest.png. sockmsg runs on each backend (SOCKMSG_BACKEND=epoll,
# io_uring); one it refuses is reported unavailable.
#
# --quick: one round of short runs, written to the build directory instead of
# bench/results (to check the script, not to publish numbers).
# --only LIST: only these scenario groups, comma-separated from P,T,B,M,C,R,S
# (S: TLS, sockmsg vs bench/peers/tls_epoll.c over TLS 1.3, bench/tls_scen.py)
# (e.g. --only R, about 4 minutes); written to <date>-only-R.md, latest.* kept.
#
# Exit status: non-zero when sockmsg, peer_raw_epoll or idle_rss did not
# build, or when any run against the sockmsg server reported an error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build/bench-run"
deps=1
args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --no-deps) deps=0 ;;
    --build-dir) build=$(realpath -m "$2"); shift ;;
    --quick | --rounds | --out | --only)
        args+=("$1")
        if [ "$1" != --quick ]; then args+=("$2"); shift; fi
        ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf 'run.sh: %s\n' "$*" >&2; }
start=$(date +%s)

# 1. Packages: the project's own list plus the peers' libraries and gnuplot
# (gnuplot-nox: the chart needs no X). deps.sh installs only what is missing.
if [ "$deps" = 1 ]; then
    extra=(libuv1-dev libevent-dev libzmq3-dev libnng-dev pkg-config python3 linux-perf)
    command -v gnuplot >/dev/null || extra+=(gnuplot-nox)
    if ! "$root/scripts/deps.sh" "${extra[@]}"; then
        say "installing packages failed; going on with what is installed (peers may be skipped)"
    fi
fi

# 2. A Release build of everything the run needs (tests are not built).
say "building in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSM_WERROR=OFF \
    -DSM_BUILD_TESTS=OFF -DSM_BUILD_TOOLS=ON -DSM_BUILD_BENCH=ON >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log" >&2; say "configure failed"; exit 1; }
grep -E "bench peers" "$build.configure.log" | sed 's/^-- /run.sh: /' >&2 || true
# Build target by target so one peer that does not compile does not take the
# others with it; the required ones decide the exit status.
targets=(sockmsg_cli idle_rss peer_raw_epoll peer_libuv_echo peer_libevent_echo
         peer_threads_echo peer_zmq_echo peer_zmq_client peer_nng_echo peer_nng_client
         peer_tls_epoll)
required=(sockmsg_cli idle_rss peer_raw_epoll)
failed=()
for t in "${targets[@]}"; do
    if ! cmake --build "$build" --target "$t" >"$build.build-$t.log" 2>&1; then
        if grep -q "unknown target" "$build.build-$t.log"; then
            say "$t: not configured (its library is missing), skipped"
        else
            tail -20 "$build.build-$t.log" >&2
            say "$t: build failed (log: $build.build-$t.log)"
            failed+=("$t")
        fi
    fi
done
for t in "${required[@]}"; do
    for f in "${failed[@]}"; do
        if [ "$f" = "$t" ]; then
            say "required piece $t failed to build"
            exit 1
        fi
    done
done
say "build done in $(($(date +%s) - start)) s"

# 3. The measurements.
rc=0
python3 "$here/run.py" --build-dir "$build" --root "$root" \
    --command "bench/run.sh${args[*]:+ ${args[*]}}" "${args[@]}" || rc=$?
say "total $(($(date +%s) - start)) s"
exit $rc
