"""The server's opening handshake: every rejection's exact status, and what is accepted."""

from __future__ import annotations

import pytest
from core_helpers import ACCEPT, BASE_FIELDS, KEY, action, closed, request, state

from sansio_wss import (
    Cause,
    Config,
    HandshakeRequest,
    LocalProtocolError,
    Opened,
    ServerConnection,
    State,
    TransportAction,
)

V13 = ("Sec-WebSocket-Version", "13")

REJECTED: list[tuple[str, bytes, Config, int]] = [
    ("POST", request(line="POST /ws HTTP/1.1"), Config(), 400),
    ("lowercase method", request(line="get /ws HTTP/1.1"), Config(), 400),
    ("HTTP/1.0", request(line="GET /ws HTTP/1.0"), Config(), 400),
    ("HTTP/2.0", request(line="GET /ws HTTP/2.0"), Config(), 400),
    ("no version in request line", request(line="GET /ws"), Config(), 400),
    ("absolute-form target", request(line="GET http://x.example/ws HTTP/1.1"), Config(), 400),
    ("asterisk target", request(line="GET * HTTP/1.1"), Config(), 400),
    ("two spaces in request line", request(line="GET  /ws HTTP/1.1"), Config(), 400),
    ("missing Host", request(drop=("Host",)), Config(), 400),
    ("empty Host", request(replace={"Host": ""}), Config(), 400),
    ("two Host", request(add=[("Host", "other.example")]), Config(), 400),
    ("missing Upgrade", request(drop=("Upgrade",)), Config(), 400),
    ("Upgrade h2c", request(replace={"Upgrade": "h2c"}), Config(), 400),
    ("missing Connection", request(drop=("Connection",)), Config(), 400),
    ("Connection keep-alive only", request(replace={"Connection": "keep-alive"}), Config(), 400),
    ("missing key", request(drop=("Sec-WebSocket-Key",)), Config(), 400),
    ("12-char key (dart-sip-ua)", request(replace={"Sec-WebSocket-Key": "8odqnq6p8j4="}), Config(), 400),
    ("24 chars, not base64", request(replace={"Sec-WebSocket-Key": "!" * 24}), Config(), 400),
    ("24 chars, 17 bytes", request(replace={"Sec-WebSocket-Key": "A" * 23 + "="}), Config(), 400),
    ("two keys", request(add=[("Sec-WebSocket-Key", KEY)]), Config(), 400),
    ("missing version", request(drop=("Sec-WebSocket-Version",)), Config(), 400),
    ("version 8", request(replace={"Sec-WebSocket-Version": "8"}), Config(), 426),
    ("version list", request(replace={"Sec-WebSocket-Version": "13, 8"}), Config(), 426),
    ("two versions", request(add=[V13]), Config(), 400),
    ("missing Origin", request(drop=("Origin",)), Config(), 403),
    (
        "Origin not allowed",
        request(),
        Config(allowed_origins=frozenset({"https://other.example"})),
        403,
    ),
    (
        "Origin differs in port",
        request(),
        Config(allowed_origins=frozenset({"https://app.example.com:443"})),
        403,
    ),
    ("two Origin", request(add=[("Origin", "https://evil.example")]), Config(), 400),
    ("no subprotocol", request(drop=("Sec-WebSocket-Protocol",)), Config(), 400),
    ("msrp only", request(replace={"Sec-WebSocket-Protocol": "msrp"}), Config(), 400),
    ("SIP in capitals", request(replace={"Sec-WebSocket-Protocol": "SIP"}), Config(), 400),
    ("resource not served", request(), Config(resources=frozenset({"/sip"})), 404),
    ("header line without colon", request(add=[("X-Bad", "v")]).replace(b"X-Bad:", b"X-Bad"), Config(), 400),
    ("space before colon", request(add=[("X-Bad", "v")]).replace(b"X-Bad:", b"X-Bad :"), Config(), 400),
    ("obs-fold", request(add=[("X-Long", "a")]).replace(b"X-Long: a", b"X-Long: a\r\n b"), Config(), 400),
    ("NUL in a value", request(add=[("X-Nul", "a\x00b")]), Config(), 400),
    ("CR in a value", request(add=[("X-Cr", "a\rb")]), Config(), 400),
    ("non-token header name", request(add=[("X(y)", "v")]), Config(), 400),
    ("Content-Length on GET", request(add=[("Content-Length", "5")]), Config(), 400),
    ("Transfer-Encoding on GET", request(add=[("Transfer-Encoding", "chunked")]), Config(), 400),
    ("leading empty line", b"\r\n" + request(), Config(), 400),
    ("bare LF line ends", request().replace(b"\r\n", b"\n"), Config(), 400),
    ("head over the limit", request(add=[("X-Big", "x" * 20000)]), Config(), 431),
    (
        "head just over a small limit",
        request(add=[("X-Big", "x" * 300)]),
        Config(max_handshake_size=400),
        431,
    ),
    ("frame before the 101", request() + b"\x81\x80abcd", Config(), 400),
]


@pytest.mark.parametrize(("name", "data", "config", "status"), REJECTED, ids=[r[0] for r in REJECTED])
def test_rejections_get_their_status(name: str, data: bytes, config: Config, status: int) -> None:
    conn = ServerConnection(0.0, config)
    conn.receive_data(data, 0.0)
    out = conn.data_to_send()
    assert out.startswith(f"HTTP/1.1 {status} ".encode()), out
    event = closed(conn.events())
    assert (event.status, event.cause, event.code, event.clean) == (
        status,
        Cause.HANDSHAKE_FAILED,
        1006,
        False,
    )
    assert event.detail
    assert state(conn) is State.CLOSED
    assert action(conn) is TransportAction.HALF_CLOSE
    head, _, body = out.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    if status in (400, 426):
        assert b"Sec-WebSocket-Version: 13" in head
    if status == 426:
        assert b"Upgrade: websocket" in head


def test_rejection_lingers_until_eof_or_close_timeout() -> None:
    conn = ServerConnection(0.0, Config(close_timeout=2.0))
    conn.receive_data(request(drop=("Origin",)), 0.0)
    assert action(conn) is TransportAction.HALF_CLOSE
    assert conn.get_timer() == 2.0
    closed(conn.events())
    conn.data_to_send()
    conn.receive_data(b"more junk from the client", 1.0)
    assert conn.events() == [] and conn.data_to_send() == b""
    assert action(conn) is TransportAction.HALF_CLOSE
    conn.handle_timer(2.0)
    assert action(conn) is TransportAction.CLOSE
    assert conn.get_timer() is None
    other = ServerConnection(0.0)
    other.receive_data(request(drop=("Origin",)), 0.0)
    other.receive_eof(0.5)
    assert action(other) is TransportAction.CLOSE


ACCEPTED: list[tuple[str, bytes, Config]] = [
    ("browser", request(), Config()),
    ("Firefox Connection list", request(replace={"Connection": "keep-alive, Upgrade"}), Config()),
    ("Upgrade in another case", request(replace={"Upgrade": "WebSocket"}), Config()),
    (
        "Connection split over two fields",
        request(add=[("Connection", "upgrade")]).replace(b"Connection: Upgrade", b"Connection: keep-alive"),
        Config(),
    ),
    ("sip among several subprotocols", request(replace={"Sec-WebSocket-Protocol": "msrp, sip"}), Config()),
    (
        "subprotocols over two fields",
        request(replace={"Sec-WebSocket-Protocol": "msrp"}, add=[("Sec-WebSocket-Protocol", "sip")]),
        Config(),
    ),
    ("no Origin, require_origin off", request(drop=("Origin",)), Config(require_origin=False)),
    (
        "file:// page Origin null",
        request(replace={"Origin": "null"}),
        Config(allowed_origins=frozenset({"null"})),
    ),
    (
        "OpenSIPS client Origin ip:port",
        request(replace={"Origin": "10.0.0.1:5061"}),
        Config(allowed_origins=frozenset({"10.0.0.1:5061"})),
    ),
    ("resource served", request(), Config(resources=frozenset({"/ws", "/sip"}))),
    ("whitespace around values", request(replace={"Upgrade": "  websocket\t"}), Config()),
    ("Content-Length 0", request(add=[("Content-Length", "0")]), Config()),
    (
        "deflate offered, not taken",
        request(add=[("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]),
        Config(),
    ),
    ("header names in lower case", request().replace(b"Sec-WebSocket-Key", b"sec-websocket-key"), Config()),
    ("obs-text in a value", request(add=[("User-Agent", "caf\xe9")]), Config()),
]


@pytest.mark.parametrize(("name", "data", "config"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_requests(name: str, data: bytes, config: Config) -> None:
    conn = ServerConnection(0.0, config)
    conn.receive_data(data, 0.0)
    out = conn.data_to_send()
    assert out == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
    )
    [opened] = conn.events()
    assert isinstance(opened, Opened)
    assert (opened.subprotocol, opened.resource, opened.request, opened.response) == ("sip", "/ws", data, out)
    assert state(conn) is State.OPEN and action(conn) is TransportAction.NONE


def test_request_split_over_reads_is_accepted() -> None:
    data = request()
    conn = ServerConnection(0.0)
    for piece in (data[:10], data[10:100], data[100:-2], data[-2:]):
        conn.receive_data(piece, 0.0)
    assert state(conn) is State.OPEN


def test_request_over_more_reads_than_max_msg_chunks_is_dropped_silently() -> None:
    data = request()
    conn = ServerConnection(0.0, Config(max_msg_chunks=4))
    for i in range(4):
        conn.receive_data(data[i * 10 : i * 10 + 10], 0.0)
    event = closed(conn.events())
    assert (event.cause, event.status, event.code) == (Cause.CHUNK_LIMIT, None, 1006)
    assert "max_msg_chunks" in event.detail
    assert conn.data_to_send() == b""
    assert action(conn) is TransportAction.CLOSE


def test_manual_accept_with_extra_headers() -> None:
    conn = ServerConnection(0.0, Config(auto_accept=False))
    conn.receive_data(request(), 0.0)
    [req] = conn.events()
    assert isinstance(req, HandshakeRequest)
    assert (req.resource, req.host, req.origin, req.subprotocols) == (
        "/ws",
        "sip.example.com:8443",
        "https://app.example.com",
        ("sip",),
    )
    assert conn.request is req and conn.data_to_send() == b""
    conn.accept(0.1, extra_headers=(("Set-Cookie", "a=b"),))
    assert b"\r\nSet-Cookie: a=b\r\n" in conn.data_to_send()
    assert state(conn) is State.OPEN
    with pytest.raises(LocalProtocolError):
        conn.accept(0.2)


def test_manual_reject_with_challenge() -> None:
    conn = ServerConnection(0.0, Config(auto_accept=False))
    conn.receive_data(request(), 0.0)
    conn.events()
    with pytest.raises(LocalProtocolError):
        conn.reject(200, 0.0)
    conn.reject(401, 0.1, headers=(("WWW-Authenticate", 'Digest realm="x"'),), body=b"")
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b'WWW-Authenticate: Digest realm="x"' in out and out.endswith(b"\r\n\r\n")
    event = closed(conn.events())
    assert (event.cause, event.status) == (Cause.HANDSHAKE_REJECTED, 401)


@pytest.mark.parametrize(
    "headers",
    [
        (("Sec-WebSocket-Protocol", "msrp"),),
        (("X-A", "b\r\nInjected: 1"),),
        (("Upgrade", "h2c"),),
        (("X", "€"),),
        (("", "v"),),
        (("Bad Name", "x"),),
        (("X:Y", "z"),),
        (("X", "a\x00b"),),
    ],
)
def test_accept_refuses_bad_extra_headers(headers: tuple[tuple[str, str], ...]) -> None:
    conn = ServerConnection(0.0, Config(auto_accept=False))
    conn.receive_data(request(), 0.0)
    with pytest.raises(LocalProtocolError):
        conn.accept(0.0, headers)
    assert state(conn) is State.CONNECTING
    if headers[0][0] not in ("Sec-WebSocket-Protocol", "Upgrade"):
        with pytest.raises(LocalProtocolError):
            conn.reject(403, 0.0, headers)
    assert conn.request is not None  # nothing changed: the request still waits
    conn.accept(0.0)
    assert state(conn) is State.OPEN


def test_reject_refuses_header_injection() -> None:
    conn = ServerConnection(0.0, Config(auto_accept=False))
    conn.receive_data(request(), 0.0)
    with pytest.raises(LocalProtocolError):
        conn.reject(403, 0.0, headers=(("X", "a\nb"),))


def test_accept_without_request_is_a_local_error() -> None:
    conn = ServerConnection(0.0, Config(auto_accept=False))
    with pytest.raises(LocalProtocolError):
        conn.accept(0.0)
    with pytest.raises(LocalProtocolError):
        conn.send(b"x", 0.0)


def test_data_while_awaiting_accept_gets_400() -> None:
    conn = ServerConnection(0.0, Config(auto_accept=False))
    conn.receive_data(request(), 0.0)
    conn.events()
    conn.receive_data(b"\x81\x80abcd", 0.1)
    assert conn.data_to_send().startswith(b"HTTP/1.1 400 ")
    assert closed(conn.events()).cause is Cause.HANDSHAKE_FAILED


def test_handshake_timeout_drops_a_slow_client() -> None:
    conn = ServerConnection(10.0, Config(handshake_timeout=5.0))
    conn.receive_data(request()[:20], 11.0)
    assert conn.get_timer() == 15.0
    conn.handle_timer(14.9)
    assert state(conn) is State.CONNECTING
    conn.handle_timer(15.0)
    event = closed(conn.events())
    assert event.cause is Cause.HANDSHAKE_TIMEOUT and conn.data_to_send() == b""
    assert action(conn) is TransportAction.CLOSE and conn.get_timer() is None


def test_handshake_timeout_covers_a_pending_accept() -> None:
    conn = ServerConnection(0.0, Config(auto_accept=False, handshake_timeout=1.0))
    conn.receive_data(request(), 0.0)
    conn.handle_timer(1.0)
    assert closed(conn.events()).cause is Cause.HANDSHAKE_TIMEOUT
    assert conn.request is None


def test_no_handshake_timeout_when_disabled() -> None:
    assert ServerConnection(0.0, Config(handshake_timeout=None)).get_timer() is None


def test_eof_during_handshake() -> None:
    conn = ServerConnection(0.0)
    conn.receive_data(request()[:30], 0.0)
    conn.receive_eof(0.1)
    event = closed(conn.events())
    assert (event.cause, event.code, event.clean) == (Cause.EOF, 1006, False)
    assert action(conn) is TransportAction.CLOSE


def test_close_before_open_drops() -> None:
    conn = ServerConnection(0.0)
    conn.close(0.0)
    assert closed(conn.events()).cause is Cause.LOCAL_CLOSED
    assert action(conn) is TransportAction.CLOSE
    conn.receive_data(request(), 0.1)
    assert conn.events() == [] and conn.data_to_send() == b""


def test_base_fields_are_what_a_browser_sends() -> None:
    names = [name for name, _ in BASE_FIELDS]
    assert names == [
        "Host",
        "Connection",
        "Upgrade",
        "Origin",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Protocol",
    ]
