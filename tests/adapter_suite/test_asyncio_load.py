"""Load: the asyncio adapter holds 1,000 concurrent WSS connections on 127.0.0.1, 20 messages each way."""

from __future__ import annotations

import asyncio
import resource
import time

from adapter_helpers import client_domain, server_domain

from sansio_wss import Config, SipMessageReceived
from sansio_wss.adapters import asyncio as wss

CONNECTIONS = 1000
MESSAGES = 20


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def message(conn: int, seq: int) -> bytes:
    head = f"MESSAGE sip:c{conn}@example.com SIP/2.0\r\nCSeq: {seq} MESSAGE\r\n"
    return (head + "Content-Length: 0\r\n\r\n").encode()


def test_thousand_connections_twenty_messages_each() -> None:
    _raise_fd_limit(3 * CONNECTIONS + 100)

    async def handler(conn: wss.Connection) -> None:
        async for received in conn:  # answer each message with the same bytes, in order
            await conn.send(received.message)

    config = Config(handshake_timeout=60.0, tls_handshake_timeout=60.0)

    async def main() -> None:
        started = time.monotonic()
        connected = 0
        all_open = asyncio.Event()

        async def client(port: int, index: int) -> tuple[int, int]:
            nonlocal connected
            conn = await wss.connect(f"wss://localhost:{port}/", tls=client_domain(), config=config)
            connected += 1
            if connected == CONNECTIONS:
                all_open.set()
            await all_open.wait()  # every connection is open at once before any message moves
            for seq in range(MESSAGES):
                await conn.send(message(index, seq))
            got = 0
            for seq in range(MESSAGES):
                answer = await conn.recv()
                assert answer == SipMessageReceived(message(index, seq), False), (index, seq)  # in order
                got += 1
            await conn.close()
            assert conn.closed is not None and conn.closed.clean
            return index, got

        async with await wss.serve(
            handler, [("127.0.0.1", 0)], tls=[server_domain()], config=config
        ) as server:
            port = server.addresses[0][1]
            results = await asyncio.gather(*(client(port, i) for i in range(CONNECTIONS)))
            assert len(server._connections) == 0  # every handler saw its connection close
        assert sorted(results) == [(i, MESSAGES) for i in range(CONNECTIONS)]
        assert time.monotonic() - started < 60

    asyncio.run(asyncio.wait_for(main(), 90))
