#!/usr/bin/env python3
"""Fault injection against `sockmsg serve --echo` (len32be), both models.

Each case starts a fresh server process, attacks it, then checks that the
server is alive, that a fresh client gets exact echoes, that its fd count is
back to its baseline (/proc/PID/fd) and that its RSS and virtual size grew
by at most a stated bound (/proc/PID/status: VmRSS, VmSize; the peaks are
VmHWM and VmPeak, the process's own high-water marks). Every wait is bounded;
nothing asserts how fast anything went. The one measurement of time is the
server's CPU use while it is out of file descriptors (utime + stime from
/proc/PID/stat over a 3 s window): a bound of half a core, where a busy
loop would show a whole one.

Usage: faults.py --sockmsg PATH [--sanitized] [--only CASE]
--sanitized scales the volumes down (the slow reader's 200 MB to 32 MB) and
skips the memory bounds (sanitizer allocators keep freed memory in
quarantine and map shadow memory: RSS and VmSize then say nothing about the
server). Prints a table; exits 1 if any case failed.
"""
import argparse
import errno
import os
import random
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

MiB = 1 << 20
KiB = 1 << 10
# Growth from a case's start to its end, once its connections are gone.
RSS_END_BOUND = 32 * MiB
VSZ_END_BOUND = 192 * MiB  # glibc keeps a second arena's 64 MiB reservation and cached stacks
# Peak virtual size during a case: far below any allocation the size of an
# attacker's length prefix (2 GiB and more).
VSZ_PEAK_BOUND = 512 * MiB
CPU_BOUND = 0.5  # of one core, while out of file descriptors
WAIT = 15.0  # seconds: the bound on any single wait


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


# ---- the server process -----------------------------------------------------------


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmSize", "VmHWM", "VmPeak"):
                out[k] = int(v.split()[0]) * KiB
    return out


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command: state is field 3, utime 14, stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, sockmsg, model, args=(), nofile=None):
        self.log = tempfile.TemporaryFile()
        cmd = [sockmsg, "serve", "--echo", "--model", model, "--listen", "tcp://127.0.0.1:0"]
        cmd += list(args)

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log,
                                  preexec_fn=limit)
        line = self._readline(WAIT)
        check(line.startswith("listening on tcp://"), f"server said {line!r}")
        host, port = line.split("tcp://")[1].rsplit(":", 1)
        self.addr = (host, int(port))
        self.pid = self.p.pid
        # The baseline: once it has served one client (its loops, arenas and
        # first thread exist).
        fresh_echoes(self.addr)
        # That client's socket closes on the server a moment later.
        self.fds0 = nfds(self.pid)
        for _ in range(200):
            time.sleep(0.01)
            n = nfds(self.pid)
            if n == self.fds0:
                break
            self.fds0 = n
        self.st0 = status(self.pid)

    def _readline(self, timeout):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        check(r, "the server printed nothing")
        return self.p.stdout.readline().decode().strip()

    def alive(self):
        return self.p.poll() is None

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stdout.close()
        self.log.close()


def wait_for(cond, what, timeout=WAIT, soft=False):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    if soft:
        return False
    raise Failed(f"timed out after {timeout:.0f} s waiting for {what}")


# ---- clients -----------------------------------------------------------------------


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def dial(addr, timeout=WAIT):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(min(n - len(buf), 1 << 20))
        check(b, f"EOF after {len(buf)} of {n} bytes")
        buf += b
    return bytes(buf)


def recv_msg(s):
    (n,) = struct.unpack(">I", recv_exact(s, 4))
    return recv_exact(s, n)


def expect_end(s, what):
    """The server closes s (EOF or reset), sending nothing first."""
    s.settimeout(WAIT)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return
            raise Failed(f"{what}: got {len(b)} bytes instead of the end")
    except ConnectionResetError:
        return
    except socket.timeout:
        raise Failed(f"{what}: the server did not close it within {WAIT:.0f} s")


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def fresh_echoes(addr):
    """A new client: messages of several sizes come back exactly."""
    s = dial(addr)
    try:
        for n in (0, 1, 100, 4096, 70000):
            m = bytes((i * 7 + n) & 0xFF for i in range(n))
            s.sendall(frame(m))
            check(recv_msg(s) == m, f"echo of {n} bytes differs")
    finally:
        s.close()


# ---- cases -------------------------------------------------------------------------
# Each takes (server, opts) and may return a note for the table.


def case_oversize(srv, o):
    bystander = dial(srv.addr)
    bystander.sendall(frame(b"before"))
    check(recv_msg(bystander) == b"before", "bystander before")
    for prefix in (0xFFFFFFF0, 0xFFFFFFFF, 0x80000000):
        s = dial(srv.addr)
        s.sendall(struct.pack(">I", prefix) + b"x" * 1000)
        expect_end(s, f"prefix {prefix:#x}")
        s.close()
        bystander.sendall(frame(b"during"))
        check(recv_msg(bystander) == b"during", "bystander during")
    bystander.close()


def case_garbage(srv, o):
    rnd = random.Random(15)
    n = o.conns
    socks = []
    for i in range(n):
        s = dial(srv.addr)
        kind = i % 5
        if kind == 0:  # random bytes
            data = rnd.randbytes(rnd.randint(1, 4000))
        elif kind == 1:  # a truncated frame: the header promises more
            data = struct.pack(">I", 5000) + rnd.randbytes(rnd.randint(0, 4999))
        elif kind == 2:  # half a header
            data = b"\x00\x00"
        elif kind == 3:  # valid frames, then a hostile one over max
            data = frame(b"ok") * 3 + struct.pack(">I", 0x7FFFFFFF)
        else:  # zero-length messages and a header split off its payload
            data = frame(b"") * 10 + struct.pack(">I", 3) + b"a"
        try:
            s.sendall(data)
        except OSError:
            pass  # already closed by the server (a hostile header): fine
        socks.append(s)
    for i, s in enumerate(socks):
        if i % 2:
            rst_close(s)
        else:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            s.close()


def case_resets(srv, o):
    # Mid-message: a header and part of its payload, then RST.
    for _ in range(o.conns // 3):
        s = dial(srv.addr)
        s.sendall(frame(b"whole") + struct.pack(">I", 1000) + b"part")
        rst_close(s)
    # Replies queued and never read: pipeline ~2 MB each, then RST.
    msg = frame(b"r" * 4000)
    for _ in range(20):
        s = dial(srv.addr)
        s.setblocking(False)
        sent = 0
        end = time.monotonic() + 2
        while sent < 2 * MiB and time.monotonic() < end:
            try:
                sent += s.send(msg)
            except BlockingIOError:
                select.select([], [s], [], 0.05)
        rst_close(s)


def case_half_close(srv, o):
    s = dial(srv.addr)
    msgs = [b"%d:" % i + b"h" * (i % 50) for i in range(1000)]
    s.sendall(b"".join(frame(m) for m in msgs))
    s.shutdown(socket.SHUT_WR)
    for i, m in enumerate(msgs):
        check(recv_msg(s) == m, f"echo {i} differs")
    check(s.recv(1) == b"", "no EOF after the last echo")
    s.close()


def case_slowloris(srv, o):
    n = o.conns
    tricklers = []
    for i in range(n):
        s = dial(srv.addr)
        s.sendall(struct.pack(">I", 1000))  # a message that never completes
        tricklers.append(s)
    healthy = dial(srv.addr)
    trips = 0
    end = time.monotonic() + o.slowloris_s
    k = 0
    while time.monotonic() < end or trips < 100:
        # One byte to each of a few tricklers per round trip: they keep
        # trickling for the whole case.
        for _ in range(max(1, n // 20)):
            tricklers[k % n].send(b"t")
            k += 1
        m = b"round trip %d" % trips
        healthy.sendall(frame(m))
        healthy.settimeout(WAIT)
        check(recv_msg(healthy) == m, f"round trip {trips}")
        trips += 1
        time.sleep(0.005)
    # The tricklers were not refused: each is still open and unanswered.
    for s in tricklers:
        r, _, _ = select.select([s], [], [], 0)
        check(not r, "a trickler was closed or answered")
        s.close()
    healthy.close()
    return f"{trips} round trips among {n} trickling"


def case_slow_reader(srv, o):
    total = o.slow_bytes
    size = 64 * KiB - 4
    count = total // (size + 4)
    s = dial(srv.addr, timeout=60)
    box = {"err": None}

    def payload(i):
        return struct.pack(">Q", i) * (size // 8) + b"\0" * (size % 8)

    def writer():
        try:
            for i in range(count):
                s.sendall(frame(payload(i)))
        except OSError as e:
            box["err"] = e

    t = threading.Thread(target=writer)
    t.start()
    # Read nothing for a while: the server stops reading us (its queue
    # passed high_water) and TCP stops the writer.
    peak = 0
    end = time.monotonic() + o.pause_s
    while time.monotonic() < end:
        peak = max(peak, status(srv.pid)["VmRSS"])
        time.sleep(0.05)
    for i in range(count):
        m = recv_msg(s)
        if m != payload(i):
            raise Failed(f"message {i} differs")
    t.join(WAIT)
    check(not t.is_alive(), "the writer never finished")
    check(box["err"] is None, f"writer: {box['err']}")
    s.close()
    grew = peak - srv.st0["VmRSS"]
    if not o.sanitized:
        check(grew <= o.queue_cap + 16 * MiB,
              f"RSS grew {grew / MiB:.1f} MiB while the client read nothing")
    return f"{count * (size + 4) / MiB:.0f} MiB; RSS +{grew / MiB:.1f} MiB while paused"


def case_fd_exhaustion(srv, o):
    """Run with RLIMIT_NOFILE 128 and no connection cap: accept hits EMFILE."""
    socks = []
    for _ in range(300):
        try:
            socks.append(socket.create_connection(srv.addr, timeout=1))
        except OSError:
            break
    # The server is out of descriptors with connections waiting: measure.
    c0, t0 = cpu_seconds(srv.pid), time.monotonic()
    time.sleep(3)
    cpu = (cpu_seconds(srv.pid) - c0) / (time.monotonic() - t0)
    o.cpu = cpu
    check(cpu <= CPU_BOUND, f"server used {cpu:.0%} of a core while out of fds")
    for s in socks:
        s.close()
    return f"{len(socks)} connections at a 128-fd limit"


def case_fd_default_cap(srv, o):
    """RLIMIT_NOFILE 128 with the default max_conns: refusals, not EMFILE."""
    socks = [socket.create_connection(srv.addr, timeout=WAIT) for _ in range(200)]
    c0, t0 = cpu_seconds(srv.pid), time.monotonic()
    time.sleep(1)
    o.cpu = (cpu_seconds(srv.pid) - c0) / (time.monotonic() - t0)
    check(o.cpu <= CPU_BOUND, f"server used {o.cpu:.0%} of a core at its connection cap")
    for s in socks:
        s.close()
    check("accept:" not in srv.stderr(), "accept failed (EMFILE) despite the derived cap")
    check("connection refused" in srv.stderr(), "no refusal logged")
    return "200 connections: refused past the derived cap, no EMFILE"


def case_tiny_and_bytewise(srv, o):
    s = dial(srv.addr)
    msgs = [bytes([i & 0xFF]) * (i % 17) for i in range(10000)]
    s.sendall(b"".join(frame(m) for m in msgs))  # one write
    for i, m in enumerate(msgs):
        check(recv_msg(s) == m, f"tiny message {i} differs")
    one = frame(bytes(range(256)) * 8)
    for i in range(len(one)):  # one message in 1-byte writes
        s.send(one[i:i + 1])
    check(recv_msg(s) == one[4:], "the byte-wise message differs")
    s.close()


def case_sigterm(srv, o):
    """Clients pipeline; SIGTERM arrives halfway. Everything sent before the
    signal is answered; after it the server drains: it answers what it
    reads until a connection has been quiet for drain_quiet_ms (a client
    thread of ours may stall that long), then half-closes. So each client
    gets a prefix of its messages, in order, at least the half sent before
    the signal, then a clean EOF."""
    n, per = 20, o.sigterm_msgs
    socks = [dial(srv.addr) for _ in range(n)]
    half = threading.Barrier(n + 1)
    results = [None] * n

    def client(k):
        s = socks[k]
        got = []

        box = {"eof": False}

        def reader():
            try:
                while True:
                    got.append(recv_msg(s))
            except Failed as e:
                box["eof"] = str(e).startswith("EOF after 0 ")
            except OSError:
                pass

        r = threading.Thread(target=reader)
        r.start()
        try:
            for i in range(per):
                if i == per // 2:
                    half.wait(WAIT)
                s.sendall(frame(b"%d/%d" % (k, i)))
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        r.join(WAIT * 2)
        results[k] = (got, box["eof"])

    ts = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    half.wait(WAIT)
    srv.p.send_signal(signal.SIGTERM)
    for t in ts:
        t.join(WAIT * 3)
    try:
        rc = srv.p.wait(WAIT)
    except subprocess.TimeoutExpired:
        raise Failed("the server did not exit after SIGTERM")
    check(rc == 0, f"exit status {rc}")
    answered = 0
    for k, res in enumerate(results):
        check(res is not None, f"client {k} never finished")
        got, eof = res
        want = [b"%d/%d" % (k, i) for i in range(per)]
        check(got == want[:len(got)], f"client {k}: answers out of order or wrong")
        check(len(got) >= per // 2, f"client {k}: {len(got)} answers, {per // 2} sent before")
        check(eof, f"client {k}: no clean EOF after its answers")
        answered += len(got)
    for s in socks:
        s.close()
    return f"{n} x {per} sent, {answered} answered (all before the signal); exit 0"


CASES = [
    ("oversize prefix", case_oversize, {}),
    ("garbage/truncated, FIN+RST", case_garbage, {}),
    ("resets mid-message/unread", case_resets, {}),
    ("half-close after 1000", case_half_close, {}),
    ("slowloris", case_slowloris, {}),
    ("slow reader", case_slow_reader, {"args": ["--max-queued", "4M"]}),
    ("fd exhaustion (EMFILE)", case_fd_exhaustion, {"args": ["--max-conns", "0"], "nofile": 128}),
    ("fd limit, default cap", case_fd_default_cap, {"nofile": 128}),
    ("10k in one write, 1-byte", case_tiny_and_bytewise, {}),
    ("SIGTERM under load", case_sigterm, {}),
]


def mib(v):
    return f"{v / MiB:.1f}"


def run_case(name, fn, extra, model, o):
    row = {"case": name, "model": model, "result": "FAIL", "note": "", "cpu": ""}
    o.cpu = None
    srv = None
    try:
        srv = Server(o.sockmsg, model, extra.get("args", ()), extra.get("nofile"))
        row["fds0"] = srv.fds0
        row["rss0"], row["vsz0"] = srv.st0["VmRSS"], srv.st0["VmSize"]
        note = fn(srv, o)
        row["note"] = note or ""
        if fn is case_sigterm:
            row["rssP"] = row["rssE"] = row["vszP"] = row["vszE"] = None
            row["fds1"] = "exited"
        else:
            check(srv.alive(), "the server died")
            wait_for(lambda: nfds(srv.pid) <= srv.fds0,
                     f"fds back to {srv.fds0} (now {nfds(srv.pid)})")
            row["fds1"] = nfds(srv.pid)
            fresh_echoes(srv.addr)
            st = status(srv.pid)
            row["rssP"], row["rssE"] = st["VmHWM"], st["VmRSS"]
            row["vszP"], row["vszE"] = st["VmPeak"], st["VmSize"]
            if not o.sanitized:
                check(st["VmRSS"] - srv.st0["VmRSS"] <= RSS_END_BOUND,
                      f"RSS grew {mib(st['VmRSS'] - srv.st0['VmRSS'])} MiB")
                check(st["VmSize"] - srv.st0["VmSize"] <= VSZ_END_BOUND,
                      f"VmSize grew {mib(st['VmSize'] - srv.st0['VmSize'])} MiB")
                check(st["VmPeak"] - srv.st0["VmSize"] <= VSZ_PEAK_BOUND,
                      f"VmPeak {mib(st['VmPeak'] - srv.st0['VmSize'])} MiB over the start")
        row["result"] = "pass"
    except (Failed, OSError) as e:
        row["note"] = f"{type(e).__name__}: {e}"
        if srv:
            tail = srv.stderr().strip().splitlines()[-5:]
            row["note"] += " | server: " + " / ".join(tail)
    finally:
        if o.cpu is not None:
            row["cpu"] = f"{o.cpu:.1%}"
        if srv:
            srv.stop()
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sockmsg", required=True)
    ap.add_argument("--sanitized", action="store_true")
    ap.add_argument("--only")
    o = ap.parse_args()
    o.conns = 300
    o.slowloris_s = 3.0
    o.slow_bytes = 32 * MiB if o.sanitized else 200 * MiB
    o.pause_s = 3.0 if o.sanitized else 5.0
    o.queue_cap = 4 * MiB
    o.sigterm_msgs = 1000 if o.sanitized else 3000
    # This process holds hundreds of sockets at once.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))
    rows = []
    t0 = time.monotonic()
    for name, fn, extra in CASES:
        if o.only and o.only not in name:
            continue
        for model in ("loop", "thread"):
            rows.append(run_case(name, fn, extra, model, o))
            r = rows[-1]
            print(f"# {r['case']} [{model}]: {r['result']} {r['note']}", flush=True)

    def cell(r, k):
        v = r.get(k)
        return "-" if v is None else mib(v)

    print()
    print(f"{'case':28} {'model':6} {'result':6} {'RSS MiB start/peak/end':24} "
          f"{'VSZ MiB start/peak/end':26} {'fds':11} {'CPU':6}")
    for r in rows:
        rss = f"{cell(r, 'rss0')}/{cell(r, 'rssP')}/{cell(r, 'rssE')}"
        vsz = f"{cell(r, 'vsz0')}/{cell(r, 'vszP')}/{cell(r, 'vszE')}"
        fds = f"{r.get('fds0', '-')}->{r.get('fds1', '-')}"
        print(f"{r['case']:28} {r['model']:6} {r['result']:6} {rss:24} {vsz:26} {fds:11} "
              f"{r['cpu'] or '-':6}")
    print()
    bounds = ("skipped (sanitizer build)" if o.sanitized else
              f"RSS end-start <= {RSS_END_BOUND // MiB} MiB, VSZ end-start <= "
              f"{VSZ_END_BOUND // MiB} MiB, VmPeak-start <= {VSZ_PEAK_BOUND // MiB} MiB")
    print(f"bounds: {bounds}; CPU while out of fds <= {CPU_BOUND:.0%} of a core")
    print(f"{len(rows)} runs in {time.monotonic() - t0:.1f} s")
    failed = [r for r in rows if r["result"] != "pass"]
    for r in failed:
        print(f"FAILED: {r['case']} [{r['model']}]: {r['note']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
