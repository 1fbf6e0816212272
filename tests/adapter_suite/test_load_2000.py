"""Load: an asyncio server in a process of its own holds 2,000 concurrent WSS connections, each
registering and then exchanging 50 numbered MESSAGEs; nothing lost or reordered, every close
clean on both sides, and the server's peak RSS printed and bounded.

The server runs in a subprocess so that its peak RSS is its own (VmHWM of that process) and it
has a core of its own; the clients are our asyncio adapter in one event loop here.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time

import pytest
from adapter_helpers import certs, client_domain

from sansio_wss import Cause, Config, SipMessageReceived
from sansio_wss.adapters import asyncio as wss

CONNECTIONS = 2000
MESSAGES = 50
DURATION = 90.0
"""Bound on the whole run (about 25 s alone on 2 cores; other jobs may share them)."""
SERVER_RSS = 400 * 2**20
"""Bound on the server process's peak RSS."""
CONFIG = Config(handshake_timeout=60.0, tls_handshake_timeout=60.0, ping_interval=None)

SERVER = """
import asyncio, collections, json, sys
from sansio_wss import Config, TLSDomain
from sansio_wss.adapters import asyncio as wss

ended = collections.Counter()
received = 0


async def handler(conn):
    global received
    async for incoming in conn:
        message = incoming.message
        received += 1
        if message.startswith(b"REGISTER "):
            head = message.split(b"\\r\\n")
            fields = [line for line in head if line.startswith((b"Call-ID:", b"CSeq:"))]
            await conn.send(b"\\r\\n".join([b"SIP/2.0 200 OK", *fields, b"Content-Length: 0", b"", b""]))
        else:
            await conn.send(message)
    await conn.wait_closed()
    ended[f"{conn.closed.cause.value} {conn.closed.code} {conn.closed.clean}"] += 1


async def main():
    config = Config(handshake_timeout=60.0, tls_handshake_timeout=60.0, ping_interval=None)
    tls = [TLSDomain(name="load", side="server", certificate=sys.argv[1])]
    server = await wss.serve(handler, [("127.0.0.1", 0)], tls=tls, config=config, backlog=4096)
    print(server.addresses[0][1], flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stop.set)
    await stop.wait()
    loop.remove_reader(sys.stdin.fileno())
    await server.close()
    print(json.dumps({"ended": ended, "received": received}), flush=True)


asyncio.run(main())
"""


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard < needed:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed} descriptors needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _register(conn: int) -> bytes:
    return (
        f"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS c{conn}.invalid;branch=z9hG4bK{conn}\r\n"
        f"From: <sip:c{conn}@example.com>;tag={conn}\r\nTo: <sip:c{conn}@example.com>\r\n"
        f"Call-ID: reg-{conn}\r\nCSeq: 1 REGISTER\r\nContact: <sip:c{conn}@c{conn}.invalid;transport=ws>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _ok(conn: int) -> bytes:
    return f"SIP/2.0 200 OK\r\nCall-ID: reg-{conn}\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n".encode()


def _message(conn: int, seq: int) -> bytes:
    body = f"message {seq} of connection {conn}"
    return (
        f"MESSAGE sip:c{conn}@example.com SIP/2.0\r\nCall-ID: msg-{conn}\r\nCSeq: {seq} MESSAGE\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def _kib(pid: int, name: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(name + ":"))


async def _clients(port: int, server_pid: int) -> tuple[list[int], int]:
    """Every client's count of messages echoed in order; the server's RSS (KiB) with all open."""
    uri = f"wss://127.0.0.1:{port}/ws"
    tls = client_domain()
    opened = 0
    all_open = asyncio.Event()
    rss_all_open: list[int] = []

    async def client(index: int) -> int:
        nonlocal opened
        conn = await wss.connect(uri, tls=tls, config=CONFIG)
        try:
            await conn.send(_register(index))
            assert await conn.recv() == SipMessageReceived(_ok(index), False), index
            opened += 1
            if opened == CONNECTIONS:
                rss_all_open.append(_kib(server_pid, "VmRSS"))
                all_open.set()
            await all_open.wait()  # every connection is open and registered before a MESSAGE moves
            for seq in range(1, MESSAGES + 1):
                await conn.send(_message(index, seq))
            echoed = 0
            for seq in range(1, MESSAGES + 1):
                assert await conn.recv() == SipMessageReceived(_message(index, seq), False), (index, seq)
                echoed += 1
        finally:
            await conn.close()
        closed = conn.closed
        assert closed is not None
        assert (closed.cause, closed.code, closed.clean) == (Cause.LOCAL_CLOSED, 1000, True), closed
        return echoed

    echoed = await asyncio.gather(*(client(i) for i in range(CONNECTIONS)))
    return echoed, rss_all_open[0]


def test_two_thousand_connections_fifty_messages_each() -> None:
    _raise_fd_limit(2 * CONNECTIONS + 200)
    started = time.monotonic()
    command = [sys.executable, "-c", SERVER, certs().server]
    folder = os.path.dirname(certs().server)  # not the checkout, whose sansio_wss has no adapters
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=folder
    ) as server:
        assert server.stdin is not None and server.stdout is not None
        try:
            port = int(server.stdout.readline())
            idle = _kib(server.pid, "VmRSS") * 1024
            echoed, rss_all_open = asyncio.run(asyncio.wait_for(_clients(port, server.pid), DURATION))
            peak = _kib(server.pid, "VmHWM") * 1024
            server.stdin.write("stop\n")
            server.stdin.flush()
            report = json.loads(server.stdout.readline())
            assert server.wait(10) == 0
        except BaseException:
            server.kill()
            raise
    elapsed = time.monotonic() - started
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    print(
        f"\n{CONNECTIONS} connections x {MESSAGES} messages: {elapsed:.1f} s; server peak RSS "
        f"{peak / 2**20:.0f} MB ({rss_all_open / 1024:.0f} MB with all open, "
        f"{(peak - idle) / CONNECTIONS / 1024:.0f} kB per connection over {idle / 2**20:.0f} MB idle); "
        f"test process peak RSS {client_peak / 1024:.0f} MB"
    )
    assert echoed == [MESSAGES] * CONNECTIONS
    assert report == {
        "ended": {"peer_closed 1000 True": CONNECTIONS},
        "received": CONNECTIONS * (MESSAGES + 1),
    }
    assert peak < SERVER_RSS
    assert elapsed < DURATION
