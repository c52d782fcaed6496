#!/usr/bin/env python3
"""A TLS peer for the tests, on Python's ssl module, speaking len32be.

  tls_peer.py server CERT KEY [CA]   print the port, serve one connection:
      echo each message, except b"trunc" (send half a message, then close
      without close_notify), b"eof" (close at a boundary without
      close_notify) and b"bye" (send close_notify). With CA: require a
      client certificate it signed.
  tls_peer.py client PORT CA N       send N messages (0 bytes to 100 kB,
      the small ones one byte per record), check the echoes, send
      close_notify, print "ok".
  tls_peer.py bytes PORT CA          read a byte stream from stdin (frames
      of any framing), send its first 1000 bytes one byte per TLS record
      and the rest in full records, the ciphertext in 7-byte TCP writes (so records split across the server's reads),
      check that the echo is the same bytes, send close_notify, print "ok".
"""
import socket
import ssl
import struct
import sys


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            return None
        out += b
    return out


def cut(s):
    # Close the TCP connection under TLS: no close_notify.
    socket.socket.shutdown(s, socket.SHUT_RDWR)
    s.close()


def server(cert, key, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if ca:
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    print(ls.getsockname()[1], flush=True)
    raw, _ = ls.accept()
    ls.close()
    raw.settimeout(20)
    s = ctx.wrap_socket(raw, server_side=True)
    while True:
        hdr = recv_exact(s, 4)
        if hdr is None:
            return
        body = recv_exact(s, struct.unpack(">I", hdr)[0])
        if body == b"trunc":
            s.sendall(struct.pack(">I", 10) + b"abc")
            return cut(s)
        if body == b"eof":
            return cut(s)
        if body == b"bye":
            s.unwrap()
            return
        s.sendall(hdr + body)


def client(port, ca, n):
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=20)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    for i in range(int(n)):
        size = [0, 1, 5, 300, 16385, 100000][i % 6]
        msg = struct.pack(">I", size) + bytes((i + k) % 251 for k in range(size))
        if size <= 5:
            for b in msg:  # one record per byte
                s.sendall(bytes([b]))
        else:
            s.sendall(msg)
        back = recv_exact(s, len(msg))
        if back != msg:
            print("mismatch at message %d" % i, flush=True)
            sys.exit(1)
    s.unwrap()
    print("ok", flush=True)


def bytes_client(port, ca):
    data = sys.stdin.buffer.read()
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=20)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = ctx.wrap_bio(inc, out, server_hostname="localhost")

    def flush(step):
        c = out.read()
        for i in range(0, len(c), step or max(len(c), 1)):
            raw.sendall(c[i : i + (step or len(c))])

    def fill():
        b = raw.recv(65536)
        if not b:
            print("server closed early", flush=True)
            sys.exit(1)
        inc.write(b)

    while True:
        try:
            o.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush(0)
            fill()
    flush(0)
    for b in data[:1000]:  # one record per byte
        o.write(bytes([b]))
    if data[1000:]:
        o.write(data[1000:])  # full records, a message across them
    flush(7)
    back = b""
    while len(back) < len(data):
        try:
            back += o.read(65536)
        except ssl.SSLWantReadError:
            fill()
    if back != data:
        print("echo differs: %r != %r" % (back[:80], data[:80]), flush=True)
        sys.exit(1)
    try:
        o.unwrap()
    except ssl.SSLWantReadError:
        pass  # our close_notify is out; the server's may follow
    flush(0)
    raw.close()
    print("ok", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    elif sys.argv[1] == "bytes":
        bytes_client(sys.argv[2], sys.argv[3])
    else:
        client(sys.argv[2], sys.argv[3], sys.argv[4])
