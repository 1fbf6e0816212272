"""Realistic inputs shared by the harnesses and the seed builder: upgrade requests and replies, SIP text."""

from __future__ import annotations

import base64
import hashlib

__all__ = [
    "CHROME_REQUEST",
    "CHROME_KEY",
    "CLIENT_KEY",
    "CLIENT_ACCEPT",
    "HOST",
    "ORIGIN",
    "SIP_MESSAGES",
    "accept_for",
    "reply_101",
]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HOST = "sip.example.com"
ORIGIN = "https://app.example.com"


def accept_for(key: str) -> str:
    """Sec-WebSocket-Accept for `key`, computed here rather than by the core (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + GUID).digest()).decode("ascii")


CHROME_KEY = "MDEyMzQ1Njc4OWFiY2RlZg=="
# Chrome 131's upgrade request, as in shared/perf/sip_payloads.py (copied: no run-time import of shared/).
CHROME_REQUEST = (
    b"GET /ws HTTP/1.1\r\n"
    b"Host: sip.example.com\r\n"
    b"Connection: Upgrade\r\n"
    b"Pragma: no-cache\r\n"
    b"Cache-Control: no-cache\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/131.0.0.0 Safari/537.36\r\n"
    b"Upgrade: websocket\r\n"
    b"Origin: https://app.example.com\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
    b"Cookie: session=3f9a1c2e7b6d4a5f8e0c1b2a3d4e5f60; _ga=GA1.1.1234567890.1700000000; "
    b"_ga_XYZ=GS1.1.1700000000.1.1.1700000100.0.0.0; theme=dark\r\n"
    b"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"Sec-WebSocket-Protocol: sip\r\n"
    b"\r\n"
)

# The client harnesses run with this fixed key (the RFC 6455 example), so a valid 101 is a constant.
CLIENT_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
CLIENT_ACCEPT = accept_for(CLIENT_KEY)


def reply_101(accept: str = CLIENT_ACCEPT, extra: bytes = b"") -> bytes:
    """A 101 reply as OpenSIPS sends it, with `extra` header lines (each ending in CRLF)."""
    return (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept.encode("ascii") + b"\r\n"
        b"Sec-WebSocket-Protocol: sip\r\n" + extra + b"\r\n"
    )


_REGISTER = (
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:alice@example.com>\r\n"
    "From: <sip:alice@example.com>;tag=65bnmj.34asd\r\n"
    "Call-ID: aiuy7k9njasd\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:uh7a12ms@df7jal23ls0d.invalid;transport=ws>;reg-id=1;"
    '+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";expires=600\r\n'
    "Supported: path, outbound, gruu\r\n"
    "User-Agent: JsSIP 3.10.1\r\n"
    "Content-Length: 0\r\n\r\n"
)
_SDP = (
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\nc=IN IP4 192.0.2.101\r\n"
    "t=0 0\r\nm=audio 49172 RTP/AVP 111 0 8 101\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)
_INVITE = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK776asdhds\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:bob@example.com>\r\n"
    'From: "Zoë Ångström" <sip:alice@example.com>;tag=1928301774\r\n'
    "Call-ID: a84b4c76e66710\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:uh7a12ms@df7jal23ls0d.invalid;transport=ws;ob>\r\n"
    "Record-Route: <sip:edge1.example.com;transport=wss;lr;r2=on>\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(_SDP)}\r\n\r\n" + _SDP
)
_OK = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK.opt7a1;received=127.0.0.1\r\n"
    "To: <sip:proxy.example.com>;tag=srv99\r\n"
    "From: <sip:alice@example.com>;tag=opt11\r\n"
    "Call-ID: opt-7a6b5c4d3e2f\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Allow: INVITE,ACK,CANCEL,BYE,OPTIONS,MESSAGE,REGISTER\r\n"
    "Content-Length: 0\r\n\r\n"
)
_BODY = "Grüße, 世界!"
_MESSAGE = (
    "MESSAGE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKmsg1\r\n"
    "To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=m1\r\n"
    "Call-ID: msg-1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain;charset=utf-8\r\n"
    f"Content-Length: {len(_BODY.encode())}\r\n\r\n" + _BODY
)

SIP_MESSAGES: tuple[bytes, ...] = (
    *(text.encode("utf-8") for text in (_REGISTER, _INVITE, _OK, _MESSAGE)),
    b"\r\n\r\n",  # RFC 5626 keepalive ping
    b"\r\n",  # its answer
    b"NOTIFY sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\n\xff\xfe",  # binary body: not UTF-8
    b"hello, not SIP",
)
"""Messages the harnesses pick from; the last four exercise keepalives, binary and InvalidSipMessage."""
