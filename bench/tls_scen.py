"""bench/run.py's TLS group S (issue 12 point 8): sockmsg's TLS server
against the reference written directly on OpenSSL and epoll
(bench/peers/tls_epoll.c), both over TLS 1.3 with TLS_AES_128_GCM_SHA256,
the load generator (`sockmsg bench tls://`, OpenSSL directly) over TLS too.

  ST  scenario T over TLS: 50 connections x 16 in flight x 64 B, closed loop
  SB  scenario B over TLS: 4 connections x 4 in flight x 64 KiB
  SR  server CPU per message at a fixed offered load (as R1 does, at a rate
      both servers carry over TLS on one core)

With the plaintext T and B of raw_epoll and sockmsg in the same run (added
to the plan when --only leaves T or B out), the targets are:
  - SR: sockmsg's server CPU per message <= 1.1 x the reference's
  - ST, SB: sockmsg keeps at least 0.95 x the share of its plaintext
    throughput that the reference keeps of raw_epoll's (the same loss
    vs plaintext, within 5 %)

`bench/run.sh --only S` runs just these (with their plaintext baselines).
"""

import os
import subprocess

SUITE = "TLS_AES_128_GCM_SHA256"
SERVERS = ["tls_ref", "sockmsg"]  # sockmsg: SOCKMSG_BACKEND=epoll
PLAIN = {"tls_ref": "raw_epoll", "sockmsg": "sockmsg"}  # each one's plaintext twin
SCEN = {
    "ST": dict(conns=50, depth=16, size="64", secs=3.0, warmup=0.5),
    "SB": dict(conns=4, depth=4, size="64k", secs=3.0, warmup=0.5),
    "SR": dict(conns=50, depth=64, size="64", rate=100000, secs=3.0, warmup=0.5),
}
QUICK_SECS = {"ST": 0.7, "SB": 0.7, "SR": 0.7}
CPU_MAX = 1.1   # SR: sockmsg / reference, server CPU per message
KEEP_MIN = 0.95  # ST, SB: sockmsg's kept share / the reference's


def make_certs(root, tmp):
    """A throwaway CA and a leaf for 127.0.0.1 (tests/support/tls_certs.sh).
    Returns (cert chain, key, ca) or None with the reason."""
    d = os.path.join(tmp, "certs")
    os.makedirs(d, exist_ok=True)
    script = os.path.join(root, "tests", "support", "tls_certs.sh")
    try:
        subprocess.run(["/bin/sh", script, "openssl", d], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except (OSError, subprocess.SubprocessError) as e:
        return None, "certificates not made (%s)" % e
    return (os.path.join(d, "chain.pem"), os.path.join(d, "leaf.key"),
            os.path.join(d, "ca.pem")), None


def plan(rounds, only, servers):
    """The S group's measurements: (round, scen, name, transport, threads)."""
    out = []
    for rnd in range(rounds):
        for scen in ("ST", "SB", "SR"):
            for n in SERVERS:
                out.append((rnd, scen, n, "tls", 1))
        for scen in ("T", "B"):
            if scen not in only:
                for n in SERVERS:
                    if PLAIN[n] in servers:
                        out.append((rnd, scen, PLAIN[n], "tcp", 1))
    return out


def tables(w, ref, fmt, ratio):
    """The S section of the report; returns its target lines."""
    w("## TLS (issue 12): sockmsg vs a reference on OpenSSL and epoll")
    w("")
    w("TLS 1.3, %s, the load generator over TLS too (`sockmsg bench tls:// "
      "--tls-ciphersuites %s`); tls ref is `bench/peers/tls_epoll.c`. ST and SB are T and "
      "B over TLS; SR is %d connections at %s msgs/s offered (server CPU per message at the "
      "same load). Kept = the TLS rate / the same server's plaintext rate (tls ref against "
      "raw epoll)." % (SUITE, SUITE, SCEN["SR"]["conns"], fmt(SCEN["SR"]["rate"], "rate")))
    w("")
    w("| server | ST msgs/s | kept of T | SB MB/s | kept of B | SR µs/msg | SR msgs/s |")
    w("|---|---|---|---|---|---|---|")
    got = {}
    for n in SERVERS:
        st, sb = ref("ST", n, "msgs_per_s", "tls"), ref("SB", n, "mb_per_s", "tls")
        t, b = ref("T", PLAIN[n], "msgs_per_s"), ref("B", PLAIN[n], "mb_per_s")
        su, sr = ref("SR", n, "us_per_msg", "tls"), ref("SR", n, "msgs_per_s", "tls")
        kt = st / t if st and t else None
        kb = sb / b if sb and b else None
        got[n] = (kt, kb, su)
        w("| %s | %s | %s | %s | %s | %s | %s |" % (
            "tls ref" if n == "tls_ref" else "sockmsg (epoll)", fmt(st, "rate"),
            "%.2f" % kt if kt else "–", fmt(sb, "mb"), "%.2f" % kb if kb else "–",
            fmt(su, "usmsg"), fmt(sr, "rate")))
    w("")
    lines = []

    def target(what, ok, shown):
        if ok is None:
            lines.append("- **not measured**: %s" % what)
        else:
            lines.append("- **%s**: %s (%s)" % ("met" if ok else "not met", what, shown))
    (skt, skb, su), (rkt, rkb, ru) = got["sockmsg"], got["tls_ref"]
    target("SR server CPU per message ≤ %.1f × tls ref" % CPU_MAX,
           None if not (su and ru) else su <= CPU_MAX * ru,
           "%s vs %s µs/msg: %s×" % (fmt(su, "usmsg"), fmt(ru, "usmsg"), ratio(su, ru)))
    target("ST keeps ≥ %.2f × tls ref's share of plaintext" % KEEP_MIN,
           None if not (skt and rkt) else skt >= KEEP_MIN * rkt,
           "sockmsg keeps %s of T, tls ref %s of raw epoll's" % (
               "%.2f" % skt if skt else "–", "%.2f" % rkt if rkt else "–"))
    target("SB keeps ≥ %.2f × tls ref's share of plaintext" % KEEP_MIN,
           None if not (skb and rkb) else skb >= KEEP_MIN * rkb,
           "sockmsg keeps %s of B, tls ref %s of raw epoll's" % (
               "%.2f" % skb if skb else "–", "%.2f" % rkb if rkb else "–"))
    w("### TLS targets")
    w("")
    for line in lines:
        w(line)
    w("")
    return lines
