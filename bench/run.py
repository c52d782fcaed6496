#!/usr/bin/env python3
"""bench/run.py: run every server through the same scenarios and write the
results (markdown and a gnuplot chart). bench/run.sh builds, then calls this.

    run.py --build-dir DIR [--root DIR] [--quick] [--rounds N] [--only LIST] [--out DIR]

Each measurement starts a fresh server pinned to core 0 (taskset -c 0), waits
for its "listening on ENDPOINT" line, runs the load generator pinned to core 1
(`sockmsg bench ... --json`, or the library's own client for ZeroMQ and nng),
reads the server's utime+stime from /proc/PID/stat inside the measured window,
and stops the server by its PID. Rounds interleave the servers (round 1: every
server, round 2: every server, ...); the median of the valid runs is reported
with the spread. A run with errors > 0 is invalid. Python 3 stdlib only.

sockmsg runs twice per scenario: SOCKMSG_BACKEND=epoll ("sockmsg") and
SOCKMSG_BACKEND=io_uring ("sockmsg_uring"); the second is reported
unavailable when `sockmsg serve` refuses that backend or runs without an
io_uring instance (a fallback to epoll is never counted as io_uring). The
open-loop scenarios R1 and R2 live in rate.py.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import rate
import tls_scen

CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CORE, CLIENT_CORE = "0", "1"
IDLE_CONNS = 10000
CLIENT_BOUND = 90  # % of a core: above it the load generator is the limit
# A measurement during which other processes used more than NOISY % of a core
# is taken again, up to RETRY_EACH times, RETRY_TOTAL in the whole run.
NOISY, RETRY_EACH, RETRY_TOTAL, RETRY_PAUSE = 25, 2, 40, 2.0

# Scenario parameters: conns, depth, size, seconds measured, warmup seconds.
SCEN = {
    "P": dict(conns=1, depth=1, size="64", secs=2.0, warmup=0.5),
    "T": dict(conns=50, depth=16, size="64", secs=3.0, warmup=0.5),
    "B": dict(conns=4, depth=4, size="64k", secs=3.0, warmup=0.5),
}
SCEN.update(rate.R_SCEN)
SCEN.update(tls_scen.SCEN)
QUICK_SECS = {"P": 0.5, "T": 0.7, "B": 0.7, "R1": rate.R_QUICK_SECS, "R2": rate.R_QUICK_SECS}
QUICK_SECS.update(tls_scen.QUICK_SECS)
GROUPS = ["P", "T", "B", "M", "C", "R", "S"]  # what --only can pick (S: TLS, tls_scen.py)

LEN32BE = ["raw_epoll", "sockmsg", "sockmsg_uring", "libuv", "libevent", "asyncio", "threads"]
BACKEND = {"sockmsg": "epoll", "sockmsg_uring": "io_uring"}
OWN = ["zmq", "nng"]
UNIX_SERVERS = ["raw_epoll", "sockmsg", "libuv", "libevent"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


class Peers:
    """Where each server and client binary is, and how each one is called."""

    def __init__(self, build, root):
        self.build, self.root = build, root
        b = os.path.join(build, "bench")
        self.sockmsg = os.path.join(build, "tools", "sockmsg")
        self.idle_rss = os.path.join(b, "idle_rss")
        self.bins = {
            "raw_epoll": os.path.join(b, "peer_raw_epoll"),
            "libuv": os.path.join(b, "peer_libuv_echo"),
            "libevent": os.path.join(b, "peer_libevent_echo"),
            "threads": os.path.join(b, "peer_threads_echo"),
            "zmq": os.path.join(b, "peer_zmq_echo"),
            "zmq_client": os.path.join(b, "peer_zmq_client"),
            "nng": os.path.join(b, "peer_nng_echo"),
            "nng_client": os.path.join(b, "peer_nng_client"),
            "tls_ref": os.path.join(b, "peer_tls_epoll"),
        }
        self.certs = None  # (chain, key, ca) for tls:// (tls_scen.make_certs)
        self.asyncio = os.path.join(root, "bench", "peers", "asyncio_echo.py")
        self.python = shutil.which("python3") or sys.executable

    def server_cmd(self, name, ep, threads=1):
        tls = []
        if ep.startswith("tls://"):
            if name == "tls_ref":
                return [self.bins[name], self.certs[0], self.certs[1], "tcp://127.0.0.1:0"]
            tls = ["--tls-cert", self.certs[0], "--tls-key", self.certs[1]]
        if name in BACKEND:
            return [self.sockmsg, "serve", "--echo", "--frame", "len32be",
                    "--threads", str(threads), "--listen", ep] + tls
        if name == "asyncio":
            return [self.python, self.asyncio, ep]
        return [self.bins[name], ep]

    def missing(self, name):
        """Why a server cannot run (None when it can)."""
        if name in BACKEND:
            need = [self.sockmsg]
        elif name == "asyncio":
            need = [self.asyncio]
        elif name in OWN:
            need = [self.bins[name], self.bins[name + "_client"]]
        else:
            need = [self.bins[name]]
        for p in need:
            if not os.access(p, os.X_OK if not p.endswith(".py") else os.R_OK):
                return "not built (%s missing)" % os.path.relpath(p, self.root)
        return None


def cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def busy_ticks():
    """Ticks both CPUs spent on anything but idle and iowait (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4]


class Server:
    """A server process we started, pinned to core 0; stopped by its PID."""

    def __init__(self, cmd, errlog, cores=SERVER_CORE, env=None, wrap=None):
        e = dict(os.environ)
        e.update(env or {})
        self.wrapped = bool(wrap)
        self.proc = subprocess.Popen((wrap or []) + ["taskset", "-c", cores] + cmd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=errlog, env=e)
        self.pid = self.proc.pid  # taskset execs the server: same PID
        self.endpoint = None

    def find_child(self):
        """Wrapped (perf stat -- taskset ... server): the server is the
        wrapper's child; False if it is not there."""
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                kids = f.read().split()
        except OSError:
            return False
        if len(kids) != 1:
            return False
        self.pid = int(kids[0])
        return True

    def fd_kinds(self):
        """The anonymous-inode kinds among the server's fds: "[eventpoll]",
        "[io_uring]", ..."""
        kinds = set()
        d = "/proc/%d/fd" % self.pid
        try:
            for fd in os.listdir(d):
                try:
                    t = os.readlink(os.path.join(d, fd))
                except OSError:
                    continue
                if t.startswith("anon_inode:"):
                    kinds.add(t[len("anon_inode:"):])
        except OSError:
            pass
        return kinds

    def wait_listening(self, timeout=15.0):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf, end = b"", time.monotonic() + timeout
        try:
            while b"\n" not in buf:
                left = end - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return False
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    return False
                buf += chunk
        finally:
            sel.close()
        line = buf.split(b"\n", 1)[0].decode(errors="replace").strip()
        if not line.startswith("listening on "):
            return False
        self.endpoint = line[len("listening on "):]
        # Keep reading whatever else it prints so a full pipe never blocks it.
        threading.Thread(target=self._drain, daemon=True).start()
        return True

    def _drain(self):
        try:
            while os.read(self.proc.stdout.fileno(), 65536):
                pass
        except OSError:
            pass

    def stop(self):
        if self.proc.poll() is None:
            if self.wrapped and self.pid != self.proc.pid:
                # The server, by its PID; the wrapper (perf) then exits.
                try:
                    os.kill(self.pid, signal.SIGTERM)
                except OSError:
                    pass
            else:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if self.wrapped and self.pid != self.proc.pid:
                    try:
                        os.kill(self.pid, signal.SIGKILL)
                    except OSError:
                        pass
        try:
            self.proc.stdout.close()
        except OSError:
            pass


def run_client(cmd):
    p = subprocess.Popen(["taskset", "-c", CLIENT_CORE] + cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p


def finish_client(p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, "client timed out after %.0f s" % timeout
    text = out.decode(errors="replace").strip().splitlines()
    for line in reversed(text):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line), None
            except ValueError:
                break
    why = err.decode(errors="replace").strip().splitlines()
    return None, "client exit %d: %s" % (p.returncode, why[-1] if why else "no JSON")


# ------------------------------------------------------------------ one run


class Runner:
    def __init__(self, peers, tmp, quick):
        self.peers, self.tmp, self.quick = peers, tmp, quick
        self.errlog = open(os.path.join(peers.build, "bench-servers.log"), "wb")
        self.unix_n = 0
        self.perf_n = 0

    def endpoint(self, transport):
        if transport == "tcp":
            return "tcp://127.0.0.1:0"
        if transport == "tls":
            return "tls://127.0.0.1:0"
        self.unix_n += 1
        return "unix:%s/s%d.sock" % (self.tmp, self.unix_n)

    def start(self, name, transport="tcp", threads=1, wrap=None):
        """A server listening: (Server, None), or (None, why). For sockmsg the
        backend is checked by the fds it holds: why starts "unavailable" when
        the asked-for one is not what runs."""
        ep = self.endpoint(transport)
        self.errlog.write(("--- %s %s\n" % (name, ep)).encode())
        self.errlog.flush()
        pos = self.errlog.tell()
        env = {"SOCKMSG_BACKEND": BACKEND[name]} if name in BACKEND else None
        srv = Server(self.peers.server_cmd(name, ep, threads), self.errlog, env=env, wrap=wrap)
        if not srv.wait_listening():
            srv.stop()
            if name in BACKEND and srv.proc.returncode not in (None, 0):
                return None, "unavailable: sockmsg serve refused it (%s)" % self.said(pos)
            return None, "server did not print 'listening on' (see %s)" % self.errlog.name
        if wrap and not srv.find_child():
            srv.stop()
            return None, "no server process under %s" % os.path.basename(wrap[0])
        if name in BACKEND:
            want = {"epoll": "[eventpoll]", "io_uring": "[io_uring]"}[BACKEND[name]]
            if want not in srv.fd_kinds():
                srv.stop()
                return None, "unavailable: the server runs without an %s instance (%s)" % (
                    BACKEND[name], self.said(pos) or "it fell back")
        return srv, None

    def said(self, pos):
        """The server's last line on stderr since pos."""
        self.errlog.flush()
        try:
            with open(self.errlog.name, "rb") as f:
                f.seek(pos)
                lines = f.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""

    def load(self, name, scen, transport="tcp", threads=1, perf=None):
        """One scenario P/T/B/R1/R2 run against a fresh server: a result
        dict. perf: (perf binary, events) to count the server's syscalls
        over the window instead (its CPU is then not a clean measurement)."""
        s = dict(SCEN[scen])
        if self.quick:
            s["secs"], s["warmup"] = QUICK_SECS[scen], 0.2
        own = name in OWN
        ps = None
        if perf:
            self.perf_n += 1
            ps = rate.PerfStat(self.tmp, self.perf_n, *perf)
        srv, why = self.start(name, transport, threads, wrap=ps.wrap if ps else None)
        if not srv:
            if ps:
                ps.close()
            return {"ok": False, "why": why, "unavailable": why.startswith("unavailable")}
        try:
            common = ["--conns", str(s["conns"]), "--depth", str(s["depth"]),
                      "--size", s["size"], "--duration", "%g" % s["secs"]]
            if s.get("rate"):
                common += ["--rate", "%d" % s["rate"]]
            if own:
                # The own clients do one untimed round trip per connection
                # first, and have no warmup.
                cmd = [self.peers.bins[name + "_client"], srv.endpoint] + common
                warm = 0.0
            else:
                cmd = [self.peers.sockmsg, "bench", srv.endpoint, "--warmup",
                       "%g" % s["warmup"], "--json"] + common
                if transport == "tls":
                    cmd += ["--ca", self.peers.certs[2], "--tls-ciphersuites", tls_scen.SUITE]
                warm = s["warmup"]
            t_launch = time.monotonic()
            cli = run_client(cmd)
            # The server's CPU inside the window: a sample just after the
            # window starts (connect and warmup done) and one just before it
            # ends; CPU per message = CPU time / (rate x sampled interval).
            t0 = t_launch + warm + min(0.25, s["secs"] / 5)
            t1 = t_launch + warm + s["secs"] - min(0.05, s["secs"] / 10)
            # The machine's busy ticks over the same interval, less the
            # server's and the client's, is what everything else used.
            time.sleep(max(0.0, t0 - time.monotonic()))
            perf_on = ps.command("enable") if ps else False
            la0, st0 = loadavg(), cpu_stat()
            c0, k0, b0, m0 = cpu_ticks(srv.pid), cpu_ticks(cli.pid), busy_ticks(), time.monotonic()
            time.sleep(max(0.0, t1 - time.monotonic()))
            c1, k1, b1, m1 = cpu_ticks(srv.pid), cpu_ticks(cli.pid), busy_ticks(), time.monotonic()
            st1, la1 = cpu_stat(), loadavg()
            perf_off = ps.command("disable") if ps else False
            res, why = finish_client(cli, s["secs"] + warm + 60)
            if res is None:
                return {"ok": False, "why": why}
            if srv.proc.poll() is not None:
                return {"ok": False, "why": "server exited during the run", "res": res}
            r = {
                "ok": res.get("errors", 1) == 0,
                "msgs_per_s": res["msgs_per_s"],
                "mb_per_s": res["mb_per_s"],
                "p50": res["latency_us"]["p50"],
                "p99": res["latency_us"]["p99"],
                "errors": res.get("errors", 0),
                "client_cpu": 100.0 * res["client_cpu_s"] / max(res["duration_s"], 1e-9),
            }
            if c0 is not None and c1 is not None and m1 > m0 and cli.returncode is not None:
                dcpu = (c1 - c0) / CLK_TCK
                r["server_cpu"] = 100.0 * dcpu / (m1 - m0)
                if res["msgs_per_s"] > 0:
                    r["us_per_msg"] = 1e6 * dcpu / ((m1 - m0) * res["msgs_per_s"])
                if k0 is not None and k1 is not None:
                    other = (b1 - b0) - (c1 - c0) - (k1 - k0)
                    r["other_cpu"] = max(0.0, 100.0 * other / CLK_TCK / (m1 - m0))
            d = [b - a for a, b in zip(st0, st1)]
            r["steal"] = 100.0 * d[7] / max(1, sum(d[:8])) if len(d) > 7 else 0.0
            r["load"] = [la0[0], la1[0]]
            if s.get("rate"):
                r["target"] = res.get("target_rate")
                r["shortfall"] = res.get("shortfall")
                r["scheduled"] = res.get("scheduled")
            if not r["ok"]:
                r["why"] = "%d errors" % r["errors"]
            if ps:
                srv.stop()  # perf writes its counts as it exits
                counts = ps.counts()
                y = rate.per_msg(counts, res["msgs_per_s"] * (m1 - m0))
                if perf_on and perf_off and y:
                    r["sys"] = y
                else:
                    r["ok"] = False
                    r["why"] = "syscalls not counted (%s)" % (
                        "perf did not acknowledge" if not (perf_on and perf_off) else
                        "perf wrote no counts" if not counts.get("total") else
                        "no message answered in the window")
            return r
        finally:
            srv.stop()
            if ps:
                ps.close()

    def idle(self, name):
        """Scenario C: server RSS growth per idle connection."""
        srv, why = self.start(name)
        if not srv:
            return {"ok": False, "why": why}
        try:
            n = 1000 if self.quick else IDLE_CONNS
            cli = run_client([self.peers.idle_rss, srv.endpoint, str(srv.pid), str(n), "--json"])
            res, why = finish_client(cli, 180)
            if res is None:
                return {"ok": False, "why": why}
            ok = cli.returncode == 0 and res["connections"] == n
            r = {"ok": ok, "bytes_per_conn": res["bytes_per_conn"], "setup_s": res["setup_s"],
                 "conns": res["connections"]}
            if not ok:
                r["why"] = "only %d of %d connections" % (res["connections"], n)
            return r
        finally:
            srv.stop()


# ---------------------------------------------------------------- reporting


def med(runs, key):
    vals = [r[key] for r in runs if r.get("ok") and r.get(key) is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def fmt(v, kind):
    if v is None:
        return "–"
    if kind == "rate":
        return "{:,.0f}".format(v)
    if kind == "us":
        return "%.1f" % v if v < 100 else "%.0f" % v
    if kind == "mb":
        return "%.0f" % v if v >= 100 else "%.1f" % v
    if kind == "pct":
        return "%.0f%%" % v
    if kind == "usmsg":
        return "%.2f" % v
    if kind == "bytes":
        return "{:,.0f}".format(v)
    if kind == "s":
        return "%.2f" % v
    return str(v)


def spread(lo, hi, kind):
    if lo is None:
        return "–"
    return "%s–%s" % (fmt(lo, kind), fmt(hi, kind))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return "%.2f" % (a / b)


def runs_note(runs):
    ok = sum(1 for r in runs if r.get("ok"))
    bad = [r.get("why", "invalid") for r in runs if not r.get("ok")]
    s = "%d/%d" % (ok, len(runs))
    if bad:
        s += " (invalid: %s)" % "; ".join(sorted(set(bad)))
    noisy = sum(1 for r in runs if r.get("noisy"))
    if noisy:
        s += " (%d noisy ‡)" % noisy
    return s


def label(name):
    return name + " (own protocol)" if name in OWN else name


def unavailable_rows(w, unavailable):
    for n, why in unavailable.items():
        w("| %s | unavailable: %s |" % (n, why))


def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "model": model, "kernel": platform.release(), "mem": mem}


def pkg_version(pkg):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_rev(root):
    try:
        rev = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no",
                                "--", "src", "include", "tools", "bench/peers", "bench/idle_rss.c"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def cpu_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v  # user nice system idle iowait irq softirq steal ...


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def chart(path, rows, tmp):
    """Grouped bars normalised to raw epoll; rows: (name, T, B, P) ratios,
    P as raw epoll's p50 over this server's (higher is better, as the others)."""
    gp = shutil.which("gnuplot")
    if not gp:
        return "gnuplot not installed"
    data = os.path.join(tmp, "chart.dat")
    with open(data, "w") as f:
        for name, t, b, p in rows:
            f.write('"%s" %s %s %s\n' % (name, *(("%.4f" % v) if v else "?" for v in (t, b, p))))
    term = "pngcairo size 860,380 font 'sans,9'"
    script = """
set terminal %s
set output '%s'
set termoption noenhanced
set datafile missing '?'
set title 'Echo servers normalised to raw epoll (= 1.0; higher is better; * own protocol)'
set key outside bottom center horizontal maxcols 3 samplen 2 width -4
set xtics nomirror
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set yrange [0:*]
set ylabel 'x raw epoll'
set grid ytics
set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lc rgb '#555555'
plot '%s' using 2:xtic(1) title 'T msgs/s (50 x 16, 64 B)' lc rgb '#1f77b4', \\
     '' using 3 title 'B MB/s (4 x 4, 64 KiB)' lc rgb '#ff7f0e', \\
     '' using 4 title 'P 1/p50 latency (1 x 1, 64 B)' lc rgb '#2ca02c'
""" % (term, path, data)
    r = subprocess.run([gp], input=script, capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not os.path.exists(path):
        return "gnuplot failed: " + r.stderr.strip()[-300:]
    return None


# --------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", default=None, metavar="LIST",
                    help="run only these scenario groups, comma-separated: %s" % ",".join(GROUPS))
    ap.add_argument("--command", default="bench/run.sh")
    ap.add_argument("--render", metavar="JSON",
                    help="only write the report again from a run's bench-results.json")
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            data = json.load(f)
        return report(data, a.out or os.path.join(os.path.abspath(a.root), "bench", "results"),
                      (not data["meta"]["quick"] or bool(a.out)) and not data["meta"].get("only"))
    if not a.build_dir:
        ap.error("--build-dir is needed to measure")
    only = GROUPS
    if a.only:
        only = [g.strip().upper() for g in a.only.split(",") if g.strip()]
        bad = [g for g in only if g not in GROUPS]
        if bad or not only:
            ap.error("--only: unknown scenario group %s (known: %s)" % (
                ",".join(bad) or "''", ",".join(GROUPS)))
    rounds = a.rounds or (1 if a.quick else 3)
    r_rounds = 1 if a.quick else max(rounds, rate.R_ROUNDS)
    root, build = os.path.abspath(a.root), os.path.abspath(a.build_dir)
    out = a.out or (os.path.join(build, "results") if a.quick
                    else os.path.join(root, "bench", "results"))
    os.makedirs(out, exist_ok=True)

    # 10,000 connections need the fds: children inherit the raised limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    peers = Peers(build, root)
    skipped = {}
    for name in LEN32BE + OWN + (["tls_ref"] if "S" in only else []):
        why = peers.missing(name)
        if why:
            skipped[name] = why
    if not os.access(peers.sockmsg, os.X_OK) or "raw_epoll" in skipped:
        log("run.py: sockmsg or peer_raw_epoll is missing: nothing to compare")
        return 1
    if shutil.which("taskset") is None:
        log("run.py: taskset (util-linux) is needed to pin the processes")
        return 1
    if (os.cpu_count() or 1) < 2:
        log("run.py: pinning needs 2 cores (server on 0, client on 1)")
        return 1
    if hard < IDLE_CONNS + 64:
        skipped_c = "RLIMIT_NOFILE hard limit %d is below %d" % (hard, IDLE_CONNS + 64)
    else:
        skipped_c = None
    if not os.access(peers.idle_rss, os.X_OK):
        skipped_c = "bench/idle_rss not built"

    tmp = tempfile.mkdtemp(prefix="sockmsg-bench-")
    runner = Runner(peers, tmp, a.quick)
    s_why = None
    if "S" in only:
        peers.certs, s_why = tls_scen.make_certs(root, tmp)
        if not s_why and "tls_ref" in skipped:
            s_why = "tls ref: " + skipped["tls_ref"]
        if s_why:
            log("run.py: TLS scenarios skipped: %s" % s_why)
    # Each sockmsg backend once up front: one that sockmsg serve refuses (or
    # silently replaces) is reported unavailable in every table.
    unavailable = {}
    for n in BACKEND:
        if n in skipped:
            continue
        srv, why = runner.start(n)
        if srv:
            srv.stop()
        elif why.startswith("unavailable"):
            unavailable[n] = why[len("unavailable: "):]
            skipped[n] = why
            log("run.py: %s (SOCKMSG_BACKEND=%s): %s" % (n, BACKEND[n], why))

    servers = [n for n in LEN32BE if n not in skipped]
    owns = [n for n in OWN if n not in skipped]
    r_servers = [n for n in rate.R_SERVERS if n not in skipped]
    perf, perf_why = rate.perf_events() if "R" in only else (None, None)

    # The plan: every round runs every scenario on every server in turn.
    plan = []
    for rnd in range(rounds):
        for scen in ("P", "T", "B"):
            if scen in only:
                for n in servers + owns:
                    plan.append((rnd, scen, n, "tcp", 1))
        if "M" in only:
            for n in UNIX_SERVERS:
                if n in servers:
                    plan.append((rnd, "M", n, "unix", 1))
            plan.append((rnd, "M", "sockmsg", "tcp", 2))
        if not skipped_c and "C" in only:
            for n in servers:
                plan.append((rnd, "C", n, "tcp", 1))
    if "S" in only and not s_why:
        plan += tls_scen.plan(rounds, only, servers)
    # R: its own rounds (at least rate.R_ROUNDS), then one round under perf
    # for the syscall counts.
    if "R" in only:
        for rnd in range(r_rounds):
            for scen in ("R1", "R2"):
                for n in r_servers:
                    plan.append((rnd, scen, n, "tcp", 1))
        if perf:
            for scen in ("R1", "R2"):
                for n in r_servers:
                    plan.append((r_rounds, scen + ":sys", n, "tcp", 1))
        else:
            log("run.py: syscalls not counted: %s" % perf_why)

    results = {}  # (scen, name, transport, threads) -> [run dicts]
    rev = git_rev(root)  # what was built, before anyone commits more
    t_start, load0, stat0 = time.monotonic(), loadavg(), cpu_stat()
    log("run.py: %d measurements, %d rounds; load average %s" % (len(plan), rounds,
                                                                " ".join(load0)))
    retries = 0
    try:
        for i, (rnd, scen, n, tr, th) in enumerate(plan):
            key = (scen, n, tr, th)
            if scen.startswith("R"):
                r = run_r(runner, rnd, scen, n, perf, i, len(plan))
                retries += 1 if r.get("redone") else 0
                r["round"] = rnd + 1
                results.setdefault(key, []).append(r)
                el = time.monotonic() - t_start
                if not r.get("ok"):
                    msg = "INVALID: " + r.get("why", "?")
                elif r.get("sys"):
                    msg = "%s syscalls/msg (%s msgs/s)" % (
                        fmt(r["sys"]["total"], "usmsg"), fmt(r["msgs_per_s"], "rate"))
                else:
                    msg = "%s us/msg at %s msgs/s (shortfall %s), p50 %s us; server cpu %s, " \
                          "client cpu %s, others %s%s" % (
                              fmt(r.get("us_per_msg"), "usmsg"), fmt(r["msgs_per_s"], "rate"),
                              r.get("shortfall"), fmt(r["p50"], "us"),
                              fmt(r.get("server_cpu"), "pct"), fmt(r["client_cpu"], "pct"),
                              fmt(r.get("other_cpu"), "pct"),
                              " [redone: %s]" % r["redone"] if r.get("redone") else "")
                log("[%3d/%d %3.0fs] round %d %-28s %s" % (i + 1, len(plan), el, rnd + 1,
                                                         scen + " " + n, msg))
                continue
            for attempt in range(1 + RETRY_EACH):
                if scen == "C":
                    r = runner.idle(n)
                else:
                    r = runner.load(n, "T" if scen == "M" else scen, tr, th)
                # Other work on the machine took a share of the cores during
                # the window: measure again (a bounded number of times).
                if r.get("other_cpu", 0) <= NOISY or retries >= RETRY_TOTAL:
                    break
                if attempt == RETRY_EACH:
                    r["noisy"] = True
                    break
                retries += 1
                log("[%3d/%d] round %d %s %s: others took %.0f%% of a core, again" % (
                    i + 1, len(plan), rnd + 1, scen, n, r["other_cpu"]))
                time.sleep(RETRY_PAUSE)
            if r.get("other_cpu", 0) > NOISY:
                r["noisy"] = True
            r["round"] = rnd + 1
            results.setdefault(key, []).append(r)
            el = time.monotonic() - t_start
            what = "%s %s%s%s" % (scen, n, "" if tr == "tcp" else " " + tr,
                                  "" if th == 1 else " %d threads" % th)
            if not r.get("ok"):
                msg = "INVALID: " + r.get("why", "?")
            elif scen == "C":
                msg = "%.0f B/conn (%d conns in %.1f s)" % (r["bytes_per_conn"], r["conns"],
                                                             r["setup_s"])
            else:
                msg = "%s msgs/s, %s MB/s, p50 %s us; server cpu %s, client cpu %s" % (
                    fmt(r["msgs_per_s"], "rate"), fmt(r["mb_per_s"], "mb"), fmt(r["p50"], "us"),
                    fmt(r.get("server_cpu"), "pct"), fmt(r["client_cpu"], "pct"))
                msg += ", others %s" % fmt(r.get("other_cpu"), "pct")
            log("[%3d/%d %3.0fs] round %d %-28s %s" % (i + 1, len(plan), el, rnd + 1, what, msg))
    finally:
        runner.errlog.close()
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - t_start
    load1, stat1 = loadavg(), cpu_stat()
    dstat = [b - c for b, c in zip(stat1, stat0)]
    total = sum(dstat[:8]) or 1
    steal = 100.0 * dstat[7] / total if len(dstat) > 7 else 0.0
    busy = 100.0 * (total - dstat[3] - dstat[4]) / total

    vers = []
    for pkg, nm in (("gcc", "gcc"), ("libuv1-dev", "libuv"), ("libevent-dev", "libevent"),
                    ("libzmq3-dev", "libzmq"), ("libnng-dev", "nng"), ("python3", "python3")):
        v = pkg_version(pkg)
        if v:
            vers.append("%s %s" % (nm, v))
    meta = {
        "date": datetime.date.today().isoformat(), "machine": machine_info(), "versions": vers,
        "git": rev, "command": a.command, "rounds": rounds, "quick": a.quick,
        "secs": QUICK_SECS if a.quick else {k: v["secs"] for k, v in SCEN.items()},
        "warmup": 0.2 if a.quick else SCEN["T"]["warmup"], "elapsed": elapsed,
        "measurements": len(plan), "skipped": skipped, "skipped_c": skipped_c,
        "servers": servers, "owns": owns, "load0": load0, "load1": load1, "busy": busy,
        "steal": steal, "retries": retries, "only": a.only and ",".join(only),
        "unavailable": unavailable, "r_rounds": r_rounds if "R" in only else 0,
        "r_scen": rate.R_SCEN, "perf_why": perf_why, "r_servers": r_servers,
        "s_why": s_why if "S" in only else "not run",
    }
    data = {"meta": meta, "results": [
        {"scen": k[0], "name": k[1], "transport": k[2], "threads": k[3], "runs": v}
        for k, v in results.items()]}
    # Everything measured, so the report can be written again (run.py --render).
    with open(os.path.join(build, "bench-results.json"), "w") as f:
        json.dump(data, f, indent=1)
    return report(data, out, (not a.quick or a.out) and not a.only)


def run_r(runner, rnd, scen, n, perf, i, total):
    """One R run (or, for "R1:sys"/"R2:sys", the syscall count under perf).
    A run that did not measure the server alone (rate.noise) is redone once
    and marked; if the second is no better it is kept, marked noisy."""
    if scen.endswith(":sys"):
        return runner.load(n, scen.split(":")[0], perf=perf)
    r = runner.load(n, scen)
    why = rate.noise(r, NOISY) if r.get("ok") else None
    if why:
        log("[%3d/%d] round %d %s %s: %s, again" % (i + 1, total, rnd + 1, scen, n, why))
        time.sleep(RETRY_PAUSE)
        r = runner.load(n, scen)
        r["redone"] = why
        why2 = rate.noise(r, NOISY) if r.get("ok") else None
        if why2:
            r["noisy"], r["noise"] = True, why2
    return r


def report(data, out, write_latest):
    """Write DATE.md and DATE.png (and latest.*) from the measurements."""
    meta = data["meta"]
    results = {(e["scen"], e["name"], e["transport"], e["threads"]): e["runs"]
               for e in data["results"]}
    m, rounds, quick, elapsed = meta["machine"], meta["rounds"], meta["quick"], meta["elapsed"]
    skipped, skipped_c, servers, owns = (meta["skipped"], meta["skipped_c"], meta["servers"],
                                         meta["owns"])
    load0, load1, busy, steal, date = (meta["load0"], meta["load1"], meta["busy"], meta["steal"],
                                       meta["date"])
    durs = meta["secs"]
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="sockmsg-bench-")
    stem = date + ("-only-" + meta["only"].replace(",", "") if meta.get("only") else "")
    md_path, png_path = os.path.join(out, stem + ".md"), os.path.join(out, stem + ".png")
    unavailable = meta.get("unavailable", {})
    L = []
    w = L.append
    ran = set(k[0] for k in results)

    def section(scen):
        """Where a scenario's section goes: nowhere when it was not run (--only)."""
        return L.append if scen in ran or not meta.get("only") else (lambda line: None)
    w("# sockmsg benchmarks, %s" % date)
    w("")
    w("Every server echoes the same `len32be` messages (docs/design.md, \"The benchmark "
      "protocol\") to the same load generator, `sockmsg bench`, which checks every byte it "
      "gets back. ZeroMQ and nng cannot speak len32be: they are driven by their own clients "
      "in their own protocols (marked *own protocol*), reported in the same units.")
    w("")
    w("## Machine and method")
    w("")
    w("- Machine: %s cores, %s, kernel %s, %s memory." % (m["nproc"], m["model"], m["kernel"],
                                                         m["mem"]))
    w("- Software: sockmsg %s; %s; Release build (-O2)." % (meta["git"],
                                                           ", ".join(meta["versions"])))
    w("- Reproduce: `%s` (from the repository root; it installs what is missing, builds "
      "`build/bench-run` and writes `bench/results/<date>.md`)." % meta["command"])
    w("- Every measurement starts a fresh server pinned to core 0 (`taskset -c 0`) and the "
      "load generator pinned to core 1; the server is stopped by its PID afterwards. "
      "%d rounds, the servers interleaved within each round; the tables give the median of "
      "the valid runs and their spread (min–max). A run whose load generator reported any "
      "error (a reply lost, altered, out of order, or a closed connection) is invalid and "
      "left out of the median." % rounds)
    w("- Windows: P %gs, T/B/M %gs each, after %gs of warmup (the own-protocol clients "
      "have no warmup: one untimed round trip per connection). Server CPU is utime+stime "
      "from /proc/PID/stat sampled inside the window (%d Hz ticks): µs per message = CPU "
      "time / (msgs/s × sampled interval); client CPU is the load generator's "
      "`client_cpu_s` / window." % (durs["P"], durs["T"], meta["warmup"], CLK_TCK))
    w("- Ratios: ×raw epoll and ×libuv divide this server's median by theirs (for latency "
      "and CPU per message lower is better, for rates higher is better).")
    w("- Run time: %.0f s for %d measurements." % (elapsed, meta["measurements"]))
    if skipped or skipped_c:
        w("- Skipped: " + "; ".join(["%s: %s" % (k, v) for k, v in skipped.items()] +
                                    (["scenario C: " + skipped_c] if skipped_c else [])) + ".")
    w("")

    def row_metrics(key, k):
        return med(results.get(key, []), k)

    def ref(scen, name, k, tr="tcp"):
        return row_metrics((scen, name, tr, 1), k)[0]

    def ccpu(key):
        """Client CPU, marked when the load generator was (nearly) saturated."""
        v = row_metrics(key, "client_cpu")[0]
        return fmt(v, "pct") + (" †" if v is not None and v >= CLIENT_BOUND else "")

    dagger = ("† the load generator used ≥ %d%% of its core: that rate is (close to) the "
              "client's limit, and the server could do more." % CLIENT_BOUND)

    # P
    w = section("P")
    w("## P: ping-pong, 1 connection, 64 B")
    w("")
    w("One message in flight: the round-trip latency. Lower is better.")
    w("")
    w("| server | p50 µs | spread | ×raw epoll | ×libuv | p99 µs | round trips/s | "
      "server CPU | client CPU | valid runs |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for n in servers + owns:
        key = ("P", n, "tcp", 1)
        if key not in results:
            continue
        p50, lo, hi = row_metrics(key, "p50")
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label(n), fmt(p50, "us"), spread(lo, hi, "us"),
            ratio(p50, ref("P", "raw_epoll", "p50")),
            ratio(p50, ref("P", "libuv", "p50")), fmt(row_metrics(key, "p99")[0], "us"),
            fmt(row_metrics(key, "msgs_per_s")[0], "rate"),
            fmt(row_metrics(key, "server_cpu")[0], "pct"),
            ccpu(key), runs_note(results[key])))
    unavailable_rows(w, unavailable)
    w("")

    # T
    w = section("T")
    w("## T: pipelined, 50 connections × 16 in flight, 64 B")
    w("")
    w("Messages per second, and what each one costs the server. Higher rate, lower CPU per "
      "message is better.")
    w("")
    w("| server | msgs/s | spread | ×raw epoll | ×libuv | server µs/msg | CPU/msg ×raw epoll | "
      "server CPU | client CPU | p99 µs | valid runs |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for n in servers + owns:
        key = ("T", n, "tcp", 1)
        if key not in results:
            continue
        v, lo, hi = row_metrics(key, "msgs_per_s")
        u = row_metrics(key, "us_per_msg")[0]
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label(n), fmt(v, "rate"), spread(lo, hi, "rate"),
            ratio(v, ref("T", "raw_epoll", "msgs_per_s")),
            ratio(v, ref("T", "libuv", "msgs_per_s")),
            fmt(u, "usmsg"), ratio(u, ref("T", "raw_epoll", "us_per_msg")),
            fmt(row_metrics(key, "server_cpu")[0], "pct"),
            ccpu(key), fmt(row_metrics(key, "p99")[0], "us"),
            runs_note(results[key])))
    unavailable_rows(w, unavailable)
    w("")

    w(dagger)
    w("")

    # B
    w = section("B")
    w("## B: pipelined, 4 connections × 4 in flight, 64 KiB")
    w("")
    w("Payload MB/s echoed (one way, 10^6 bytes). Higher is better.")
    w("")
    w("| server | MB/s | spread | ×raw epoll | ×libuv | server CPU | client CPU | p99 µs | "
      "valid runs |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|---|")
    for n in servers + owns:
        key = ("B", n, "tcp", 1)
        if key not in results:
            continue
        v, lo, hi = row_metrics(key, "mb_per_s")
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label(n), fmt(v, "mb"), spread(lo, hi, "mb"),
            ratio(v, ref("B", "raw_epoll", "mb_per_s")), ratio(v, ref("B", "libuv", "mb_per_s")),
            fmt(row_metrics(key, "server_cpu")[0], "pct"),
            ccpu(key), fmt(row_metrics(key, "p99")[0], "us"),
            runs_note(results[key])))
    unavailable_rows(w, unavailable)
    w("")

    w(dagger)
    w("")

    # C
    w = section("C")
    w("## C: %s idle connections, one message each" % "{:,}".format(IDLE_CONNS))
    w("")
    w("Server RSS growth per connection (`bench/idle_rss`: RSS with every connection open "
      "and idle, after one echoed 16-byte message each, minus RSS before, divided by the "
      "count). Lower is better.")
    w("")
    if skipped_c:
        w("Skipped: %s." % skipped_c)
    else:
        w("| server | bytes/conn | spread | ×raw epoll | ×libuv | set-up s | valid runs |")
        w("|---|--:|--:|--:|--:|--:|---|")
        for n in servers:
            key = ("C", n, "tcp", 1)
            if key not in results:
                continue
            v, lo, hi = row_metrics(key, "bytes_per_conn")
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                n, fmt(v, "bytes"), spread(lo, hi, "bytes"),
                ratio(v, ref("C", "raw_epoll", "bytes_per_conn")),
                ratio(v, ref("C", "libuv", "bytes_per_conn")),
                fmt(row_metrics(key, "setup_s")[0], "s"), runs_note(results[key])))
        unavailable_rows(w, unavailable)
        w("")
        w("(Ratios against a few bytes per connection are large and not meaningful on their "
          "own: raw epoll keeps 16 B per fd in a table allocated up front.)")
    w("")

    # M
    w = section("M")
    w("## M: T again on 2 server threads, and on a Unix socket")
    w("")
    w("The T load (50 × 16, 64 B). `sockmsg, 2 threads` runs `--threads 2` on the same one "
      "core as every server (the other core is the load generator's): it shows what a second "
      "loop costs, not how it scales, which this machine cannot show. Unix-socket rows are "
      "compared with raw epoll and libuv on Unix sockets.")
    w("")
    w("| server | transport | msgs/s | spread | ×raw epoll | ×libuv | server µs/msg | "
      "server CPU | client CPU | valid runs |")
    w("|---|---|--:|--:|--:|--:|--:|--:|--:|---|")
    mrows = [(n, "unix", 1) for n in UNIX_SERVERS] + [("sockmsg", "tcp", 2)]
    for n, tr, th in mrows:
        key = ("M", n, tr, th)
        if key not in results:
            continue
        v, lo, hi = row_metrics(key, "msgs_per_s")
        if tr == "unix":
            rraw = row_metrics(("M", "raw_epoll", "unix", 1), "msgs_per_s")[0]
            ruv = row_metrics(("M", "libuv", "unix", 1), "msgs_per_s")[0]
        else:
            rraw, ruv = ref("T", "raw_epoll", "msgs_per_s"), ref("T", "libuv", "msgs_per_s")
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            n + (", %d threads" % th if th > 1 else ""), tr, fmt(v, "rate"),
            spread(lo, hi, "rate"), ratio(v, rraw), ratio(v, ruv),
            fmt(row_metrics(key, "us_per_msg")[0], "usmsg"),
            fmt(row_metrics(key, "server_cpu")[0], "pct"),
            ccpu(key), runs_note(results[key])))
    w("")

    w(dagger)
    w("")

    # R
    w = L.append
    if meta.get("r_rounds"):
        rate.r_tables(w, results, meta, unavailable)
        w("%s ↻ redone once: the first run's client used more than %d%% of its core, other "
          "processes more than %d%% of a core, or steal was over %.0f%%; ‡ the second was no "
          "better (kept, marked)." % (dagger, rate.R_CLIENT_MAX, NOISY, rate.STEAL_MAX))
        w("")

    def client_bound(scen, name):
        c = ref(scen, name, "client_cpu")
        return c is not None and c >= CLIENT_BOUND

    trows = rate.targets(results, meta, unavailable, ref, client_bound)
    rate.targets_table(w, trows)

    # Targets
    w("## Earlier targets (sockmsg on epoll, issue \"Prove it\")")
    w("")
    targets = []

    def target(what, value, limit, ok_if, shown, capped=()):
        if value is None or limit is None:
            targets.append("- **not measured**: %s" % what)
            return
        ok = value >= limit if ok_if == ">=" else value <= limit
        # A reference whose run saturated the load generator could go faster.
        for scen, name in capped:
            c = ref(scen, name, "client_cpu")
            if c is not None and c >= CLIENT_BOUND:
                shown += "; %s's rate was capped by the load generator at %.0f%% of its " \
                         "core: its own limit is higher" % (name.replace("_", " "), c)
        targets.append("- **%s**: %s (%s)" % ("met" if ok else "not met", what, shown))

    t_sm, t_raw, t_uv = (ref("T", n, "msgs_per_s") for n in ("sockmsg", "raw_epoll", "libuv"))
    target("T msgs/s ≥ 0.95 × raw epoll", t_sm, t_raw and 0.95 * t_raw, ">=",
           "%s vs %s msgs/s: %s×" % (fmt(t_sm, "rate"), fmt(t_raw, "rate"), ratio(t_sm, t_raw)),
           [("T", "raw_epoll")])
    target("T msgs/s ≥ 1.15 × libuv", t_sm, t_uv and 1.15 * t_uv, ">=",
           "%s vs %s msgs/s: %s×" % (fmt(t_sm, "rate"), fmt(t_uv, "rate"), ratio(t_sm, t_uv)),
           [("T", "libuv")])
    u_sm, u_raw = ref("T", "sockmsg", "us_per_msg"), ref("T", "raw_epoll", "us_per_msg")
    target("T server CPU per message ≤ 1.05 × raw epoll", u_sm, u_raw and 1.05 * u_raw, "<=",
           "%s vs %s µs/msg: %s×" % (fmt(u_sm, "usmsg"), fmt(u_raw, "usmsg"), ratio(u_sm, u_raw)))
    b_sm, b_raw = ref("B", "sockmsg", "mb_per_s"), ref("B", "raw_epoll", "mb_per_s")
    target("B MB/s ≥ 0.95 × raw epoll", b_sm, b_raw and 0.95 * b_raw, ">=",
           "%s vs %s MB/s: %s×" % (fmt(b_sm, "mb"), fmt(b_raw, "mb"), ratio(b_sm, b_raw)),
           [("B", "raw_epoll")])
    p_sm, p_raw = ref("P", "sockmsg", "p50"), ref("P", "raw_epoll", "p50")
    target("P p50 ≤ 1.05 × raw epoll", p_sm, p_raw and 1.05 * p_raw, "<=",
           "%s vs %s µs: %s×" % (fmt(p_sm, "us"), fmt(p_raw, "us"), ratio(p_sm, p_raw)))
    c_sm = None if skipped_c else ref("C", "sockmsg", "bytes_per_conn")
    target("C ≤ 160 B per idle connection", c_sm, 160.0, "<=", "%s B" % fmt(c_sm, "bytes"))
    L.extend(targets)
    w("")
    if any(k[0] in tls_scen.SCEN for k in results):
        targets += tls_scen.tables(w, lambda scen, name, k, tr="tcp": ref(scen, name, k, tr),
                                   fmt, ratio)
    elif meta.get("s_why") not in (None, "not run"):
        w("## TLS (issue 12)\n\nNot run: %s.\n" % meta["s_why"])

    # Chart
    rows = []
    for n in servers + owns:
        def norm(scen, k):
            v, r = ref(scen, n, k), ref(scen, "raw_epoll", k)
            return v / r if v and r else None
        p, praw = ref("P", n, "p50"), ref("P", "raw_epoll", "p50")
        rows.append((n + ("*" if n in OWN else ""), norm("T", "msgs_per_s"), norm("B", "mb_per_s"),
                     praw / p if p and praw else None))
    cerr = chart(png_path, rows, tmp)
    w("## Chart")
    w("")
    if cerr:
        w("No chart: %s." % cerr)
    else:
        w("![T msgs/s, B MB/s and P 1/p50 per server, normalised to raw epoll](%s)"
          % os.path.basename(png_path))
    w("")

    # Noise notes
    client_bound = []
    for scen in ("T", "B"):
        for n in servers:
            c = ref(scen, n, "client_cpu")
            if c is not None and c >= 90:
                client_bound.append("%s %s (%.0f%%)" % (scen, n, c))
    w("## Noise notes")
    w("")
    w("- Two cores shared by client and server: the server has core 0 and the load generator "
      "core 1, but loopback delivery (the receiver's TCP work, in softirq) runs on the "
      "sending core and is charged to whatever runs there, so each side's CPU includes part "
      "of the other's receive path. Nothing else was pinned away from these cores.")
    w("- Loopback only: no NIC, no interrupt moderation, no real RTT; latency is almost "
      "all system-call and scheduler cost, and bytes are copied by the CPU on both sides.")
    w("- The load generator's own CPU: when it is near 100%% of its core the rate is the "
      "client's limit, not the server's, and fast servers look closer to each other than "
      "they are. %s" % ("Client at ≥ 90%% of its core: %s." % ", ".join(client_bound)
                        if client_bound else "It stayed below 90% of its core in T and B."))
    w("- Load average: %s at the start, %s at the end (1, 5, 15 min); the CPUs were %.0f%% "
      "busy over the run (both cores, all processes; steal %.1f%%). Other work on the "
      "machine during the run shows up as spread between rounds." % (
          " ".join(load0), " ".join(load1), busy, steal))
    others = sorted((r["other_cpu"], "round %s %s %s%s" % (r.get("round", "?"), k[0], k[1],
                                                             "" if k[2] == "tcp" else " " + k[2]))
                    for k, rs in results.items() for r in rs if "other_cpu" in r)
    if others:
        noisy = sum(1 for o in others if o[0] > NOISY)
        w("- Other processes (all but the server and the load generator, from /proc/stat over "
          "each window): median %.0f%% of a core, at most %.0f%% (%s). A measurement with more "
          "than %d%% of a core taken by others is taken again (at most %d times, %d in all): "
          "%d retries were needed; measurements kept though still noisy: %d (‡ in the tables)." % (
              statistics.median(o[0] for o in others), others[-1][0], others[-1][1], NOISY,
              RETRY_EACH, RETRY_TOTAL, meta.get("retries", 0), noisy, ))
    w("- Server CPU comes from 10 ms ticks over a ~%gs window: about ±0.5%% of a core." % (
        durs["T"]))
    w("- asyncio and the thread-per-connection server are here for scale; the own-protocol "
      "rows (ZeroMQ, nng) do different work per message (their framing, routing, "
      "request ids) and use their own clients, so compare their rows with care.")
    w("")
    md = "\n".join(L)
    with open(md_path, "w") as f:
        f.write(md)
    if write_latest:
        with open(os.path.join(out, "latest.md"), "w") as f:
            f.write(md.replace("](%s)" % os.path.basename(png_path), "](latest.png)"))
        if os.path.exists(png_path):
            shutil.copyfile(png_path, os.path.join(out, "latest.png"))
    shutil.rmtree(tmp, ignore_errors=True)
    log("run.py: wrote %s%s (%.0f s)" % (md_path, "" if cerr else " and " + png_path, elapsed))
    log("\n".join(targets))
    log("\n".join("- **%s**: %s (%s)" % (st, what, shown) for what, shown, st in trows))

    sm_errors = [r for (scen, n, tr, th), rs in results.items() if n == "sockmsg"
                 for r in rs if not r.get("ok")]
    if sm_errors:
        log("run.py: %d sockmsg runs were invalid" % len(sm_errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
