"""The client's opening handshake: our request, and every way the server's reply can fail."""

from __future__ import annotations

import pytest
from core_helpers import KEY, REGISTER, action, closed, reply_101, server_frame, state

from sansio_wss import (
    Cause,
    ClientConnection,
    Config,
    HandshakeRejected,
    LocalProtocolError,
    Opened,
    SipMessageReceived,
    State,
    TransportAction,
)


def client(config: Config | None = None, host: str = "sip.example.com", **kw: object) -> ClientConnection:
    return ClientConnection(host, 0.0, config=config, key=KEY, **kw)  # type: ignore[arg-type]


def test_request_bytes() -> None:
    out = client().data_to_send()
    assert out == (
        b"GET / HTTP/1.1\r\nHost: sip.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: sip\r\nOrigin: https://sip.example.com\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("host", "port", "host_field"),
    [
        ("sip.example.com", 443, "sip.example.com"),
        ("sip.example.com", 8443, "sip.example.com:8443"),
        ("2001:db8::1", 443, "[2001:db8::1]"),
        ("2001:db8::1", 5062, "[2001:db8::1]:5062"),
        ("192.0.2.10", 10443, "192.0.2.10:10443"),
    ],
)
def test_host_field(host: str, port: int, host_field: str) -> None:
    out = client(host=host, port=port).data_to_send()
    assert f"\r\nHost: {host_field}\r\n".encode() in out
    assert f"\r\nOrigin: https://{host_field}\r\n".encode() in out


def test_resource_origin_and_port_from_config() -> None:
    config = Config(resource="/sip", origin="https://pbx.example.net", port=10443)
    out = client(config).data_to_send()
    assert out.startswith(b"GET /sip HTTP/1.1\r\nHost: sip.example.com:10443\r\n")
    assert b"Origin: https://pbx.example.net\r\n" in out
    assert b"Origin" not in client(Config(send_origin=False)).data_to_send()


def test_from_uri() -> None:
    conn = ClientConnection.from_uri("wss://[2001:db8::1]:8443/ws", 0.0)
    assert conn.data_to_send().startswith(b"GET /ws HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n")
    default = ClientConnection.from_uri("wss://pbx.example.net", 0.0, Config(port=7443, resource="/r"))
    assert default.data_to_send().startswith(b"GET /r HTTP/1.1\r\nHost: pbx.example.net:7443\r\n")


def test_fresh_keys() -> None:
    a = ClientConnection("h", 0.0).data_to_send()
    b = ClientConnection("h", 0.0).data_to_send()
    assert a != b


def test_good_reply_opens_and_frames_in_the_same_read_are_delivered() -> None:
    conn = client()
    conn.data_to_send()
    conn.receive_data(reply_101() + server_frame(1, REGISTER), 0.0)
    opened, message = conn.events()
    assert isinstance(opened, Opened) and opened.subprotocol == "sip"
    assert opened.response == reply_101()
    assert message == SipMessageReceived(REGISTER, False)
    assert state(conn) is State.OPEN and conn.get_timer() == 30.0


def _reply(status_line: str, *fields: str, body: str = "") -> bytes:
    return (status_line + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n" + body).encode()


GOOD_101 = [
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    "Sec-WebSocket-Protocol: sip",
]


def _without(prefix: str, *extra: str) -> list[str]:
    return [f for f in GOOD_101 if not f.startswith(prefix)] + list(extra)


FAILED: list[tuple[str, bytes, int | None]] = [
    (
        "wrong accept",
        _reply(
            "HTTP/1.1 101 Switching Protocols",
            *_without("Sec-WebSocket-Accept", "Sec-WebSocket-Accept: x3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ),
        101,
    ),
    (
        "truncated accept (OpenSIPS prefix bug)",
        _reply(
            "HTTP/1.1 101 Switching Protocols",
            *_without("Sec-WebSocket-Accept", "Sec-WebSocket-Accept: s3pPLMBiTx"),
        ),
        101,
    ),
    (
        "accept in lower case",
        _reply(
            "HTTP/1.1 101 Switching Protocols",
            *_without("Sec-WebSocket-Accept", "Sec-WebSocket-Accept: S3PPLMBITXAQ9KYGZZHZRBK+XOO="),
        ),
        101,
    ),
    ("no accept", _reply("HTTP/1.1 101 Switching Protocols", *_without("Sec-WebSocket-Accept")), 101),
    ("no subprotocol", _reply("HTTP/1.1 101 Switching Protocols", *_without("Sec-WebSocket-Protocol")), 101),
    (
        "other subprotocol",
        _reply(
            "HTTP/1.1 101 Switching Protocols",
            *_without("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: msrp"),
        ),
        101,
    ),
    (
        "extension not offered",
        _reply("HTTP/1.1 101 Switching Protocols", *GOOD_101, "Sec-WebSocket-Extensions: permessage-deflate"),
        101,
    ),
    ("no Upgrade", _reply("HTTP/1.1 101 Switching Protocols", *_without("Upgrade")), 101),
    ("no Connection", _reply("HTTP/1.1 101 Switching Protocols", *_without("Connection")), 101),
    ("HTTP/1.0", _reply("HTTP/1.0 101 Switching Protocols", *GOOD_101), None),
    ("garbage status line", b"SIP/2.0 200 OK\r\n\r\n", None),
    ("bare LF", _reply("HTTP/1.1 101 Switching Protocols", *GOOD_101).replace(b"\r\n", b"\n"), None),
    ("malformed field", _reply("HTTP/1.1 101 Switching Protocols", *GOOD_101, "No colon here"), 101),
    ("reply over the limit", _reply("HTTP/1.1 101 Switching Protocols", "X-Big: " + "x" * 17000), None),
]


@pytest.mark.parametrize(("name", "data", "status"), FAILED, ids=[f[0] for f in FAILED])
def test_bad_replies_fail_the_handshake(name: str, data: bytes, status: int | None) -> None:
    conn = client()
    conn.data_to_send()
    conn.receive_data(data, 0.0)
    event = closed(conn.events())
    assert (event.cause, event.status, event.code, event.clean) == (
        Cause.HANDSHAKE_FAILED,
        status,
        1006,
        False,
    )
    assert action(conn) is TransportAction.CLOSE
    assert conn.data_to_send() == b""


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (_reply("HTTP/1.1 302 Moved Temporarily", "Location: /ws", "Content-Length: 0"), 302),
        (
            _reply(
                "HTTP/1.1 401 Unauthorized",
                'WWW-Authenticate: Digest realm="pbx"',
                "Content-Length: 5",
                body="nope\n",
            ),
            401,
        ),
        (_reply("HTTP/1.1 403 Forbidden", "Content-Length: 0"), 403),
        (_reply("HTTP/1.1 400 ", "Sec-WebSocket-Version: 13"), 400),
        (_reply("HTTP/1.1 503 Service Unavailable"), 503),
    ],
)
def test_non_101_replies_are_rejections_with_their_headers(data: bytes, status: int) -> None:
    conn = client()
    conn.data_to_send()
    conn.receive_data(data, 0.0)
    rejected, event = conn.events()
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.status == status
    assert (event.cause, event.status) == (Cause.HANDSHAKE_REJECTED, status)  # type: ignore[union-attr]
    if status == 302:
        assert ("Location", "/ws") in rejected.headers
    if status == 401:
        assert rejected.body == b"nope\n"


def test_reply_over_more_reads_than_max_msg_chunks() -> None:
    data = reply_101()
    conn = client(Config(max_msg_chunks=2))
    conn.receive_data(data[:5], 0.0)
    assert state(conn) is State.CONNECTING
    conn.receive_data(data[5:10], 0.0)
    assert closed(conn.events()).cause is Cause.CHUNK_LIMIT


def test_reply_in_pieces_within_the_limit() -> None:
    data = reply_101()
    conn = client(Config(max_msg_chunks=3))
    for piece in (data[:5], data[5:-1], data[-1:]):
        conn.receive_data(piece, 0.0)
    assert state(conn) is State.OPEN


def test_handshake_timeout() -> None:
    conn = client(Config(handshake_timeout=0.3))
    assert conn.get_timer() == 0.3
    conn.handle_timer(0.3)
    event = closed(conn.events())
    assert event.cause is Cause.HANDSHAKE_TIMEOUT and action(conn) is TransportAction.CLOSE


def test_opensips_parameters_build_a_client() -> None:
    config = Config.from_opensips({"wss_resource": "/wss", "wss_port": 44344, "wss_handshake_timeout": 300})
    conn = ClientConnection("10.0.0.1", 5.0, config=config)
    assert conn.data_to_send().startswith(b"GET /wss HTTP/1.1\r\nHost: 10.0.0.1:44344\r\n")
    assert conn.get_timer() == pytest.approx(5.3)


@pytest.mark.parametrize(
    ("host", "port", "resource"),
    [
        ("evil\r\nX-Injected", 443, "/"),
        ("a b", 443, "/"),
        ("", 443, "/"),
        ("::1::2", 443, "/"),
        ("h", 0, "/"),
        ("h", 70000, "/"),
        ("h", 443, "/x y"),
        ("h", 443, "ws"),
        ("h", 443, "/é"),
        ("h", 443, "/a#b"),
    ],
)
def test_invalid_destinations_are_refused_before_anything_is_written(
    host: str, port: int, resource: str
) -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection(host, 0.0, port=port, resource=resource)


def test_internationalised_host_is_idna_encoded() -> None:
    out = ClientConnection("bücher.example", 0.0).data_to_send()
    assert b"\r\nHost: xn--bcher-kva.example\r\n" in out


def test_ipv6_host_is_normalised() -> None:
    assert b"\r\nHost: [2001:db8::1]\r\n" in ClientConnection("2001:0db8:0::1", 0.0).data_to_send()
