"""The asyncio adapter over real TLS on 127.0.0.1, against itself and against websockets."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
import websockets
from adapter_helpers import (
    OK,
    REGISTER,
    certs,
    client_domain,
    client_ssl_context,
    server_domain,
    server_ssl_context,
)

from sansio_wss import (
    Cause,
    Config,
    ConnectFailed,
    ConnectionClosed,
    ConnectionClosedError,
    InvalidSipMessage,
    SipMessageReceived,
    TLSDomain,
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


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Read until EOF (or a reset); return how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        while await asyncio.wait_for(reader.read(65536), seconds):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    return loop.time() - start


def test_tls_handshake_stall_is_dropped() -> None:
    async def main() -> None:
        config = Config(tls_handshake_timeout=0.5)
        async with await wss.serve(
            echo_ok, [("127.0.0.1", 0)], tls=[server_domain()], config=config
        ) as server:
            reader, writer = await asyncio.open_connection(*server.addresses[0])
            assert await _closed_within(reader, 5) < 2.0
            writer.close()

    run(main())


def test_websocket_handshake_stall_is_dropped() -> None:
    async def main() -> None:
        config = Config(handshake_timeout=0.5)
        async with await wss.serve(
            echo_ok, [("127.0.0.1", 0)], tls=[server_domain()], config=config
        ) as server:
            host, port = server.addresses[0]
            reader, writer = await asyncio.open_connection(
                host, port, ssl=client_ssl_context(), server_hostname="localhost"
            )
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            assert await _closed_within(reader, 5) < 2.0
            writer.close()

    run(main())


def test_a_peer_that_stops_reading_is_dropped_after_send_timeout() -> None:
    async def main() -> None:
        outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()

        async def flood(conn: wss.Connection) -> None:
            big = b"MESSAGE sip:a@b SIP/2.0\r\n\r\n" + b"x" * 60_000
            try:
                while True:
                    await conn.send(big)
            except ConnectionClosedError:
                outcome.set_result(conn.closed)

        config = Config(send_timeout=0.5, max_message_size=100_000)
        async with await wss.serve(flood, [("127.0.0.1", 0)], tls=[server_domain()], config=config) as server:
            host, port = server.addresses[0]
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((host, port))
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=client_ssl_context(), server_hostname="localhost"
            )
            writer.write(UPGRADE)
            await reader.readuntil(b"\r\n\r\n")  # the 101; then we never read again
            closed = await asyncio.wait_for(outcome, 10)
            assert isinstance(closed, ConnectionClosed) and closed.cause is Cause.SEND_TIMEOUT
            writer.transport.abort()

    run(main())


def test_sni_chooses_the_server_domain() -> None:
    async def main() -> None:
        domains = [
            server_domain(),
            TLSDomain(
                name="other",
                side="server",
                certificate=certs().other_server,
                names=frozenset({"other.example.com"}),
            ),
        ]
        async with await wss.serve(echo_ok, [("127.0.0.1", 0)], tls=domains) as server:
            host, port = server.addresses[0]
            for name in ("other.example.com", "localhost"):
                _, writer = await asyncio.open_connection(
                    host, port, ssl=client_ssl_context(), server_hostname=name
                )
                cert = writer.get_extra_info("peercert")
                assert ("DNS", name) in cert["subjectAltName"]
                writer.close()

    run(main())


def test_require_cert() -> None:
    async def main() -> None:
        strict = server_domain(require_cert=True, ca_list=certs().ca)
        async with await wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[strict]) as server:
            port = server.addresses[0][1]
            with pytest.raises(ConnectFailed) as info:
                await wss.connect(f"wss://localhost:{port}/", tls=client_domain())
            assert info.value.closed.cause in (Cause.TLS_FAILED, Cause.EOF)
            conn = await wss.connect(
                f"wss://localhost:{port}/", tls=client_domain(certificate=certs().client)
            )
            await conn.send(REGISTER)
            assert await conn.recv() == SipMessageReceived(OK, False)
            await conn.close()

    run(main())


UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: sip\r\nOrigin: https://app.example.com\r\n\r\n"
)


def test_a_handler_that_raises_closes_with_1011() -> None:
    async def main() -> None:
        async def broken(conn: wss.Connection) -> None:
            await conn.recv()
            raise RuntimeError("handler bug")

        async with await wss.serve(broken, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
            port = server.addresses[0][1]
            conn = await wss.connect(f"wss://localhost:{port}/", tls=client_domain())
            await conn.send(REGISTER)
            with pytest.raises(ConnectionClosedError):
                await conn.recv()
            assert conn.closed is not None and (conn.closed.code, conn.closed.clean) == (1011, True)

    run(main())
