"""The SIP layer alone: start lines, CRLF keepalives, text or binary, URI and Via helpers."""

from __future__ import annotations

import pytest
from core_helpers import REGISTER, frame, open_server, state

from sansio_wss import CrlfKeepalive, InvalidSipMessage, SipMessageReceived, State, sip


@pytest.mark.parametrize(
    "message",
    [
        REGISTER,
        b"INVITE sip:bob@example.com SIP/2.0\r\n\r\n",
        b"OPTIONS sips:[2001:db8::1]:5061;transport=ws SIP/2.0\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        b"SIP/2.0 401 \r\n\r\n",
        b"SIP/2.0 183 Session Progress\r\n",
        b"sip/2.0 100 trying\r\n",
        b"MESSAGE tel:+15551234 SIP/2.0\r\n",
    ],
)
def test_valid_start_lines(message: bytes) -> None:
    assert sip.check_start_line(message) is None
    assert sip.receive(message, False) == (SipMessageReceived(message, False), None)


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"hello",
        b"GET / HTTP/1.1\r\n\r\n",
        b"REGISTER sip:x SIP/3.0\r\n",
        b"REGISTER  sip:x SIP/2.0\r\n",
        b"REGISTER sip:x SIP/2.0\n",
        b"SIP/2.0 99 Too Low\r\n",
        b"SIP/2.0 700 Too High\r\n",
        b"SIP/2.0 200\r\n",
        b"\r\n\r\n\r\n",
        b" REGISTER sip:x SIP/2.0\r\n",
    ],
)
def test_garbage_is_an_event_and_the_connection_stays(message: bytes) -> None:
    event, reply = sip.receive(message, True)
    assert isinstance(event, InvalidSipMessage) and reply is None
    assert (event.message, event.binary) == (message, True)
    conn = open_server()
    conn.receive_data(frame(2, message) + frame(1, REGISTER), 1.0)
    assert [type(e) for e in conn.events()] == [InvalidSipMessage, SipMessageReceived]
    assert state(conn) is State.OPEN


def test_keepalives() -> None:
    assert sip.receive(b"\r\n\r\n", False) == (CrlfKeepalive(True), b"\r\n")
    assert sip.receive(b"\r\n", True) == (CrlfKeepalive(False), None)
    conn = open_server()
    conn.receive_data(frame(1, b"\r\n\r\n") + frame(2, b"\r\n\r\n") + frame(1, b"\r\n"), 1.0)
    assert conn.events() == [CrlfKeepalive(True), CrlfKeepalive(True), CrlfKeepalive(False)]
    assert conn.data_to_send() == b"\x81\x02\r\n\x82\x02\r\n"


def test_is_text() -> None:
    assert sip.is_text(b"plain")
    assert sip.is_text("hé".encode())
    assert not sip.is_text(b"\xff")
    assert not sip.is_text(b"\xed\xa0\x80")


def test_via_transport() -> None:
    assert sip.via_transport() == "WSS"
    assert sip.via_transport(False) == "WS"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("wss://pbx.example.net", ("pbx.example.net", 443, "/", True)),
        ("wss://pbx.example.net:8443/ws?x=1", ("pbx.example.net", 8443, "/ws?x=1", True)),
        ("WSS://[2001:db8::1]/sip", ("2001:db8::1", 443, "/sip", True)),
        ("wss://[2001:db8::1]:5062", ("2001:db8::1", 5062, "/", True)),
        ("ws://10.0.0.1", ("10.0.0.1", 80, "/", False)),
    ],
)
def test_parse_ws_uri(uri: str, expected: tuple[str, int, str, bool]) -> None:
    target = sip.parse_ws_uri(uri)
    assert (target.host, target.port, target.resource, target.secure) == expected


def test_parse_ws_uri_default_port_from_config() -> None:
    assert sip.parse_ws_uri("wss://h", default_port=44344).port == 44344


@pytest.mark.parametrize(
    "uri",
    [
        "https://h/",
        "wss:/h",
        "wss://",
        "wss://h:0",
        "wss://h:70000",
        "wss://h:x",
        "wss://[::1",
        "wss://[::1]x",
        "wss://user@h/",
        "wss://h/#frag",
    ],
)
def test_parse_ws_uri_rejects(uri: str) -> None:
    with pytest.raises(ValueError):
        sip.parse_ws_uri(uri)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sip:alice@edge.example.com;transport=ws", ("edge.example.com", 80, False)),
        ("sips:alice@edge.example.com;transport=ws", ("edge.example.com", 443, True)),
        ("sip:alice@edge.example.com;transport=wss", ("edge.example.com", 443, True)),
        ("sip:edge.example.com:8443;lr;transport=WSS", ("edge.example.com", 8443, True)),
        ("sip:[2001:db8::1]:10443;transport=wss", ("2001:db8::1", 10443, True)),
        ("SIP:uh7a12ms@df7jal23ls0d.invalid;transport=ws;ob", ("df7jal23ls0d.invalid", 80, False)),
    ],
)
def test_sip_destination(uri: str, expected: tuple[str, int, bool]) -> None:
    dest = sip.sip_destination(uri)
    assert (dest.host, dest.port, dest.secure) == expected


def test_sip_destination_uses_wss_port() -> None:
    assert sip.sip_destination("sip:h;transport=wss", default_port=44344).port == 44344


@pytest.mark.parametrize(
    "uri",
    [
        "sip:h",
        "sip:h;transport=tcp",
        "tel:+1555",
        "http://h",
        "sip:",
        "sip:a:99999;transport=ws",
        "sip:a:0;transport=wss",
        "sip:[];transport=ws",
        "sip:evil\r\nX-Injected: 1;transport=ws",
    ],
)
def test_sip_destination_rejects(uri: str) -> None:
    with pytest.raises(ValueError):
        sip.sip_destination(uri)


def test_reachable() -> None:
    assert sip.reachable("pbx.example.net") and sip.reachable("192.0.2.1")
    for host in ("df7jal23ls0d.invalid", "X.INVALID.", "invalid"):
        assert not sip.reachable(host)
    assert sip.reachable("invalid.example.com")
