#!/usr/bin/env bash
# Instructions per echoed message of a benchmark peer, under callgrind
# (repeatable where wall-clock numbers on this VM are not):
#
#   bench/callgrind.sh BUILD_DIR [PEER] [CONNS DEPTH SIZE SECS]
#
# Runs BUILD_DIR/bench/PEER (default peer_sockmsg_stream) under valgrind,
# drives it with BUILD_DIR/tools/sockmsg bench (scenario T by default:
# 50 connections x 16 in flight x 64 B, 4 s), and prints the server's
# instructions (total, and in the library's own code: everything outside
# the kernel's syscall entry) per message. Use a Release build.
# PEER "serve" is the CLI's server instead, as bench/run.py starts it:
# BUILD_DIR/tools/sockmsg serve --echo --frame len32be --threads 1.
# CG_KEEP=DIR keeps the callgrind output there (cg.out), for
# `callgrind_annotate --inclusive=yes DIR/cg.out`.
set -euo pipefail
build=${1:?usage: bench/callgrind.sh BUILD_DIR [PEER] [CONNS DEPTH SIZE SECS]}
peer=${2:-peer_sockmsg_stream}
conns=${3:-50} depth=${4:-16} size=${5:-64} secs=${6:-4}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install -y valgrind)" >&2; exit 2; }
out=$(mktemp -d)
keep() { [ -z "${CG_KEEP:-}" ] || { mkdir -p "$CG_KEEP" && cp "$out"/cg*.out "$CG_KEEP"/; }; }
trap 'keep; rm -rf "$out"' EXIT
if [ "$peer" = serve ]; then
    cmd=("$build/tools/sockmsg" serve --echo --frame len32be --threads 1 --listen tcp://127.0.0.1:0)
else
    cmd=("$build/bench/$peer" tcp://127.0.0.1:0)
fi
valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
    "${cmd[@]}" >"$out/peer.log" 2>"$out/vg.log" &
pid=$!
for _ in $(seq 1 200); do
    grep -q "listening on" "$out/peer.log" 2>/dev/null && break
    sleep 0.05
done
ep=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out/peer.log" | head -1)
[ -n "$ep" ] || { echo "the peer did not start" >&2; kill "$pid"; exit 1; }
"$build/tools/sockmsg" bench "$ep" --conns "$conns" --depth "$depth" --size "$size" \
    --duration "$secs" --timeout 20000 --json >"$out/bench.json"
kill -TERM "$pid"
wait "$pid" || true
msgs=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("msgs") or d.get("messages"))' "$out/bench.json")
total=$(callgrind_annotate "$out/cg.out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "$peer: $msgs messages, $total instructions, $((total / msgs)) per message"
callgrind_annotate "$out/cg.out" 2>/dev/null | sed -n '/file:function/,$p' | head -25
