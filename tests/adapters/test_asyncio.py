"""The asyncio adapter over real TLS on 127.0.0.1, against itself and against websockets."""

from __future__ import annotations

import asyncio
import ssl

import pytest
import websockets
from adapter_helpers import OK, REGISTER, client_domain, client_ssl_context, server_domain, server_ssl_context

from sansio_wss import (
    Cause,
    Config,
    ConnectFailed,
    ConnectionClosedError,
    InvalidSipMessage,
    SipMessageReceived,
)
from sansio_wss.adapters import asyncio as wss

ORIGIN = "https://app.example.com"


async def echo_ok(conn: wss.Connection) -> None:
    async for message in conn:
        if isinstance(message, SipMessageReceived):
            await conn.send(OK)


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))  # type: ignore[arg-type]


def test_our_client_our_server() -> None:
    async def main() -> None:
        async with await wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
            port = server.addresses[0][1]
            conn = await wss.connect(f"wss://localhost:{port}/ws", tls=client_domain())
            assert conn.opened is not None and conn.opened.subprotocol == "sip"
            for _ in range(5):
                await conn.send(REGISTER)
                assert await conn.recv() == SipMessageReceived(OK, False)
            await conn.close()
            assert conn.closed is not None and conn.closed.clean
            with pytest.raises(ConnectionClosedError):
                await conn.recv()

    run(main())


def test_websockets_client_against_our_server() -> None:
    async def main() -> None:
        seen: list[object] = []

        async def handler(conn: wss.Connection) -> None:
            async for message in conn:
                seen.append(message)
                await conn.send(OK)

        async with await wss.serve(handler, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
            port = server.addresses[0][1]
            async with websockets.connect(
                f"wss://localhost:{port}/",
                ssl=client_ssl_context(),
                subprotocols=["sip"],  # type: ignore[list-item]
                origin=ORIGIN,  # type: ignore[arg-type]
            ) as ws:
                assert ws.subprotocol == "sip"
                await ws.send(REGISTER.decode())
                assert await ws.recv() == OK.decode()
                await ws.send(b"\xffnot sip")
                assert await ws.recv() == OK.decode()
        assert seen[0] == SipMessageReceived(REGISTER, False)
        assert isinstance(seen[1], InvalidSipMessage) and seen[1].binary

    run(main())


def test_our_client_against_websockets_server() -> None:
    async def main() -> None:
        async def handler(ws: websockets.ServerConnection) -> None:
            async for message in ws:
                await ws.send(OK.decode() if isinstance(message, str) else OK)

        async with websockets.serve(
            handler,
            "127.0.0.1",
            0,
            ssl=server_ssl_context(),
            subprotocols=["sip"],  # type: ignore[list-item]
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            conn = await wss.connect(f"wss://localhost:{port}/sip", tls=client_domain())
            await conn.send(REGISTER)
            assert await conn.recv() == SipMessageReceived(OK, False)
            await conn.close()
            assert conn.closed is not None and conn.closed.clean

    run(main())


def test_rejection_and_tls_failure_raise_connect_failed() -> None:
    async def main() -> None:
        config = Config(resources=frozenset({"/sip"}))
        async with await wss.serve(
            echo_ok, [("127.0.0.1", 0)], tls=[server_domain()], config=config
        ) as server:
            port = server.addresses[0][1]
            with pytest.raises(ConnectFailed) as info:
                await wss.connect(f"wss://localhost:{port}/other", tls=client_domain())
            assert info.value.closed.cause is Cause.HANDSHAKE_REJECTED and info.value.closed.status == 404
            assert info.value.rejected is not None and info.value.rejected.status == 404
            with pytest.raises(ConnectFailed) as info:
                await wss.connect(f"wss://localhost:{port}/sip", tls=ssl.create_default_context())
            assert info.value.closed.cause is Cause.TLS_FAILED

    run(main())
