"""One conformance suite, each scenario run against the asyncio, trio and blocking adapters."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import socket
import ssl
import time

import pytest
from adapter_helpers import REGISTER, certs, client_domain, has_ipv6, server_domain, wait_for
from harness import ADAPTERS, BURST, CLOSE_ME, FLOOD, LIMIT, LISTENER, RAISE_ME, Harness, Mode, harness_for
from raw_peers import Raw, Stage, stub_server
from wire import BINARY, CLOSE, CONTINUATION, PING, TEXT, close_body, frame, request

from sansio_wss import (
    Cause,
    Config,
    ConnectFailed,
    ConnectionClosedError,
    InvalidSipMessage,
    SipMessageReceived,
    TLSDomain,
)

BINARY_SIP = (
    b"MESSAGE sip:bob@example.com SIP/2.0\r\nCSeq: 2 MESSAGE\r\nContent-Length: 3\r\n\r\n\xff\xfe\x00"
)
BIG = (
    b"MESSAGE sip:bob@example.com SIP/2.0\r\nCSeq: 3 MESSAGE\r\nContent-Length: 60000\r\n\r\n" + b"y" * 60_000
)


@pytest.fixture(params=ADAPTERS)
def harness(request: pytest.FixtureRequest) -> Harness:
    """The adapter's harness (conftest.py checks that the test left no thread or socket)."""
    return harness_for(request.param)


def _with_field(field: bytes) -> bytes:
    return REGISTER.replace(b"Content-Length", field + b"\r\nContent-Length")


def _logged(caplog: pytest.LogCaptureFixture, harness: Harness, cause: Cause) -> bool:
    """Whether the adapter logged a handshake that failed with `cause` (asyncio logs none)."""
    if harness.logger is None:
        return True
    return wait_for(
        lambda: any(cause.value in r.getMessage() for r in caplog.records if r.name == harness.logger)
    )


# 1 ---------------------------------------------------------------- handshake and messages


def test_messages_both_ways_text_and_binary(harness: Harness) -> None:
    with harness.serve() as server:
        result = harness.exchange(server.port, [REGISTER, BINARY_SIP, REGISTER])
        assert result.replies == [
            SipMessageReceived(REGISTER, False),
            SipMessageReceived(BINARY_SIP, True),
            SipMessageReceived(REGISTER, False),
        ]
        assert server.seen == result.replies
        closed = result.closed
        assert closed.clean and closed.cause is Cause.LOCAL_CLOSED and closed.code == 1000
        peer = server.wait_closed()
        assert peer.clean and peer.cause is Cause.PEER_CLOSED


def test_our_client_and_server_over_ipv4_and_ipv6(harness: Harness) -> None:
    hosts = ["127.0.0.1", "::1"] if has_ipv6() else ["127.0.0.1"]
    with harness.serve(listeners=[(host, 0) for host in hosts]) as server:
        assert [address[0] for address in server.addresses] == hosts
        for host, port in server.addresses:
            result = harness.exchange(port, [REGISTER] * 5, host=host)
            assert result.replies == [SipMessageReceived(REGISTER, False)] * 5
            assert (result.opened.subprotocol, result.opened.resource) == ("sip", "/ws")
            assert result.remote_address == (host, port) and result.local_address[0] == host
            assert result.closed.clean and result.closed.cause is Cause.LOCAL_CLOSED
            # once closed, recv() and send() raise (and close() again does nothing)
            assert [type(error) for error in result.raised] == [ConnectionClosedError] * 2


# 2 ---------------------------------------------------------------- rejections


REJECTIONS = {
    "400-no-sip": (400, request(drop=("Sec-WebSocket-Protocol",))),
    "403-no-origin": (403, request(drop=("Origin",))),
    "404-resource": (404, request(line="GET /elsewhere HTTP/1.1")),
    "426-version": (426, request(replace={"Sec-WebSocket-Version": "8"})),
    "431-huge-head": (431, request(add=[("X-Padding", "p" * 20_000)])),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejection_status(harness: Harness, case: str) -> None:
    status, upgrade = REJECTIONS[case]
    with harness.serve(config=Config(resources=frozenset({"/ws"}))) as server, Raw(server.port) as raw:
        raw.send(upgrade)
        line = raw.head().split(b"\r\n")[0]
        assert line.startswith(f"HTTP/1.1 {status} ".encode()), line
        raw.until_eof()  # then the server ends the connection
        assert server.seen == []


def test_426_names_the_version(harness: Harness) -> None:
    with harness.serve() as server, Raw(server.port) as raw:
        raw.send(request(replace={"Sec-WebSocket-Version": "8"}))
        head = raw.head().lower()
        assert head.startswith(b"http/1.1 426 ") and b"\r\nsec-websocket-version: 13" in head


def test_our_client_connect_failures(harness: Harness) -> None:
    """A rejection (with the server's reply), a server certificate nobody vouches for, no
    listener, and a URI that is not wss://."""
    with harness.serve(config=Config(resources=frozenset({"/sip"}))) as server:
        failed = harness.connect_fails(server.port)  # it asks for /ws
        assert failed.closed.cause is Cause.HANDSHAKE_REJECTED and failed.closed.status == 404
        assert failed.rejected is not None and failed.rejected.status == 404
        wrong_ca = TLSDomain(name="c", side="client", ca_list=certs().other_ca)
        for tls in (None, ssl.create_default_context(), wrong_ca):  # None: the system's CAs
            error = harness.connect_error(f"wss://localhost:{server.port}/sip", tls=tls)
            assert isinstance(error, ConnectFailed) and error.closed.cause is Cause.TLS_FAILED, repr(error)
        assert server.seen == []
    uri = f"wss://127.0.0.1:{server.port}/sip"
    assert isinstance(harness.connect_error(uri, tls=client_domain()), OSError)  # nobody listens now
    assert isinstance(harness.connect_error(uri.replace("wss:", "ws:")), ValueError)


# 3 ---------------------------------------------------------------- big and fragmented


def test_large_and_fragmented_messages_arrive_whole(harness: Harness) -> None:
    # Enough chunks that a 60 KB message is never cut off by how TCP splits it.
    with harness.serve(config=Config(max_msg_chunks=64)) as server, Raw(server.port) as raw:
        raw.upgrade()
        raw.send(frame(TEXT, BIG))
        assert raw.message() == (TEXT, BIG)
        parts = [REGISTER[:20], REGISTER[20:50], REGISTER[50:]]
        raw.send(frame(TEXT, parts[0], fin=False))
        raw.send(frame(CONTINUATION, parts[1], fin=False))
        raw.send(frame(CONTINUATION, parts[2]))
        assert raw.message() == (TEXT, REGISTER)
        assert server.seen == [SipMessageReceived(BIG, False), SipMessageReceived(REGISTER, False)]


def test_large_message_through_our_client(harness: Harness) -> None:
    with harness.serve(config=Config(max_msg_chunks=64)) as server:
        result = harness.exchange(server.port, [BIG], config=Config(max_msg_chunks=64))
        assert result.replies == [SipMessageReceived(BIG, False)]


def test_senders_at_once_and_full_receive_queues(harness: Harness) -> None:
    """Sends from many tasks or threads at once go out whole, one after the other; while either
    side reads nothing its queue fills and it stops reading: nothing is lost, each sender's
    order is kept."""
    batches = [
        [REGISTER.replace(b"CSeq: 1 ", b"CSeq: %d " % (100 * i + j)) for j in range(20)] for i in range(10)
    ]
    with harness.serve(mode="late") as server:
        replies = [reply.message for reply in harness.send_together(server.port, batches)]
        assert replies == [message.message for message in server.seen]
    assert sorted(replies) == sorted(message for batch in batches for message in batch)
    for batch in batches:
        assert [reply for reply in replies if reply in batch] == batch


# 4 ---------------------------------------------------------------- chunk limit


def _send_in_writes(raw: Raw, data: bytes, writes: int) -> None:
    step = len(data) // writes
    for i in range(writes):
        raw.send(data[i * step : None if i == writes - 1 else (i + 1) * step])
        if i < writes - 1:
            time.sleep(0.1)  # separate TLS records and separate reads on the server


def test_chunk_limit(harness: Harness) -> None:
    config = Config(max_msg_chunks=2)
    with harness.serve(config=config) as server:
        with Raw(server.port) as raw:
            raw.upgrade()
            _send_in_writes(raw, frame(BINARY, BINARY_SIP), config.max_msg_chunks)
            assert raw.message() == (BINARY, BINARY_SIP)
        with Raw(server.port) as raw:
            raw.upgrade()
            _send_in_writes(raw, frame(TEXT, REGISTER), config.max_msg_chunks + 1)
            opcode, payload = raw.message()
            assert (opcode, payload[:2]) == (CLOSE, close_body(1008))
        assert server.seen == [SipMessageReceived(BINARY_SIP, True)]
        assert server.wait_closed(2).cause is Cause.CHUNK_LIMIT


# 5 ---------------------------------------------------------------- timeouts


def test_tls_handshake_timeout(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with harness.serve(config=Config(tls_handshake_timeout=0.3)) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), 5)
        with sock:
            start = time.monotonic()
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(100) == b""  # no ClientHello: dropped
            assert 0.25 < time.monotonic() - start < 1.5
        assert _logged(caplog, harness, Cause.TLS_HANDSHAKE_TIMEOUT)


def test_websocket_handshake_timeout(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with harness.serve(config=Config(handshake_timeout=0.3)) as server, Raw(server.port) as raw:
        start = time.monotonic()
        raw.send(request()[:40])
        assert raw.until_eof() == b""
        assert 0.2 < time.monotonic() - start < 1.5
        assert server.seen == []
        assert _logged(caplog, harness, Cause.HANDSHAKE_TIMEOUT)


CLIENT_TIMEOUTS: dict[Stage, tuple[Config, Cause]] = {
    "tcp": (Config(tls_handshake_timeout=0.2, handshake_timeout=2.0), Cause.TLS_HANDSHAKE_TIMEOUT),
    "request": (Config(handshake_timeout=0.2), Cause.HANDSHAKE_TIMEOUT),
}


@pytest.mark.parametrize("stage", list(CLIENT_TIMEOUTS))
def test_our_client_gives_up_on_a_server_that_stops_answering(harness: Harness, stage: Stage) -> None:
    """A server that accepts TCP and never speaks TLS, or never answers the upgrade request."""
    config, cause = CLIENT_TIMEOUTS[stage]
    with stub_server(stage) as port:
        start = time.monotonic()
        failed = harness.connect_fails(port, config=config)
        assert failed.closed.cause is cause
        assert 0.15 <= time.monotonic() - start < 1.5


def test_send_timeout_when_the_peer_stops_reading(harness: Harness) -> None:
    config = Config(send_timeout=0.3, ping_interval=None)
    with harness.serve(config=config, mode="flood") as server, Raw(server.port, rcvbuf=4096) as raw:
        raw.upgrade()
        closed = server.wait_closed()
        elapsed = time.monotonic() - server.flood_started[0]
        assert closed.cause is Cause.SEND_TIMEOUT and not closed.clean
        assert 0.25 < elapsed < config.send_timeout + 1.5


@pytest.mark.parametrize("closer", ["peer", "handler"])
def test_a_slow_reader_gets_every_message_whole_and_in_order(harness: Harness, closer: str) -> None:
    """Writes block and resume many times (the socket buffers hold far less than is sent);
    the send timeout, longer than any pause, never fires. Then the peer closes, or the
    handler returns and the server's Close comes after the last message."""
    config = Config(send_timeout=3.0, ping_interval=None)
    mode: Mode = "flood" if closer == "peer" else "burst"
    with harness.serve(config=config, mode=mode) as server, Raw(server.port, rcvbuf=4096) as raw:
        raw.upgrade()
        for _ in range(BURST):
            assert raw.message() == (TEXT, FLOOD)
            time.sleep(0.002)
        if closer == "peer":
            raw.send(frame(CLOSE, close_body(1000), mask=b"abcd"))
            while raw.message()[0] != CLOSE:
                pass
            closed = server.wait_closed()
            assert (closed.code, closed.cause, closed.clean) == (1000, Cause.PEER_CLOSED, True)
        else:
            assert raw.message() == (CLOSE, close_body(1000))
            raw.send(frame(CLOSE, close_body(1000)))
            assert raw.until_eof() == b""


def test_a_ping_flood_from_a_peer_that_never_reads(harness: Harness) -> None:
    """Pongs to a peer that reads nothing cannot pile up: we stop reading its Pings (it
    cannot send them all), then the send timeout drops it."""
    config = Config(send_timeout=0.5, ping_interval=None)
    pings = 200_000  # 26 MB of Pings: more than the kernel buffers between us hold
    with harness.serve(config=config) as server, Raw(server.port, rcvbuf=4096) as raw:
        raw.upgrade()
        ping = frame(PING, b"p" * 125)
        sent = 0
        with contextlib.suppress(OSError):  # blocked, then reset
            for sent in range(pings):  # noqa: B007
                raw.send(ping)
        closed = server.wait_closed()
        assert closed.cause is Cause.SEND_TIMEOUT and not closed.clean
        assert sent < pings // 2


def test_keepalive_pings_keep_an_idle_connection_open(harness: Harness) -> None:
    """Both ends ping every 50 ms of silence, and answer each other's Pings in time."""
    config = Config(ping_interval=0.05, pong_timeout=0.2)
    with harness.serve(config=config) as server:
        result = harness.exchange(server.port, [REGISTER], config=config, idle=0.35)
        assert result.replies == [SipMessageReceived(REGISTER, False)]
        assert result.closed.clean and result.closed.cause is Cause.LOCAL_CLOSED


def test_pong_timeout_then_half_close(harness: Harness) -> None:
    """No Pong: Close 1011, close_notify and FIN; the server still reads, and our late Close
    ends the connection long before close_timeout."""
    config = Config(ping_interval=0.05, pong_timeout=0.15, close_timeout=LIMIT)
    with harness.serve(config=config) as server, Raw(server.port) as raw:
        raw.upgrade()
        start = time.monotonic()
        assert raw.frame()[1] == PING
        opcode, payload = raw.message()
        assert (opcode, payload[:2]) == (CLOSE, close_body(1011))
        assert 0.15 < time.monotonic() - start < 1.5
        assert raw.until_eof() == b""  # close_notify: the server half-closed
        raw.send(frame(CLOSE, close_body(1011)))
        assert server.wait_closed().cause is Cause.PONG_TIMEOUT
        assert time.monotonic() - start < 2.0


def test_our_client_pong_timeout(harness: Harness) -> None:
    """A server that answers the upgrade, then nothing: no Pong, and no Close either."""
    config = Config(ping_interval=0.05, pong_timeout=0.1, close_timeout=0.1)
    with stub_server("upgrade") as port:
        start = time.monotonic()
        result = harness.exchange(port, [], config=config, close=False)
        assert result.closed.cause is Cause.PONG_TIMEOUT and not result.closed.clean
        assert 0.25 <= time.monotonic() - start < 1.5  # then the closing handshake: close_timeout


def test_close_is_bounded_by_close_timeout(harness: Harness) -> None:
    """A server that answers the upgrade but never our Close: close() returns after
    close_timeout, although no timer was armed when it was called."""
    config = Config(close_timeout=0.2, ping_interval=None)
    with stub_server("upgrade") as port:
        start = time.monotonic()
        result = harness.exchange(port, [], config=config, idle=0.05)
        assert result.closed.cause is Cause.CLOSE_TIMEOUT and not result.closed.clean
        assert 0.25 <= time.monotonic() - start < 1.5


def test_idle_timeout_closes_from_the_server(harness: Harness) -> None:
    with harness.serve(config=Config(idle_timeout=0.2)) as server:
        start = time.monotonic()
        result = harness.exchange(server.port, [REGISTER], close=False)
        assert 0.15 <= time.monotonic() - start < 1.5
        assert result.replies == [SipMessageReceived(REGISTER, False)]
        closed = result.closed
        assert (closed.code, closed.cause, closed.clean) == (1001, Cause.PEER_CLOSED, True)


# 6 ---------------------------------------------------------------- closing


def test_client_closes_cleanly(harness: Harness) -> None:
    with harness.serve() as server:
        result = harness.exchange(server.port, [REGISTER])
        assert result.replies == [SipMessageReceived(REGISTER, False)]
        assert result.closed.clean and result.closed.cause is Cause.LOCAL_CLOSED
        peer = server.wait_closed()
        assert peer.clean and peer.cause is Cause.PEER_CLOSED and peer.code == 1000


def test_server_closes_cleanly(harness: Harness) -> None:
    bye = _with_field(CLOSE_ME)
    with harness.serve() as server:
        result = harness.exchange(server.port, [bye], close=False)
        assert result.replies == [SipMessageReceived(bye, False)]
        closed = result.closed
        assert closed.clean and closed.cause is Cause.PEER_CLOSED and closed.code == 1000
        raised = [(e.code, e.reason) for e in result.raised if isinstance(e, ConnectionClosedError)]
        assert raised == [(1000, "")] * 2  # by recv() and send(), once closed
        peer = server.wait_closed()
        assert peer.clean and peer.cause is Cause.LOCAL_CLOSED


@pytest.mark.parametrize("mode", ["echo", "flood"])
def test_abrupt_close_by_reset(harness: Harness, mode: Mode) -> None:
    """The peer resets the connection while the server waits for it, or while it writes."""
    with harness.serve(mode=mode) as server:
        raw = Raw(server.port)
        raw.upgrade()
        if mode == "echo":
            raw.send(frame(TEXT, REGISTER))
            assert raw.message() == (TEXT, REGISTER)
        else:
            assert raw.message() == (TEXT, FLOOD)
        raw.reset()
        closed = server.wait_closed()
        assert closed.cause in (Cause.EOF, Cause.TRANSPORT_ERROR) and not closed.clean
        assert closed.code == 1006


def test_stopping_the_server_closes_its_connections_with_1001(harness: Harness) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with harness.serve() as server:
            client = pool.submit(harness.exchange, server.port, [REGISTER], close=False)
            assert wait_for(lambda: len(server.seen) == 1)
        closed = client.result(LIMIT).closed
    assert (closed.code, closed.cause, closed.clean) == (1001, Cause.PEER_CLOSED, True)
    with pytest.raises(ConnectionRefusedError):  # and it stopped listening
        socket.create_connection(("127.0.0.1", server.port), 1).close()


def test_a_handler_that_raises_closes_with_1011(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with harness.serve() as server:
        result = harness.exchange(server.port, [REGISTER, _with_field(RAISE_ME)])
        assert result.replies == [SipMessageReceived(REGISTER, False)]
        closed = result.closed
        assert (closed.code, closed.cause, closed.clean) == (1011, Cause.PEER_CLOSED, True)
        assert harness.exchange(server.port, [REGISTER]).closed.clean  # the server goes on
    assert any("handler failed" in r.getMessage() for r in caplog.records)


# 7 ---------------------------------------------------------------- listeners, certificates, SNI


def test_a_listener_without_tls_domain_drops_connections(harness: Harness) -> None:
    elsewhere = server_domain(addresses=frozenset({("127.0.0.2", 5061)}))
    with harness.serve(tls=[elsewhere]) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), 5)
        with sock, contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""
        assert server.seen == []


def test_serve_fails_when_a_port_is_taken(harness: Harness) -> None:
    busy = socket.create_server(("127.0.0.1", 0))
    with busy, pytest.raises(OSError), harness.serve(listeners=[LISTENER, busy.getsockname()]):
        pass


def test_require_cert(harness: Harness) -> None:
    strict = server_domain(require_cert=True, ca_list=certs().ca)
    with harness.serve(tls=[strict]) as server:
        failed = harness.connect_fails(server.port)
        assert failed.closed.cause in (Cause.TLS_FAILED, Cause.EOF, Cause.TRANSPORT_ERROR)
        assert server.seen == []
        result = harness.exchange(server.port, [REGISTER], tls=client_domain(certificate=certs().client))
        assert result.replies == [SipMessageReceived(REGISTER, False)] and result.closed.clean


def test_sni_picks_the_server_domain(harness: Harness) -> None:
    other = TLSDomain(
        name="other", side="server", certificate=certs().other_server, names=frozenset({"other.example.com"})
    )
    with harness.serve(tls=[server_domain(), other]) as server:
        for name, absent in (("other.example.com", "localhost"), ("localhost", "other.example.com")):
            with Raw(server.port, server_hostname=name) as raw:
                cert = raw.sock.getpeercert()
                assert cert is not None
                names = cert["subjectAltName"]
                assert ("DNS", name) in names and ("DNS", absent) not in names
                raw.upgrade()


def test_a_message_that_is_not_sip_reaches_the_handler(harness: Harness) -> None:
    with harness.serve() as server:
        result = harness.exchange(server.port, [b"\xffnot sip"])
        assert [type(message) for message in result.replies + server.seen] == [InvalidSipMessage] * 2
        assert all(message.binary for message in server.seen)
