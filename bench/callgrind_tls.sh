#!/usr/bin/env bash
# Instructions per echoed message of a TLS server under callgrind, the
# handshakes taken out (repeatable where wall-clock numbers on a shared
# machine are not):
#
#   bench/callgrind_tls.sh BUILD_DIR [SERVER] [CONNS DEPTH SIZE SECS]
#
# SERVER is sockmsg (`sockmsg serve --listen tls://`, epoll) or tls_epoll
# (bench/peers/tls_epoll.c, the reference); default sockmsg. Each is run
# twice under valgrind, loaded by `sockmsg bench tls://` over TLS 1.3 with
# TLS_AES_128_GCM_SHA256 for SECS and 2 x SECS seconds (default T: 50
# connections x 16 in flight x 64 B, 2 s); the difference of the two runs'
# instructions over the difference of their messages is the cost of a
# message with the handshakes (the same in both) left out. Use a Release
# build. CG_KEEP=DIR keeps the two runs' callgrind output there
# (cg.SECS.out), for `callgrind_annotate --inclusive=yes`.
set -euo pipefail
build=${1:?usage: bench/callgrind_tls.sh BUILD_DIR [SERVER] [CONNS DEPTH SIZE SECS]}
server=${2:-sockmsg}
conns=${3:-50} depth=${4:-16} size=${5:-64} secs=${6:-2}
here=$(cd "$(dirname "$0")" && pwd)
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install -y valgrind)" >&2; exit 2; }
out=$(mktemp -d)
keep() { [ -z "${CG_KEEP:-}" ] || { mkdir -p "$CG_KEEP" && cp "$out"/cg*.out "$CG_KEEP"/; }; }
trap 'keep; rm -rf "$out"' EXIT
mkdir "$out/certs"
sh "$here/../tests/support/tls_certs.sh" openssl "$out/certs" >/dev/null 2>&1
c=$out/certs
case $server in
sockmsg) cmd=("$build/tools/sockmsg" serve --echo --frame len32be --threads 1
              --listen tls://127.0.0.1:0 --tls-cert "$c/chain.pem" --tls-key "$c/leaf.key") ;;
tls_epoll) cmd=("$build/bench/peer_tls_epoll" "$c/chain.pem" "$c/leaf.key" tcp://127.0.0.1:0) ;;
*) echo "SERVER: sockmsg or tls_epoll" >&2; exit 2 ;;
esac

# One run: prints "INSTRUCTIONS MESSAGES".
run() {
    local d=$1 log=$out/peer.$1.log
    SOCKMSG_BACKEND=epoll valgrind --tool=callgrind --callgrind-out-file="$out/cg.$d.out" \
        "${cmd[@]}" >"$log" 2>"$out/vg.$d.log" &
    local pid=$!
    for _ in $(seq 1 400); do
        grep -q "listening on" "$log" 2>/dev/null && break
        sleep 0.05
    done
    local ep
    ep=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$ep" ] || { echo "the server did not start" >&2; kill "$pid"; exit 1; }
    "$build/tools/sockmsg" bench "$ep" --ca "$c/ca.pem" --tls-ciphersuites TLS_AES_128_GCM_SHA256 \
        --conns "$conns" --depth "$depth" --size "$size" --duration "$d" --timeout 60000 \
        --json >"$out/bench.$d.json"
    kill -TERM "$pid" # a background job ignores SIGINT
    wait "$pid" || true
    local msgs total
    msgs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages"])' \
        "$out/bench.$d.json")
    total=$(callgrind_annotate "$out/cg.$d.out" 2>/dev/null |
        sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
    echo "$total $msgs"
}
read -r i1 m1 < <(run "$secs")
read -r i2 m2 < <(run "$((secs * 2))")
if [ "$m2" -le "$m1" ]; then
    echo "$server: the longer run echoed no more messages ($m1, $m2)" >&2
    exit 1
fi
echo "$server (TLS 1.3, AES-128-GCM; $conns x $depth x $size B): runs of $m1 and $m2 messages," \
    "$(((i2 - i1) / (m2 - m1))) instructions per message (handshakes taken out)"
callgrind_annotate "$out/cg.$((secs * 2)).out" 2>/dev/null | sed -n '/file:function/,$p' | head -20
