"""The shared driver on a plain listener and behind a PROXY header, in memory: what it reads first,
what it refuses (and that it then answers nothing at all), and its deadlines."""

from __future__ import annotations

import proxy_wire
from adapter_helpers import OK, REGISTER, client_domain, server_domain
from test_driver import pump
from wire import request

from sansio_wss import (
    Cause,
    ClientConnection,
    Opened,
    ProxyPolicy,
    ServerConnection,
    SipMessageReceived,
    TransportAction,
)
from sansio_wss.adapters._driver import Driver
from sansio_wss.adapters._tls import context_for

PROXY = ProxyPolicy(trusted=["10.0.0.0/8"], proxy_protocol=True, header_timeout=3.0)
BALANCER = ("10.0.0.5", 50000)
LISTENER = ("10.0.0.9", 5061)
CLIENT, VIP = ("203.0.113.9", 40404), ("198.51.100.1", 443)


def server(secure: bool, peer: tuple[str, int] = BALANCER) -> Driver:
    context = context_for(server_domain()) if secure else None
    driver = Driver(context, ServerConnection(0.0, proxy=PROXY), 0.0, proxy=PROXY)
    driver.set_addresses(peer, LISTENER, 0.0)
    driver.start(0.0)
    return driver


def action(driver: Driver) -> TransportAction:
    """Read afresh each time (mypy would keep a property's first value)."""
    return driver.transport_action


def tls_client() -> Driver:
    client = Driver(
        context_for(client_domain()), ClientConnection("localhost", 0.0), 0.0, server_hostname="localhost"
    )
    client.set_addresses(LISTENER, ("10.0.0.77", 1234), 0.0)
    client.start(0.0)
    return client


def test_a_plain_driver_passes_bytes_straight_to_the_core() -> None:
    driver = Driver(None, ServerConnection(0.0), 0.0)
    driver.set_addresses(("192.0.2.1", 1), LISTENER, 0.0)
    driver.start(0.0)
    assert driver.data_to_send() == b"" and driver.get_timer() == 10.0  # the core's handshake timer
    driver.receive(memoryview(request()), 0.1)
    assert any(isinstance(event, Opened) for event in driver.events())
    assert driver.data_to_send().startswith(b"HTTP/1.1 101 ")
    assert driver.tls_info is None


def test_a_proxy_header_then_tls_in_the_same_read() -> None:
    client, ours = tls_client(), server(secure=True)
    hello = client.data_to_send()
    ours.receive(proxy_wire.v2(CLIENT, VIP) + hello, 0.0)
    client.receive(ours.data_to_send(), 0.0)  # the ServerHello: TLS went on from the header's end
    _, seen_ours = pump(client, ours)
    assert any(isinstance(event, Opened) for event in seen_ours)
    assert (ours.remote, ours.local, ours.connection.proxy_address) == (CLIENT, VIP, BALANCER)
    client.send(REGISTER, 0.0)
    ours.receive(client.data_to_send(), 0.0)
    assert SipMessageReceived(REGISTER, False) in ours.events()
    ours.send(OK, 0.0)
    client.receive(ours.data_to_send(), 0.0)
    assert SipMessageReceived(OK, False) in client.events()


def test_an_untrusted_peer_gets_nothing_even_for_a_valid_header_and_hello() -> None:
    client, ours = tls_client(), server(secure=True, peer=("192.0.2.66", 1))
    closed = ours.connection.closed_event
    assert closed is not None and closed.cause is Cause.PROXY_FAILED
    assert closed.detail == "192.0.2.66 is not a trusted proxy"
    assert ours.transport_action is TransportAction.CLOSE
    ours.receive(proxy_wire.v2(CLIENT, VIP) + client.data_to_send(), 0.0)
    assert ours.data_to_send() == b""  # no ServerHello, no HTTP, nothing
    assert ours.remote == ("192.0.2.66", 1)  # the header was not read
    assert ours.proxy_header is None


def test_a_late_header_fails_at_its_deadline_before_tls_or_the_handshake_timer() -> None:
    ours = server(secure=True)
    assert ours.get_timer() == 3.0  # header_timeout, before tls_handshake_timeout and handshake_timeout
    ours.receive(b"PROXY TCP4 ", 1.0)
    ours.handle_timer(2.9)
    assert action(ours) is TransportAction.NONE  # still waiting
    ours.handle_timer(3.0)
    closed = ours.connection.closed_event
    assert closed is not None and closed.cause is Cause.PROXY_FAILED
    assert closed.detail == "no PROXY header within header_timeout"
    assert ours.data_to_send() == b"" and action(ours) is TransportAction.CLOSE


def test_a_header_that_is_done_leaves_the_other_timers() -> None:
    ours = server(secure=False)
    ours.receive(proxy_wire.v1(CLIENT, VIP), 0.5)
    assert ours.get_timer() == 10.0  # the core's handshake timer, from accept
    assert ours.proxy_header is not None and ours.proxy_header.version == 1
    ours.receive(request(), 0.6)
    assert any(isinstance(event, Opened) for event in ours.events())
    assert ours.remote == CLIENT
