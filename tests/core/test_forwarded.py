"""`Forwarded` (RFC 7239) and `X-Forwarded-For` from trusted proxies, alone (`forwarded_client`)
and as the server core applies them to its upgrade request; `Listener`."""

from __future__ import annotations

import pytest
from core_helpers import request
from hypothesis import given
from hypothesis import strategies as st

from sansio_wss import (
    Cause,
    Config,
    ConfigError,
    Listener,
    Opened,
    ProxyPolicy,
    ServerConnection,
    TraceConfig,
    Tracer,
)
from sansio_wss.events import Headers
from sansio_wss.forwarded import forwarded_client

NGINX = ("127.0.0.1", 40000)
XFF = ProxyPolicy(trusted=["127.0.0.0/8", "10.0.0.0/8"], forwarded="x-forwarded-for")
RFC7239 = ProxyPolicy(trusted=["127.0.0.0/8", "10.0.0.0/8"], forwarded="forwarded")


def xff(*values: str) -> Headers:
    return tuple(("X-Forwarded-For", value) for value in values)


def fwd(*values: str) -> Headers:
    return tuple(("Forwarded", value) for value in values)


# ------------------------------------------------------------ X-Forwarded-For


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        (xff("203.0.113.9"), ("203.0.113.9", 0)),
        (xff("203.0.113.9:5061"), ("203.0.113.9", 5061)),
        (xff("2001:db8::9"), ("2001:db8::9", 0)),
        (xff("[2001:db8::9]:5061"), ("2001:db8::9", 5061)),
        (xff("[2001:DB8:0::9]"), ("2001:db8::9", 0)),
        # Each trusted proxy appended its peer: the rightmost untrusted entry is the client.
        (xff("198.51.100.1, 203.0.113.9, 10.1.1.1"), ("203.0.113.9", 0)),
        # Several fields are one list, in order.
        (xff("198.51.100.1", "203.0.113.9", "10.1.1.1"), ("203.0.113.9", 0)),
        # A client that forges entries to the left gains nothing.
        (xff("127.0.0.1, 203.0.113.9"), ("203.0.113.9", 0)),
        # Every hop trusted: the leftmost is as far as we can see.
        (xff("10.9.9.9, 10.1.1.1"), ("10.9.9.9", 0)),
        # What names no address stops the walk at the last trusted proxy.
        (xff("203.0.113.9, unknown"), None),
        (xff("203.0.113.9, 10.1.1.1, garbage"), None),
        (xff("203.0.113.9, bad, 10.1.1.1"), ("10.1.1.1", 0)),
        (xff("203.0.113.9:99999"), None),
        (xff("203.0.113.9:_port"), None),
        (xff("fe80::1%eth0"), None),
        (xff("[2001:db8::9]x"), None),
        (xff("[203.0.113.9]:5061"), None),
        (xff(" , 203.0.113.9 ,"), ("203.0.113.9", 0)),
        ((), None),
        ((("Forwarded", "for=203.0.113.9"),), None),  # the other header is not read
        (xff("127.0.0.1"), ("127.0.0.1", 0)),  # a client on the proxy's own host
    ],
)
def test_x_forwarded_for(headers: Headers, client: tuple[str, int] | None) -> None:
    assert forwarded_client(headers, NGINX, XFF) == client


def test_nothing_is_believed_from_an_untrusted_peer() -> None:
    assert forwarded_client(xff("203.0.113.9"), ("192.0.2.50", 1234), XFF) is None
    assert forwarded_client(fwd("for=203.0.113.9"), ("192.0.2.50", 1234), RFC7239) is None


def test_a_policy_without_a_header_reads_none() -> None:
    policy = ProxyPolicy(trusted=["127.0.0.1"], proxy_protocol=True)
    assert forwarded_client(xff("203.0.113.9"), NGINX, policy) is None


# ------------------------------------------------------------------- Forwarded


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        (fwd("for=203.0.113.9"), ("203.0.113.9", 0)),
        (fwd("For=203.0.113.9;proto=https;by=10.0.0.1"), ("203.0.113.9", 0)),
        (fwd('for="203.0.113.9:5061"'), ("203.0.113.9", 5061)),
        (fwd('for="[2001:db8:cafe::17]:4711"'), ("2001:db8:cafe::17", 4711)),
        (fwd('for="[2001:db8:cafe::17]"'), ("2001:db8:cafe::17", 0)),
        (fwd("for=192.0.2.43, for=198.51.100.17"), ("198.51.100.17", 0)),  # RFC 7239 section 4
        (fwd("for=192.0.2.43", "for=10.2.2.2"), ("192.0.2.43", 0)),
        (fwd('for=192.0.2.43;note="a, b; c", for=10.2.2.2'), ("192.0.2.43", 0)),
        (fwd("for=unknown"), None),
        (fwd("for=_hidden"), None),
        (fwd("for=_hidden, for=10.2.2.2"), ("10.2.2.2", 0)),
        (fwd("by=10.0.0.1;proto=https"), None),  # an element without `for`
        (fwd("for=192.0.2.43;for=192.0.2.44"), None),  # two in one element
        (fwd('for="203.0.113.9'), None),  # unterminated quoted-string: none of it
        (fwd('for=192.0.2.43, for="10.2.2.2'), None),
        (fwd("for=2001:db8::1"), None),  # IPv6 must be bracketed and quoted: this is malformed
        (fwd('for="[2001:db8::1]:_p"'), None),
    ],
)
def test_forwarded(headers: Headers, client: tuple[str, int] | None) -> None:
    assert forwarded_client(headers, NGINX, RFC7239) == client


@given(st.lists(st.text(max_size=40), max_size=4), st.sampled_from(["forwarded", "x-forwarded-for"]))
def test_any_field_values_give_an_address_or_none(values: list[str], name: str) -> None:
    policy = RFC7239 if name == "forwarded" else XFF
    found = forwarded_client(tuple((name, value) for value in values), NGINX, policy)
    assert found is None or (isinstance(found[0], str) and 0 <= found[1] <= 65535)


# ------------------------------------------------------------- in the server core


def upgraded(
    policy: ProxyPolicy | None, headers: list[tuple[str, str]], config: Config | None = None
) -> ServerConnection:
    conn = ServerConnection(0.0, config, proxy=policy)
    conn.set_addresses(NGINX, ("127.0.0.1", 8080))
    conn.receive_data(request(add=headers), 0.1)
    return conn


def test_the_server_moves_remote_address_to_the_client_before_the_request_is_decided() -> None:
    conn = upgraded(XFF, [("X-Forwarded-For", "203.0.113.9")], Config(auto_accept=False))
    assert conn.remote_address == ("203.0.113.9", 0)
    assert conn.proxy_address == NGINX
    assert conn.local_address == ("127.0.0.1", 8080)
    conn.accept(0.2)
    assert any(isinstance(event, Opened) for event in conn.events())


def test_without_a_policy_the_headers_change_nothing() -> None:
    conn = upgraded(None, [("X-Forwarded-For", "203.0.113.9")])
    assert conn.remote_address == NGINX
    assert conn.proxy_address is None


def test_a_proxy_address_set_from_a_proxy_header_is_kept() -> None:
    conn = ServerConnection(0.0, proxy=XFF)
    conn.set_addresses(("10.0.0.5", 3333), ("192.0.2.1", 443), proxy=("10.9.9.9", 50000))
    conn.receive_data(request(add=[("X-Forwarded-For", "203.0.113.9")]), 0.1)
    assert conn.remote_address == ("203.0.113.9", 0)
    assert conn.proxy_address == ("10.9.9.9", 50000)
    assert conn.local_address == ("192.0.2.1", 443)


def test_a_rejected_request_does_not_move_the_address() -> None:
    conn = upgraded(XFF, [("X-Forwarded-For", "203.0.113.9")], Config(resources=frozenset({"/other"})))
    assert conn.closed_event is not None and conn.closed_event.cause is Cause.HANDSHAKE_FAILED
    assert conn.remote_address == NGINX


def test_the_trace_carries_the_client_address() -> None:
    packets: list[bytes] = []
    tracer = Tracer(packets.append, TraceConfig())
    conn = ServerConnection(0.0, proxy=XFF)
    conn.set_addresses(NGINX, ("127.0.0.1", 8080))
    trace = tracer.attach(conn, remote=NGINX, local=("127.0.0.1", 8080), now=0.0, wall=1000.0)
    conn.receive_data(request(add=[("X-Forwarded-For", "203.0.113.9")]), 0.1)
    assert trace.remote == ("203.0.113.9", 0)
    assert packets and bytes((203, 0, 113, 9)) in packets[0]
    assert bytes((127, 0, 0, 1)) in packets[0]  # our end, the local address


# ------------------------------------------------------------------- Listener


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("wss://0.0.0.0:443", Listener("0.0.0.0", 443)),
        ("ws://127.0.0.1:8080", Listener("127.0.0.1", 8080, secure=False)),
        ("ws://127.0.0.1", Listener("127.0.0.1", 80, secure=False)),
        ("wss://[::1]:0/", Listener("::1", 0)),
        ("WS://localhost:5066", Listener("localhost", 5066, secure=False)),
    ],
)
def test_listener_parse(uri: str, expected: Listener) -> None:
    assert Listener.parse(uri) == expected


@pytest.mark.parametrize(
    "uri", ["http://h:1", "ws://h:1/ws", "ws://u@h:1", "ws://h:70000", "ws://h:x", "ws://[::1"]
)
def test_listener_parse_refuses(uri: str) -> None:
    with pytest.raises(ConfigError):
        Listener.parse(uri)


def test_listener_ports_and_checks() -> None:
    config = Config(port=5061)
    assert Listener("h").port_with(config) == 5061
    assert Listener("h", secure=False).port_with(config) == 80
    assert Listener("h", 0).port_with(config) == 0
    assert Listener("h", secure=False).scheme == "ws"
    with pytest.raises(ConfigError):
        Listener("h", 65536)
    with pytest.raises(ConfigError):
        Listener("h", True)
    with pytest.raises(ConfigError):
        Listener("h", proxy="10.0.0.0/8")  # type: ignore[arg-type]
