"""The trio adapter beyond the conformance suite: its tasks, cancellation, and connections used
without `async with`; servers and raw peers in the test's own trio run."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from adapter_helpers import OK, REGISTER, client_domain, client_ssl_context, server_domain
from wire import request

from sansio_wss import Cause, Config, ConnectionClosed, SipMessageReceived
from sansio_wss.adapters import trio as wss

FLOOD = "MESSAGE sip:a@b SIP/2.0\r\n\r\n" + "x" * 60000


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
async def server(handler: wss.Handler = echo_ok, config: Config | None = None) -> AsyncIterator[int]:
    """Our server on an ephemeral port; cancelled (and every task gone) on exit."""
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(
            functools.partial(wss.serve, handler, [("127.0.0.1", 0)], tls=[server_domain()], config=config)
        )
        yield addresses[0][1]
        nursery.cancel_scope.cancel()


async def raw_tls(port: int) -> trio.SSLStream[trio.SocketStream]:
    """A TLS client of our own that speaks WebSocket by hand (or not at all)."""
    stream = trio.SSLStream(
        await trio.open_tcp_stream("127.0.0.1", port), client_ssl_context(), server_hostname="localhost"
    )
    await stream.do_handshake()
    return stream


async def read_to_eof(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


def tasks_living() -> int:
    return trio.lowlevel.current_statistics().tasks_living


def test_rejected_request_is_answered_then_half_closed() -> None:
    """After a 400 the server ends its direction (close_notify, FIN) and keeps reading."""

    async def main() -> None:
        async with server() as port:
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


def test_a_cancelled_send_finishes_its_write_first() -> None:
    """Half a frame would break the stream: a cancelled send() raises Cancelled once its
    write is over, which the send timeout bounds when the peer stops reading. Then the
    connection's tasks are gone."""

    async def main() -> None:
        outcome: list[tuple[float, ConnectionClosed | None]] = []

        async def handler(conn: wss.Connection) -> None:
            while True:
                start = trio.current_time()
                with trio.move_on_after(0.05) as scope:
                    await conn.send(FLOOD)
                if scope.cancelled_caught:
                    outcome.append((trio.current_time() - start, conn.closed))
                    return

        async with server(handler, Config(send_timeout=0.3)) as port:
            await trio.testing.wait_all_tasks_blocked()
            baseline = tasks_living()
            stream = await raw_tls(port)
            await stream.send_all(request())  # and never read again
            while not outcome:
                await trio.sleep(0.01)
            took, closed = outcome[0]
            assert 0.25 <= took < 1.0
            assert closed is not None and closed.cause is Cause.SEND_TIMEOUT
            await trio.testing.wait_all_tasks_blocked()
            assert tasks_living() == baseline  # the handler's and the connection's tasks have ended
            await stream.aclose()

    run(main)


def test_an_error_in_the_block_propagates_unwrapped() -> None:
    """Not inside an ExceptionGroup; the connection is closed with 1011 on the way out."""

    async def main() -> None:
        ended: list[ConnectionClosed | None] = []

        async def handler(conn: wss.Connection) -> None:
            await echo_ok(conn)
            ended.append(conn.closed)

        async with server(handler) as port:
            with pytest.raises(KeyError):
                async with wss.open_connection(f"wss://localhost:{port}/", tls=client_domain()):
                    raise KeyError("body")
            while not ended:
                await trio.sleep(0.01)
        closed = ended[0]
        assert closed is not None and (closed.code, closed.cause) == (1011, Cause.PEER_CLOSED)

    run(main)


def test_connect_without_entering_and_cancelled_connect() -> None:
    async def main() -> None:
        async with server() as port:
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
