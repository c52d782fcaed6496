#!/usr/bin/env python3
"""asyncio_echo: a len32be echo server on Python's asyncio streams (stdlib
only, the default event loop: no uvloop).

    asyncio_echo.py [tcp://HOST:PORT | unix:/path]

Prints "listening on ENDPOINT" first (PORT 0 picks one and prints it). One
coroutine per connection: StreamReader.readexactly for the header and the
payload, one StreamWriter.write per message (header and payload joined), and
drain() only when the transport holds unsent bytes, which is when it can
matter (drain() on an empty buffer only costs a scheduling round). The reader
limit is raised to 256 KiB. asyncio sets TCP_NODELAY on its TCP sockets since
Python 3.6; it is set again here so the peer says so. SIGTERM and SIGINT exit
0."""

import asyncio
import os
import signal
import socket
import sys

MAX_FRAME = 16 * 1024 * 1024
LIMIT = 256 * 1024


async def echo(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = writer.transport
    readexactly = reader.readexactly
    write = writer.write
    try:
        while True:
            head = await readexactly(4)
            n = int.from_bytes(head, "big")
            if n > MAX_FRAME:
                break
            write(head + await readexactly(n) if n else head)
            if transport.get_write_buffer_size():
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(where):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    path = None
    if where.startswith("unix:"):
        path = where[5:]
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        server = await asyncio.start_unix_server(echo, path, limit=LIMIT, backlog=4096)
        print(f"listening on unix:{path}", flush=True)
    else:
        hostport = where[6:] if where.startswith("tcp://") else where
        host, _, port = hostport.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        server = await asyncio.start_server(echo, host, int(port or 0), limit=LIMIT,
                                            backlog=4096, reuse_address=True)
        addr = server.sockets[0].getsockname()
        shown = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        print(f"listening on tcp://{shown}:{addr[1]}", flush=True)
    async with server:
        await stop
    if path:
        os.unlink(path)


if __name__ == "__main__":
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:0"))
    sys.exit(0)
