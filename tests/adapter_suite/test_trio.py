"""The trio adapter over real TLS on 127.0.0.1, against itself, websockets and raw peers."""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from adapter_helpers import (
    OK,
    REGISTER,
    certs,
    client_domain,
    client_ssl_context,
    server_domain,
    server_ssl_context,
)
from websockets.trio.client import connect as ws_connect
from websockets.trio.server import ServerConnection as WsServerConnection
from websockets.trio.server import serve as ws_serve

from sansio_wss import (
    Cause,
    Config,
    ConnectFailed,
    ConnectionClosedError,
    InvalidSipMessage,
    SipMessageReceived,
    TLSDomain,
)
from sansio_wss.adapters import trio as wss

ORIGIN = "https://app.example.com"
UPGRADE = (
    "GET {resource} HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    f"Sec-WebSocket-Protocol: sip\r\nOrigin: {ORIGIN}\r\n\r\n"
)


def run(main: Callable[[], Awaitable[None]], limit: float = 5.0) -> None:
    """Run `main` under trio, bounded: a hang fails the test instead of stalling it."""

    async def bounded() -> None:
        with trio.fail_after(limit):
            await main()

    trio.run(bounded)


async def echo_ok(conn: wss.Connection) -> None:
    async for message in conn:
        if isinstance(message, SipMessageReceived):
            await conn.send(OK)


@asynccontextmanager
async def server(
    handler: wss.Handler = echo_ok, config: Config | None = None
) -> AsyncIterator[tuple[int, trio.Nursery]]:
    """Our server on an ephemeral port; cancelled (and every task gone) on exit."""
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(
            functools.partial(wss.serve, handler, [("127.0.0.1", 0)], tls=[server_domain()], config=config)
        )
        yield addresses[0][1], nursery
        nursery.cancel_scope.cancel()


async def raw_tls(port: int) -> trio.SSLStream[trio.SocketStream]:
    """A TLS client of our own that speaks WebSocket by hand (or not at all)."""
    stream = trio.SSLStream(
        await trio.open_tcp_stream("127.0.0.1", port), client_ssl_context(), server_hostname="localhost"
    )
    await stream.do_handshake()
    return stream


async def read_head(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        assert chunk, data
        data += chunk
    return data


async def read_to_eof(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


async def deaf(stream: trio.SSLStream[trio.SocketStream]) -> None:
    """A raw TLS server that answers the upgrade, then neither reads nor writes again."""
    head = await read_head(stream)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    await stream.send_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
    )
    await trio.sleep_forever()


@asynccontextmanager
async def deaf_server() -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_ssl_over_tcp, deaf, 0, server_ssl_context(), host="127.0.0.1")
        )
        yield listeners[0].transport_listener.socket.getsockname()[1]
        nursery.cancel_scope.cancel()


def tasks_living() -> int:
    return trio.lowlevel.current_statistics().tasks_living


def test_our_client_our_server() -> None:
    async def main() -> None:
        ended: list[wss.Connection] = []

        async def handler(conn: wss.Connection) -> None:
            await echo_ok(conn)
            ended.append(conn)

        async with (
            server(handler) as (port, _),
            wss.open_connection(f"wss://localhost:{port}/ws", tls=client_domain()) as conn,
        ):
            assert conn.opened is not None and conn.opened.subprotocol == "sip"
            assert conn.opened.resource == "/ws"
            assert conn.remote_address == ("127.0.0.1", port)
            assert conn.local_address[0] == "127.0.0.1"
            for _ in range(5):
                await conn.send(REGISTER)
                assert await conn.recv() == SipMessageReceived(OK, False)
            await conn.close()
            assert conn.closed is not None and conn.closed.clean
            assert conn.closed.cause is Cause.LOCAL_CLOSED
            with pytest.raises(ConnectionClosedError):
                await conn.recv()
            with pytest.raises(ConnectionClosedError):
                await conn.send(REGISTER)
            await trio.testing.wait_all_tasks_blocked()
            closed = ended[0].closed
            assert closed is not None and closed.clean and closed.cause is Cause.PEER_CLOSED

    run(main)


def test_server_closes_when_the_handler_returns() -> None:
    async def main() -> None:
        async def handler(conn: wss.Connection) -> None:
            assert await conn.recv() == SipMessageReceived(REGISTER, False)
            await conn.send(OK)

        async with server(handler) as (port, _):
            conn = await wss.connect(f"wss://localhost:{port}/", tls=client_domain())
            async with conn:
                await conn.send(REGISTER)
                assert [m async for m in conn] == [SipMessageReceived(OK, False)]
                await conn.wait_closed()
            closed = conn.closed
            assert closed is not None and closed.clean and closed.cause is Cause.PEER_CLOSED
            assert closed.code == 1000

    run(main)


def test_many_messages_concurrent_senders_and_a_big_one() -> None:
    """Writes from many tasks are serialised; a full receive queue pauses reading, loses nothing."""

    async def main() -> None:
        got: list[bytes] = []
        big = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 60000\r\n\r\n" + b"x" * 60000

        async def handler(conn: wss.Connection) -> None:
            await trio.sleep(0.2)  # let more than the queue limit arrive
            async for message in conn:
                got.append(message.message)
                if message.message == big:
                    await conn.send(big)

        async with (
            server(handler) as (port, _),
            wss.open_connection(f"wss://localhost:{port}/", tls=client_domain()) as conn,
        ):

            async def sender(i: int) -> None:
                for j in range(20):
                    await conn.send(REGISTER + f"{i}-{j}".encode())

            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(sender, i)
            await conn.send(big)
            assert await conn.recv() == SipMessageReceived(big, False)
        assert len(got) == 201 and got[-1] == big
        for i in range(10):  # each sender's messages arrive whole and in its order
            seq = [m[len(REGISTER) :] for m in got[:-1] if m[len(REGISTER) :].startswith(f"{i}-".encode())]
            assert seq == [f"{i}-{j}".encode() for j in range(20)]

    run(main)


def test_websockets_client_against_our_server() -> None:
    async def main() -> None:
        seen: list[object] = []

        async def handler(conn: wss.Connection) -> None:
            async for message in conn:
                seen.append(message)
                await conn.send(OK)

        async with server(handler) as (port, _):
            async with ws_connect(
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
            assert ws.close_code == 1000
        assert seen[0] == SipMessageReceived(REGISTER, False)
        assert isinstance(seen[1], InvalidSipMessage) and seen[1].binary

    run(main)


def test_our_client_against_websockets_server() -> None:
    async def main() -> None:
        async def handler(ws: WsServerConnection) -> None:
            async for message in ws:
                await ws.send(OK.decode() if isinstance(message, str) else OK)

        async with trio.open_nursery() as nursery:
            ws_server = await nursery.start(
                functools.partial(
                    ws_serve,
                    handler,
                    0,
                    host="127.0.0.1",
                    ssl=server_ssl_context(),
                    subprotocols=["sip"],  # type: ignore[list-item]
                )
            )
            port = ws_server.listeners[0].socket.getsockname()[1]
            async with wss.open_connection(f"wss://localhost:{port}/sip", tls=client_domain()) as conn:
                await conn.send(REGISTER)
                assert await conn.recv() == SipMessageReceived(OK, False)
                await conn.close()
                assert conn.closed is not None and conn.closed.clean
            nursery.cancel_scope.cancel()

    run(main)


def test_websockets_server_closes_first() -> None:
    async def main() -> None:
        async def handler(ws: WsServerConnection) -> None:
            await ws.send(await ws.recv())
            await ws.aclose(1001, "bye")

        async with trio.open_nursery() as nursery:
            ws_server = await nursery.start(
                functools.partial(
                    ws_serve,
                    handler,
                    0,
                    host="127.0.0.1",
                    ssl=server_ssl_context(),
                    subprotocols=["sip"],  # type: ignore[list-item]
                )
            )
            port = ws_server.listeners[0].socket.getsockname()[1]
            async with wss.open_connection(f"wss://localhost:{port}/", tls=client_domain()) as conn:
                await conn.send(REGISTER)
                assert await conn.recv() == SipMessageReceived(REGISTER, False)
                with pytest.raises(ConnectionClosedError):
                    await conn.recv()
                await conn.wait_closed()
                closed = conn.closed
                assert closed is not None and closed.clean and (closed.code, closed.reason) == (1001, "bye")
            nursery.cancel_scope.cancel()

    run(main)


def test_rejection_tls_failure_and_refused_tcp() -> None:
    async def main() -> None:
        async with server(config=Config(resources=frozenset({"/sip"}))) as (port, _):
            with pytest.raises(ConnectFailed) as info:
                await wss.connect(f"wss://localhost:{port}/other", tls=client_domain())
            assert info.value.closed.cause is Cause.HANDSHAKE_REJECTED and info.value.closed.status == 404
            assert info.value.rejected is not None and info.value.rejected.status == 404
            with pytest.raises(ConnectFailed) as info:
                await wss.connect(f"wss://localhost:{port}/sip", tls=ssl.create_default_context())
            assert info.value.closed.cause is Cause.TLS_FAILED
            with pytest.raises(ValueError, match="wss://"):
                await wss.connect(f"ws://localhost:{port}/sip")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            free = sock.getsockname()[1]
        with pytest.raises(OSError):
            await wss.connect(f"wss://127.0.0.1:{free}/", tls=client_domain())

    run(main)


def test_rejected_request_is_answered_then_half_closed() -> None:
    """After a 400 the server ends its direction (close_notify, FIN) and keeps reading."""

    async def main() -> None:
        async with server() as (port, _):
            await trio.testing.wait_all_tasks_blocked()
            baseline = tasks_living()
            stream = await raw_tls(port)
            await stream.send_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            reply = await read_to_eof(stream)  # close_notify: the server half-closed
            assert reply.startswith(b"HTTP/1.1 400 ")
            await stream.send_all(b"still open\r\n")
            await trio.testing.wait_all_tasks_blocked()
            assert tasks_living() == baseline + 1  # its task still reads, until our EOF
            await stream.aclose()
            await trio.testing.wait_all_tasks_blocked()
            assert tasks_living() == baseline

    run(main)


def test_tls_handshake_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sansio_wss.adapters.trio")
    config = Config(tls_handshake_timeout=0.5)

    async def main() -> None:
        async with server(config=config) as (port, _):
            raw = await trio.open_tcp_stream("127.0.0.1", port)  # never speaks TLS
            start = trio.current_time()
            assert await raw.receive_some() == b""
            assert 0.45 <= trio.current_time() - start < 1.0
            await raw.aclose()
            await trio.testing.wait_all_tasks_blocked()
        assert any("tls_handshake_timeout" in r.getMessage() for r in caplog.records)

        async def silent(stream: trio.SocketStream) -> None:
            await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(functools.partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            start = trio.current_time()
            with pytest.raises(ConnectFailed) as info:
                await wss.connect(f"wss://localhost:{port}/", tls=client_domain(), config=config)
            assert info.value.closed.cause is Cause.TLS_HANDSHAKE_TIMEOUT
            assert 0.45 <= trio.current_time() - start < 1.0
            nursery.cancel_scope.cancel()

    run(main)


def test_websocket_handshake_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sansio_wss.adapters.trio")
    config = Config(handshake_timeout=0.5)

    async def main() -> None:
        async with server(config=config) as (port, _):
            start = trio.current_time()
            stream = await raw_tls(port)  # TLS, then no upgrade request
            assert await read_to_eof(stream) == b""
            assert 0.45 <= trio.current_time() - start < 1.0
            await stream.aclose()
            await trio.testing.wait_all_tasks_blocked()
        assert any("handshake_timeout" in r.getMessage() for r in caplog.records)

        async def mute(stream: trio.SSLStream[trio.SocketStream]) -> None:
            await read_head(stream)  # reads the upgrade request, never answers
            await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_ssl_over_tcp, mute, 0, server_ssl_context(), host="127.0.0.1")
            )
            port = listeners[0].transport_listener.socket.getsockname()[1]
            start = trio.current_time()
            with pytest.raises(ConnectFailed) as info:
                await wss.connect(f"wss://localhost:{port}/", tls=client_domain(), config=config)
            assert info.value.closed.cause is Cause.HANDSHAKE_TIMEOUT
            assert 0.45 <= trio.current_time() - start < 1.0
            nursery.cancel_scope.cancel()

    run(main)


def test_send_timeout_when_the_peer_stops_reading() -> None:
    config = Config(send_timeout=0.5, ping_interval=None)

    async def main() -> None:
        done = trio.Event()
        durations: list[float] = []
        result: list[wss.Connection] = []
        big = "MESSAGE sip:a@b SIP/2.0\r\n\r\n" + "x" * 60000

        async def handler(conn: wss.Connection) -> None:
            result.append(conn)
            try:
                while True:
                    start = trio.current_time()
                    await conn.send(big)
                    durations.append(trio.current_time() - start)
            except ConnectionClosedError:
                pass
            finally:
                done.set()

        async with server(handler, config) as (port, _):
            await trio.testing.wait_all_tasks_blocked()
            baseline = tasks_living()
            stream = await raw_tls(port)
            await stream.send_all(UPGRADE.format(resource="/", port=port).encode())
            assert (await read_head(stream)).startswith(b"HTTP/1.1 101 ")
            await done.wait()  # and never read again
            conn = result[0]
            assert conn.closed is not None and conn.closed.cause is Cause.SEND_TIMEOUT
            assert 0.45 <= durations[-1] < 1.2, durations[-3:]
            with trio.fail_after(0.5):
                await conn.wait_closed()
            await trio.testing.wait_all_tasks_blocked()
            assert tasks_living() == baseline  # the connection's tasks have ended
            await stream.aclose()

    run(main)


def test_a_cancelled_send_finishes_its_write_first() -> None:
    """Half a frame would break the stream: a cancelled send() raises Cancelled once its
    write is over, which the send timeout bounds when the peer stops reading."""

    async def main() -> None:
        outcome: list[tuple[float, object]] = []
        big = "MESSAGE sip:a@b SIP/2.0\r\n\r\n" + "x" * 60000

        async def handler(conn: wss.Connection) -> None:
            while True:
                start = trio.current_time()
                with trio.move_on_after(0.05) as scope:
                    await conn.send(big)
                if scope.cancelled_caught:
                    closed = conn.closed
                    outcome.append((trio.current_time() - start, closed and closed.cause))
                    return

        async with server(handler, Config(send_timeout=0.5)) as (port, _):
            stream = await raw_tls(port)
            await stream.send_all(UPGRADE.format(resource="/", port=port).encode())
            await read_head(stream)  # and never read again
            while not outcome:
                await trio.sleep(0.01)
            took, cause = outcome[0]
            assert 0.45 <= took < 1.2 and cause is Cause.SEND_TIMEOUT
            await stream.aclose()

    run(main)


def test_idle_timeout_closes_from_the_server() -> None:
    """The reader's one timer: the server's core closes an idle connection (1001)."""

    async def main() -> None:
        async with (
            server(config=Config(idle_timeout=0.3)) as (port, _),
            wss.open_connection(f"wss://localhost:{port}/", tls=client_domain()) as conn,
        ):
            start = trio.current_time()
            with pytest.raises(ConnectionClosedError):
                await conn.recv()
            assert 0.25 <= trio.current_time() - start < 1.0
            closed = conn.closed
            assert closed is not None and closed.code == 1001 and closed.cause is Cause.PEER_CLOSED

    run(main)


def test_exceptions_propagate_unwrapped_and_the_handler_error_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sansio_wss.adapters.trio")

    async def main() -> None:
        async def handler(conn: wss.Connection) -> None:
            await conn.recv()
            raise RuntimeError("handler bug")

        async with server(handler) as (port, _):
            with pytest.raises(KeyError):  # not an ExceptionGroup
                async with wss.open_connection(f"wss://localhost:{port}/", tls=client_domain()):
                    raise KeyError("body")
            async with wss.open_connection(f"wss://localhost:{port}/", tls=client_domain()) as conn:
                await conn.send(REGISTER)
                with pytest.raises(ConnectionClosedError) as info:
                    await conn.recv()
                assert info.value.code == 1011
            # the server goes on
            async with wss.open_connection(f"wss://localhost:{port}/", tls=client_domain()) as conn:
                await conn.send(REGISTER)
        assert any("handler failed" in r.getMessage() for r in caplog.records)

    run(main)


def test_cancelling_serve_closes_connections_with_1001() -> None:
    async def main() -> None:
        serving = trio.CancelScope()
        stopped = trio.Event()

        async def run_server(task_status: trio.TaskStatus[list[tuple[str, int]]]) -> None:
            with serving:
                await wss.serve(echo_ok, [("127.0.0.1", 0)], tls=[server_domain()], task_status=task_status)
            stopped.set()

        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(run_server)
            port = addresses[0][1]
            async with wss.open_connection(f"wss://localhost:{port}/", tls=client_domain()) as conn:
                await conn.send(REGISTER)
                await conn.recv()
                serving.cancel()
                with pytest.raises(ConnectionClosedError):
                    await conn.recv()
                closed = conn.closed
                assert closed is not None and closed.clean and closed.code == 1001
                assert closed.cause is Cause.PEER_CLOSED
                await stopped.wait()  # serve() returned once its connections were closed

    run(main)


def test_keepalive_pings_answered_and_pong_timeout() -> None:
    config = Config(ping_interval=0.05, pong_timeout=0.2)

    async def main() -> None:
        async with (
            server(config=config) as (port, _),
            wss.open_connection(f"wss://localhost:{port}/", tls=client_domain(), config=config) as conn,
        ):
            await trio.sleep(0.5)  # both sides ping every 50 ms of silence and get a Pong
            assert conn.closed is None
            await conn.send(REGISTER)
            assert await conn.recv() == SipMessageReceived(OK, False)

        async with deaf_server() as port:
            deaf_config = Config(ping_interval=0.05, pong_timeout=0.2, close_timeout=0.2)
            async with wss.open_connection(
                f"wss://localhost:{port}/", tls=client_domain(), config=deaf_config
            ) as conn:
                start = trio.current_time()
                with pytest.raises(ConnectionClosedError):
                    await conn.recv()
                assert conn.closed is not None and conn.closed.cause is Cause.PONG_TIMEOUT
                await conn.wait_closed()  # the server never closes: close_timeout ends it
                assert 0.4 <= trio.current_time() - start < 1.0

    run(main)


def test_connect_without_entering_and_cancelled_connect() -> None:
    async def main() -> None:
        async with server() as (port, _):
            conn = await wss.connect(f"wss://localhost:{port}/", tls=client_domain())
            with pytest.raises(RuntimeError):
                await conn.recv()
            await conn.send(REGISTER)
            await conn.close()  # reads the peer's Close itself
            assert conn.closed is not None and conn.closed.clean

        seen_eof = trio.Event()

        async def silent(stream: trio.SocketStream) -> None:
            assert await read_to_eof(stream)  # a ClientHello, then the cancelled client's FIN
            seen_eof.set()

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(functools.partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            with trio.move_on_after(0.2) as scope:
                await wss.connect(f"wss://localhost:{port}/", tls=client_domain())
            assert scope.cancelled_caught
            await seen_eof.wait()  # the socket was closed
            nursery.cancel_scope.cancel()

    run(main)


def test_close_is_bounded_by_close_timeout() -> None:
    """No timer is armed (no pings) when close() is called: it re-arms the reader's."""

    async def main() -> None:
        config = Config(ping_interval=None, close_timeout=0.3)
        async with (
            deaf_server() as port,
            wss.open_connection(f"wss://localhost:{port}/", tls=client_domain(), config=config) as conn,
        ):
            start = trio.current_time()
            await conn.close()
            assert 0.25 <= trio.current_time() - start < 0.8
            assert conn.closed is not None and conn.closed.cause is Cause.CLOSE_TIMEOUT

    run(main)


def test_peer_reset_ends_the_connection() -> None:
    async def main() -> None:
        closed: list[object] = []

        async def handler(conn: wss.Connection) -> None:
            async for _ in conn:
                pass
            closed.append(conn.closed)

        async with server(handler) as (port, _):
            await trio.testing.wait_all_tasks_blocked()
            baseline = tasks_living()
            stream = await raw_tls(port)
            await stream.send_all(UPGRADE.format(resource="/", port=port).encode())
            await read_head(stream)
            sock = stream.transport_stream.socket
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            sock.close()  # RST
            while not closed:
                await trio.sleep(0.01)
            await trio.testing.wait_all_tasks_blocked()
            assert tasks_living() == baseline
        assert getattr(closed[0], "cause", None) in (Cause.TRANSPORT_ERROR, Cause.EOF)

    run(main)


def test_ipv6_sni_and_require_cert() -> None:
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
        async with trio.open_nursery() as nursery:
            serve = functools.partial(wss.serve, echo_ok, [("::1", 0)], tls=domains)
            addresses = await nursery.start(serve)
            host, port = addresses[0]
            assert host == "::1"
            async with wss.open_connection(f"wss://[::1]:{port}/", tls=client_domain()) as conn:
                await conn.send(REGISTER)
                assert await conn.recv() == SipMessageReceived(OK, False)
                assert conn.remote_address == ("::1", port)
            for name in ("other.example.com", "localhost"):
                stream = trio.SSLStream(
                    await trio.open_tcp_stream("::1", port), client_ssl_context(), server_hostname=name
                )
                await stream.do_handshake()
                cert = stream.getpeercert()
                assert ("DNS", name) in cert["subjectAltName"]
                await stream.aclose()

            strict = server_domain(require_cert=True, ca_list=certs().ca)
            addresses = await nursery.start(
                functools.partial(wss.serve, echo_ok, [("127.0.0.1", 0)], tls=[strict])
            )
            port = addresses[0][1]
            with pytest.raises(ConnectFailed) as info:
                await wss.connect(f"wss://localhost:{port}/", tls=client_domain())
            assert info.value.closed.cause in (Cause.TLS_FAILED, Cause.EOF)
            async with wss.open_connection(
                f"wss://localhost:{port}/", tls=client_domain(certificate=certs().client)
            ) as conn:
                await conn.send(REGISTER)
                assert await conn.recv() == SipMessageReceived(OK, False)
            nursery.cancel_scope.cancel()

    run(main)


def test_listener_without_tls_domain_and_a_taken_port() -> None:
    async def main() -> None:
        elsewhere = server_domain(addresses=frozenset({("127.0.0.2", 5061)}))
        async with trio.open_nursery() as nursery:
            serve = functools.partial(wss.serve, echo_ok, [("127.0.0.1", 0)], tls=[elsewhere])
            port = (await nursery.start(serve))[0][1]
            raw = await trio.open_tcp_stream("127.0.0.1", port)
            assert await raw.receive_some() == b""  # dropped at once
            await raw.aclose()
            with socket.socket() as busy:
                busy.bind(("127.0.0.1", 0))
                busy.listen()
                taken = busy.getsockname()
                with pytest.raises(OSError):
                    await nursery.start(
                        functools.partial(
                            wss.serve, echo_ok, [("127.0.0.1", 0), taken], tls=[server_domain()]
                        )
                    )
            nursery.cancel_scope.cancel()

    run(main)
