"""The shared driver: TLS over memory BIOs plus the core, two drivers talking in memory."""

from __future__ import annotations

from adapter_helpers import OK, REGISTER, certs, client_domain, server_domain

from sansio_wss import (
    Cause,
    ClientConnection,
    Config,
    ConnectionClosed,
    Event,
    Opened,
    ServerConnection,
    SipMessageReceived,
    TLSDomain,
    TransportAction,
)
from sansio_wss.adapters._driver import Driver
from sansio_wss.adapters._tls import context_for


def pair(
    config: Config | None = None,
    client_tls: TLSDomain | None = None,
    server_tls: TLSDomain | None = None,
    host: str = "localhost",
) -> tuple[Driver, Driver]:
    config = config or Config()
    server = Driver(context_for(server_tls or server_domain()), ServerConnection(0.0, config), 0.0)
    client = Driver(
        context_for(client_tls or client_domain()),
        ClientConnection(host, 0.0, config=config),
        0.0,
        server_hostname=host,
    )
    client.start(0.0)
    server.start(0.0)
    return client, server


def pump(a: Driver, b: Driver, now: float = 0.0) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways until quiet; return the events each side saw."""
    seen_a: list[Event] = []
    seen_b: list[Event] = []
    for _ in range(20):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            if data:
                moved = True
                dst.receive(data, now)
        seen_a += a.events()
        seen_b += b.events()
        if not moved:
            break
    return seen_a, seen_b


def test_tls_then_websocket_then_messages() -> None:
    client, server = pair()
    assert client.get_timer() == 10.0  # TLS handshake deadline first
    ce, se = pump(client, server)
    assert [type(e) for e in ce] == [Opened] and [type(e) for e in se] == [Opened]
    assert client.tls_info is not None and client.tls_info.version in ("TLSv1.2", "TLSv1.3")
    assert server.tls_info is not None
    client.send(REGISTER, 1.0)
    server.send(OK, 1.0)
    ce, se = pump(client, server, 1.0)
    assert se == [SipMessageReceived(REGISTER, False)] and ce == [SipMessageReceived(OK, False)]


def test_close_sends_close_notify_and_ends_cleanly() -> None:
    client, server = pair()
    pump(client, server)
    client.close(2.0)
    ce, se = pump(client, server, 2.0)
    assert isinstance(se[-1], ConnectionClosed) and se[-1].clean
    assert server.transport_action is TransportAction.CLOSE
    assert isinstance(ce[-1], ConnectionClosed) and ce[-1].clean
    # the server's close_notify reached the client: it saw EOF and closes too
    assert client.transport_action is TransportAction.CLOSE


def test_wrong_ca_fails_the_tls_handshake() -> None:
    bad = TLSDomain(name="c", side="client", ca_list=certs().other_ca)
    client, server = pair(client_tls=bad)
    ce, _ = pump(client, server)
    assert isinstance(ce[-1], ConnectionClosed) and ce[-1].cause is Cause.TLS_FAILED
    assert "certificate" in ce[-1].detail
    assert client.transport_action is TransportAction.CLOSE


def test_wrong_host_name_fails() -> None:
    client, server = pair(host="wrong.example.org")
    ce, _ = pump(client, server)
    assert isinstance(ce[-1], ConnectionClosed) and ce[-1].cause is Cause.TLS_FAILED


def test_tls_handshake_timeout() -> None:
    config = Config(tls_handshake_timeout=2.0)
    server = Driver(context_for(server_domain()), ServerConnection(0.0, config), 0.0)
    assert server.get_timer() == 2.0
    server.handle_timer(2.0)
    [event] = server.events()
    assert isinstance(event, ConnectionClosed) and event.cause is Cause.TLS_HANDSHAKE_TIMEOUT
    assert server.transport_action is TransportAction.CLOSE and server.get_timer() is None


def test_send_timeout() -> None:
    client, server = pair(Config(send_timeout=3.0, ping_interval=None))
    pump(client, server)
    server.send_blocked(5.0)
    assert server.get_timer() == 8.0
    server.send_blocked(None)
    assert server.get_timer() is None
    server.send_blocked(6.0)
    server.handle_timer(9.0)
    [event] = server.events()
    assert isinstance(event, ConnectionClosed) and event.cause is Cause.SEND_TIMEOUT


def test_require_cert() -> None:
    strict = server_domain(require_cert=True, ca_list=certs().ca)
    client, server = pair(server_tls=strict)
    ce, se = pump(client, server)
    assert any(isinstance(e, ConnectionClosed) for e in ce + se)
    with_cert = client_domain(certificate=certs().client)
    client, server = pair(server_tls=strict, client_tls=with_cert)
    ce, se = pump(client, server)
    assert [type(e) for e in se] == [Opened]
    assert server.tls_info is not None and server.tls_info.peer_certificate


def test_many_tls_records_are_one_chunk() -> None:
    config = Config(max_msg_chunks=1, max_message_size=100_000)
    client, server = pair(config)
    pump(client, server)
    big = b"MESSAGE sip:a@b SIP/2.0\r\n\r\n" + b"x" * 60_000  # several 16 KiB TLS records
    client.send(big, 1.0)
    _, se = pump(client, server, 1.0)
    assert se == [SipMessageReceived(big, False)]


def test_flushing_the_last_bytes_is_bounded_by_send_timeout() -> None:
    client, server = pair(Config(send_timeout=3.0))
    pump(client, server)
    server.close(1.0)
    server.data_to_send()  # the Close; the peer never reads it
    server.send_blocked(1.0)
    client.receive_eof(1.0)
    assert server.get_timer() is not None
    server.receive_eof(1.5)
    assert server.transport_action is TransportAction.CLOSE
    assert server.get_timer() == 4.0  # the write still pending is bounded
    aborted_before = server.must_abort
    server.handle_timer(4.0)
    assert not aborted_before
    assert server.must_abort
    assert server.get_timer() is None
