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


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        client(sys.argv[2], sys.argv[3], sys.argv[4])
