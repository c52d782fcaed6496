"""bench/rate.py: the R scenarios of bench/run.py (servers compared at the
same offered load, issue 11) — their parameters, the syscall count through
perf, the R tables and the targets table. Python 3 stdlib only.

R1 and R2 drive every server with the same open-loop schedule (`sockmsg
bench --rate`), so what differs between servers is what each message costs
them, not how fast the client can go: server CPU per message (utime+stime of
all its threads from /proc/PID/stat over the measured interval, divided by
the messages answered in it), system calls per message, and latency.

The rate of R1 is fixed, not searched for: 200,000 msgs/s of 64 B over 50
connections, chosen by measuring raw epoll on this 2-core VM on 2026-12-07
(Release build, server on core 0, client on core 1, 3 s windows, the
machine shared, load average 5-6 from other work). At 200k raw epoll kept up
in 3 sweeps of 3 (no shortfall) with its client at 20-46 % of its core and
itself at 12-31 %; at 300k it fell behind in 2 of 3 (shortfalls of 456 and
268,000 messages), at 400k in 1 of 2. 200k is the highest rate tried that
raw epoll met every time with the client under half its core, so the
comparison measures the servers, not the client; lower rates mostly
measure wake-ups (fewer messages per read: raw epoll 1.6-2.3 us/msg at 100k
against 0.6-1.6 at 200k in the same sweeps). (Under heavier load, load
average 10-14, raw epoll fell behind even at 200k: such runs are marked.)
R2 is 100,000 msgs/s of 4 KiB (400 MB/s each way), where copying dominates.
"""

import os
import select
import shutil
import statistics

# conns, depth (room: the schedule, not the window, sets the load), size,
# rate, seconds measured, warmup.
R_SCEN = {
    "R1": dict(conns=50, depth=64, size="64", rate=200000, secs=3.0, warmup=0.5),
    "R2": dict(conns=50, depth=64, size="4k", rate=100000, secs=3.0, warmup=0.5),
}
R_QUICK_SECS = 0.7
R_ROUNDS = 5  # at least this many rounds of R, whatever --rounds says
# A run is redone once (and marked) when the client used more than this % of
# its core (it is no longer "well under" it), when other processes took more
# than run.py's NOISY % of a core, or when the hypervisor stole more than
# STEAL_MAX % of the machine during the window.
R_CLIENT_MAX = 70
STEAL_MAX = 2.0

R_SERVERS = ["raw_epoll", "sockmsg", "sockmsg_uring", "libuv", "libevent"]

# System calls counted by name (those of them this kernel has); the total is
# raw_syscalls:sys_enter.
SYS_GROUPS = {
    "reads": ["read", "readv", "recvfrom", "recvmsg"],
    "writes": ["write", "writev", "sendto", "sendmsg"],
    "waits": ["epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll"],
    "epoll_ctl": ["epoll_ctl"],
    "io_uring_enter": ["io_uring_enter"],
}
SYS_COLS = ["reads", "writes", "waits", "epoll_ctl", "io_uring_enter"]
TRACEFS = "/sys/kernel/tracing/events/syscalls"


def label(name):
    return {"sockmsg": "sockmsg (epoll)", "sockmsg_uring": "sockmsg (io_uring)"}.get(name, name)


# ------------------------------------------------------------------ perf


def perf_events():
    """The perf events to count, or (None, why) when perf cannot count them."""
    perf = shutil.which("perf")
    if not perf:
        return None, "perf is not installed (Debian: linux-perf)"
    names = ["raw_syscalls:sys_enter"]
    for group in SYS_GROUPS.values():
        for sc in group:
            if os.path.isdir(os.path.join(TRACEFS, "sys_enter_" + sc)):
                names.append("syscalls:sys_enter_" + sc)
    return (perf, names), None


class PerfStat:
    """`perf stat` around a server, counting only while enabled: it starts
    disabled (--delay=-1) and is switched through a control FIFO, so the
    count covers exactly the measured interval. The server is perf's child."""

    def __init__(self, tmp, n, perf, events):
        self.out = os.path.join(tmp, "perf%d.txt" % n)
        ctl, ack = os.path.join(tmp, "perf%d.ctl" % n), os.path.join(tmp, "perf%d.ack" % n)
        for p in (ctl, ack):
            os.mkfifo(p)
        # O_RDWR: neither open waits for perf to open the other end.
        self.ctl, self.ack = os.open(ctl, os.O_RDWR), os.open(ack, os.O_RDWR)
        self.events = events
        self.wrap = [perf, "stat", "-x,", "-o", self.out, "--delay=-1",
                     "--control", "fifo:%s,%s" % (ctl, ack), "-e", ",".join(events), "--"]

    def command(self, word, timeout=3.0):
        """enable / disable; True once perf acknowledged it."""
        os.write(self.ctl, word.encode() + b"\n")
        r, _, _ = select.select([self.ack], [], [], timeout)
        if not r:
            return False
        os.read(self.ack, 64)
        return True

    def counts(self):
        """{syscall name or "total": count}, from the file perf wrote at exit."""
        res = {}
        try:
            with open(self.out) as f:
                for line in f:
                    parts = line.strip().split(",")
                    if len(parts) < 3 or parts[2] not in self.events:
                        continue
                    try:
                        v = int(parts[0])
                    except ValueError:
                        continue  # "<not counted>"
                    ev = parts[2]
                    res["total" if ev.startswith("raw_") else ev.split("sys_enter_", 1)[1]] = v
        except OSError:
            pass
        return res

    def close(self):
        for fd in (self.ctl, self.ack):
            try:
                os.close(fd)
            except OSError:
                pass


def per_msg(counts, msgs):
    """Syscalls per message: the total and by group."""
    if not counts.get("total") or not msgs:
        return None
    r = {"total": counts["total"] / msgs}
    for g, names in SYS_GROUPS.items():
        r[g] = sum(counts.get(n, 0) for n in names) / msgs
    return r


# ------------------------------------------------------------ checking


def noise(r, noisy_limit):
    """Why a finished R run does not measure the server alone (None if it does)."""
    why = []
    if r.get("client_cpu") is not None and r["client_cpu"] > R_CLIENT_MAX:
        why.append("client at %.0f%% of its core" % r["client_cpu"])
    if r.get("other_cpu", 0) > noisy_limit:
        why.append("others took %.0f%% of a core" % r["other_cpu"])
    if r.get("steal", 0) > STEAL_MAX:
        why.append("steal %.1f%%" % r["steal"])
    return "; ".join(why) or None


# ---------------------------------------------------------------- report


def _med(runs, key):
    vals = [r[key] for r in runs if r.get("ok") and r.get(key) is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def _iqr(runs, key):
    vals = sorted(r[key] for r in runs if r.get("ok") and r.get(key) is not None)
    if len(vals) < 4:
        return None
    q = statistics.quantiles(vals, n=4)
    return q[0], q[2]


def _f(v, nd=2):
    return "–" if v is None else ("%.*f" % (nd, v))


def _rate(v):
    return "–" if v is None else "{:,.0f}".format(v)


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def r_tables(w, results, meta, unavailable):
    """The R sections: one table per scenario, and the syscall breakdown."""
    scen = meta.get("r_scen", R_SCEN)
    for s in ("R1", "R2"):
        p = dict(scen[s])
        p["secs"] = meta["secs"].get(s, p["secs"])
        if meta.get("quick"):
            p["warmup"] = 0.2
        size = p["size"]
        size = size[:-1] + " KiB" if size.endswith("k") else size + " B"
        w("## %s: %s connections, %s, %s msgs/s offered (open loop)" % (
            s, p["conns"], size, _rate(p["rate"])))
        w("")
        w("`sockmsg bench --rate %d -c %d -d %d -s %s -t %g --warmup %g`: the same schedule "
          "for every server, sent in 1 ms slices, at most %d in flight per connection; latency "
          "from each message's due time. Server CPU per message: utime+stime of all the "
          "server's threads (/proc/PID/stat) over the measured interval, divided by the "
          "messages answered in it. Lower is better." % (
              p["rate"], p["conns"], p["depth"], p["size"], p["secs"], p["warmup"],
              p["depth"]))
        w("")
        w("| server | server µs/msg | min–max | IQR | ×raw epoll | ×libuv | achieved msgs/s | "
          "shortfall | syscalls/msg | p50 µs | p99 µs | server CPU | client CPU | valid runs |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        raw = _med(results.get((s, "raw_epoll", "tcp", 1), []), "us_per_msg")[0]
        uv = _med(results.get((s, "libuv", "tcp", 1), []), "us_per_msg")[0]
        for n in R_SERVERS:
            key = (s, n, "tcp", 1)
            if n in unavailable:
                w("| %s | unavailable | | | | | | | | | | | | %s |" % (label(n), unavailable[n]))
                continue
            if key not in results:
                continue
            runs = results[key]
            u, lo, hi = _med(runs, "us_per_msg")
            iqr = _iqr(runs, "us_per_msg")
            behind = sum(1 for r in runs if r.get("ok") and behind_schedule(r))
            sysr = results.get((s + ":sys", n, "tcp", 1), [])
            sc = [r["sys"]["total"] for r in sysr if r.get("sys")]
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label(n), _f(u, 3) + (" §" if behind * 2 > len(runs) else ""),
                "%s–%s" % (_f(lo, 3), _f(hi, 3)) if lo is not None else "–",
                "%s–%s" % (_f(iqr[0], 3), _f(iqr[1], 3)) if iqr else "–",
                _f(_ratio(u, raw)), _f(_ratio(u, uv)),
                _rate(_med(runs, "msgs_per_s")[0]), _rate(_med(runs, "shortfall")[0]),
                _f(sc[0] if sc else None, 3), _f(_med(runs, "p50")[0], 1),
                _f(_med(runs, "p99")[0], 1),
                _pct(_med(runs, "server_cpu")[0]), _pct(_med(runs, "client_cpu")[0]),
                runs_note(runs) + (" (%d behind §)" % behind if behind else "")))
        w("")
    w("§ behind schedule: a shortfall over %g%% of the messages due. That server did not "
      "keep up with the rate, so its CPU per message is over a backlog, not the offered "
      "load, and is not comparable (marked when most runs were behind)." % (
          100 * BEHIND))
    w("")
    w("## R: system calls per message")
    w("")
    if meta.get("perf_why"):
        w("Not counted: %s." % meta["perf_why"])
        w("")
        return
    w("Counted in one extra interleaved round per scenario, the server started under "
      "`perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_<name>,...` and counting only "
      "over the measured interval (`--delay=-1`, switched on and off through `--control`). "
      "Those runs are not used for CPU or latency: enabling syscall tracepoints slows every "
      "system call. Per message answered in the interval; \"reads\" are read, readv, "
      "recvfrom, recvmsg; \"writes\" write, writev, sendto, sendmsg; \"waits\" epoll_wait, "
      "epoll_pwait(2), poll, ppoll.")
    w("")
    w("| scenario | server | total | reads | writes | waits | epoll_ctl | io_uring_enter | "
      "other |")
    w("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for s in ("R1", "R2"):
        for n in R_SERVERS:
            if n in unavailable:
                w("| %s | %s | unavailable | | | | | | |" % (s, label(n)))
                continue
            runs = results.get((s + ":sys", n, "tcp", 1), [])
            r = next((x for x in runs if x.get("sys")), None)
            if not r:
                if runs:
                    w("| %s | %s | %s | | | | | | |" % (s, label(n), runs[0].get("why", "?")))
                continue
            y = r["sys"]
            other = y["total"] - sum(y[c] for c in SYS_COLS)
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                s, label(n), _f(y["total"], 3), *(_f(y[c], 3) for c in SYS_COLS),
                _f(max(0.0, other), 3)))
    w("")


def _pct(v):
    return "–" if v is None else "%.0f%%" % v


BEHIND = 0.001  # a shortfall over this fraction of the schedule: not keeping up


def behind_schedule(r):
    return bool(r.get("scheduled")) and (r.get("shortfall") or 0) > BEHIND * r["scheduled"]


def runs_note(runs):
    ok = sum(1 for r in runs if r.get("ok"))
    s = "%d/%d" % (ok, len(runs))
    bad = sorted(set(r.get("why", "invalid") for r in runs if not r.get("ok")))
    if bad:
        s += " (invalid: %s)" % "; ".join(bad)
    redone = [r for r in runs if r.get("redone")]
    if redone:
        s += " (%d redone ↻)" % len(redone)
    noisy = [r for r in runs if r.get("noisy")]
    if noisy:
        worst = []
        others = [r["other_cpu"] for r in noisy if r.get("other_cpu") is not None]
        if others:
            worst.append("others up to %.0f%% of a core" % max(others))
        clients = [r["client_cpu"] for r in noisy if r.get("client_cpu") is not None]
        if clients and max(clients) > R_CLIENT_MAX:
            worst.append("client up to %.0f%%" % max(clients))
        steals = [r.get("steal", 0) for r in noisy]
        if max(steals) > STEAL_MAX:
            worst.append("steal up to %.1f%%" % max(steals))
        s += " (%d still noisy ‡: %s)" % (len(noisy), ", ".join(worst) or "?")
    return s


def targets(results, meta, unavailable, ref, client_bound):
    """Issue 11's targets: rows (target, measured, status)."""
    rows = []
    measured = set(k[0] for k in results)

    def one(what, scen, name, metric, base, limit, better):
        if name in unavailable:
            rows.append((what, "sockmsg serve with SOCKMSG_BACKEND=%s: %s" % (
                "io_uring" if name == "sockmsg_uring" else "epoll", unavailable[name]),
                "unavailable"))
            return
        if scen not in measured:
            rows.append((what, "scenario %s not run" % scen, "not measured"))
            return
        v = ref(scen, name, metric)
        b = ref(scen, base, metric) if base else 1.0
        if v is None or not b:
            rows.append((what, "no valid run", "not measured"))
            return
        x = v / b
        ok = x <= limit if better == "<=" else x >= limit
        shown = "%.2f×" % x if base else "%.0f B" % v
        if base and client_bound(scen, base):
            shown += " (raw epoll's rate was capped by the load generator)"
        rows.append((what, shown, "met" if ok else "not met"))

    one("R1 server CPU/msg, io_uring ≤ 0.75× raw epoll", "R1", "sockmsg_uring", "us_per_msg",
        "raw_epoll", 0.75, "<=")
    one("R1 server CPU/msg, epoll ≤ 1.0× raw epoll", "R1", "sockmsg", "us_per_msg",
        "raw_epoll", 1.0, "<=")
    one("R2 server CPU/msg, io_uring ≤ 0.85× raw epoll", "R2", "sockmsg_uring", "us_per_msg",
        "raw_epoll", 0.85, "<=")
    one("R2 server CPU/msg, epoll ≤ 1.0× raw epoll", "R2", "sockmsg", "us_per_msg",
        "raw_epoll", 1.0, "<=")
    one("T msgs/s, io_uring ≥ 1.0× raw epoll", "T", "sockmsg_uring", "msgs_per_s", "raw_epoll",
        1.0, ">=")
    one("B MB/s, io_uring ≥ 1.0× raw epoll", "B", "sockmsg_uring", "mb_per_s", "raw_epoll",
        1.0, ">=")
    one("P p50, io_uring ≤ 1.05× raw epoll", "P", "sockmsg_uring", "p50", "raw_epoll", 1.05,
        "<=")
    one("P p50, epoll ≤ 1.05× raw epoll", "P", "sockmsg", "p50", "raw_epoll", 1.05, "<=")
    one("C idle connection ≤ 160 B server RSS, epoll", "C", "sockmsg", "bytes_per_conn", None,
        160.0, "<=")
    one("C idle connection ≤ 160 B server RSS, io_uring", "C", "sockmsg_uring",
        "bytes_per_conn", None, 160.0, "<=")
    return rows


def targets_table(w, rows):
    w("## Targets (issue 11)")
    w("")
    w("Ratios to raw epoll in this run (medians).")
    w("")
    w("| target | measured | status |")
    w("|---|---|---|")
    for what, shown, status in rows:
        w("| %s | %s | **%s** |" % (what, shown, status))
    w("")
