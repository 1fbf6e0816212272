"""Realistic SIP-over-WebSocket payloads and frame builders for the anchor benchmarks.

Everything here is deterministic (fixed seeds) so runs are comparable.
Sizes are exact: each generator pads a header so the whole message hits the
target byte count (Content-Length always matches the body).
"""

from __future__ import annotations

import base64
import random
import struct
from collections.abc import Callable

CRLF = "\r\n"


def _pad_to(build: Callable[[str], str], target: int) -> str:
    """build(pad: str) -> message. Grow pad until len(message.encode()) == target."""
    msg = build("")
    short = target - len(msg.encode())
    if short < 0:
        raise ValueError(f"base message already {len(msg.encode())} > {target}")
    msg = build("x" * short)
    assert len(msg.encode()) == target, (len(msg.encode()), target)
    return msg


def sip_register(target: int = 600) -> str:
    def build(pad: str) -> str:
        return CRLF.join(
            [
                "REGISTER sip:example.com SIP/2.0",
                "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks" + pad,
                "Max-Forwards: 70",
                "To: <sip:alice@example.com>",
                "From: <sip:alice@example.com>;tag=65bnmj.34asd",
                "Call-ID: aiuy7k9njasd",
                "CSeq: 1 REGISTER",
                "Contact: <sip:uh7a12ms@df7jal23ls0d.invalid;transport=ws>;reg-id=1;"
                '+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";expires=600',
                "Supported: path, outbound, gruu",
                "User-Agent: JsSIP 3.10.1",
                "Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY",
                "Content-Length: 0",
                "",
                "",
            ]
        )

    return _pad_to(build, target)


def _sip_invite(sdp: str, target: int) -> str:
    def build(pad: str) -> str:
        return (
            CRLF.join(
                [
                    "INVITE sip:bob@example.com SIP/2.0",
                    "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK776asdhds" + pad,
                    "Max-Forwards: 70",
                    "To: <sip:bob@example.com>",
                    "From: <sip:alice@example.com>;tag=1928301774",
                    "Call-ID: a84b4c76e66710",
                    "CSeq: 314159 INVITE",
                    "Contact: <sip:uh7a12ms@df7jal23ls0d.invalid;transport=ws;ob>",
                    "Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO",
                    "Supported: ice, replaces, outbound, timer",
                    "Record-Route: <sip:edge1.example.com;transport=wss;lr;r2=on>",
                    "Record-Route: <sip:10.0.0.5;lr;r2=on>",
                    'P-Asserted-Identity: "Alice" <sip:alice@example.com>',
                    "Session-Expires: 1800;refresher=uac",
                    "Min-SE: 90",
                    "User-Agent: JsSIP 3.10.1",
                    "Content-Type: application/sdp",
                    f"Content-Length: {len(sdp.encode())}",
                    "",
                    "",
                ]
            )
            + sdp
        )

    return _pad_to(build, target)


def sip_invite_small(target: int = 1300) -> str:
    sdp = CRLF.join(
        [
            "v=0",
            "o=alice 2890844526 2890844526 IN IP4 192.0.2.101",
            "s=-",
            "c=IN IP4 192.0.2.101",
            "t=0 0",
            "m=audio 49172 RTP/AVP 111 9 0 8 18 101",
            "a=rtcp:49173 IN IP4 192.0.2.101",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtpmap:9 G722/8000",
            "a=rtpmap:18 G729/8000",
            "a=fmtp:18 annexb=no",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=sendrecv",
            "",
        ]
    )
    return _sip_invite(sdp, target)


def sip_invite_webrtc(target: int = 4500) -> str:
    rnd = random.Random(42)
    lines = [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS 6c1b4f8e-2c3a-4b77-9f0e-3d2a6f5e8a10",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
    ]
    for i in range(9):
        ip = f"192.0.2.{rnd.randrange(1, 250)}"
        port = rnd.randrange(10000, 65000)
        prio = 2122260223 - i * 1000
        lines.append(
            f"a=candidate:{rnd.randrange(10**9, 4 * 10**9)} 1 udp {prio} {ip} {port} typ host "
            f"generation 0 network-id {i + 1} network-cost 10"
        )
    lines += [
        "a=candidate:842163049 1 udp 1677729535 203.0.113.7 61012 typ srflx raddr 192.0.2.10 "
        "rport 61012 generation 0 network-id 1 network-cost 10",
        "a=ice-ufrag:Xk3v",
        "a=ice-pwd:8MV2gXoxQxVmq8HnX1tCv3zR",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 " + ":".join(f"{rnd.randrange(256):02X}" for _ in range(32)),
        "a=setup:actpass",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendrecv",
        "a=msid:6c1b4f8e-2c3a-4b77-9f0e-3d2a6f5e8a10 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:13 CN/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
        "a=ssrc:1001234567 cname:Fq2m9s0V4lD1Yb7c",
        "a=ssrc:1001234567 msid:6c1b4f8e-2c3a-4b77-9f0e-3d2a6f5e8a10 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Xk3v",
        "a=ice-pwd:8MV2gXoxQxVmq8HnX1tCv3zR",
        "a=ice-options:trickle",
        "a=setup:actpass",
        "a=mid:1",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtcp-rsize",
    ]
    for pt, codec in [(96, "VP8"), (102, "H264"), (104, "H264"), (106, "AV1")]:
        lines += [
            f"a=rtpmap:{pt} {codec}/90000",
            f"a=rtcp-fb:{pt} goog-remb",
            f"a=rtcp-fb:{pt} transport-cc",
            f"a=rtcp-fb:{pt} ccm fir",
            f"a=rtcp-fb:{pt} nack",
            f"a=rtcp-fb:{pt} nack pli",
            f"a=rtpmap:{pt + 1} rtx/90000",
            f"a=fmtp:{pt + 1} apt={pt}",
        ]
        if codec == "H264":
            lines.append(
                f"a=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
            )
    lines += [
        "a=ssrc-group:FID 2231627014 632943048",
        "a=ssrc:2231627014 cname:Fq2m9s0V4lD1Yb7c",
        "a=ssrc:632943048 cname:Fq2m9s0V4lD1Yb7c",
        "",
    ]
    sdp = CRLF.join(lines)
    return _sip_invite(sdp, target)


def sip_tiny(target: int = 60) -> str:
    # Keepalive-sized text frame (what a minimal SIP-ish ping payload costs per frame).
    def build(pad: str) -> str:
        return "OPTIONS sip:k@a SIP/2.0\r\nCSeq: 1 OPTIONS\r\nX: " + pad + "\r\n\r\n"

    return _pad_to(build, target)


def sip_options() -> str:
    return CRLF.join(
        [
            "OPTIONS sip:proxy.example.com SIP/2.0",
            "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK.opt7a1",
            "Max-Forwards: 70",
            "To: <sip:proxy.example.com>",
            "From: <sip:alice@example.com>;tag=opt11",
            "Call-ID: opt-7a6b5c4d3e2f",
            "CSeq: 1 OPTIONS",
            "Contact: <sip:uh7a12ms@df7jal23ls0d.invalid;transport=ws>",
            "Accept: application/sdp",
            "User-Agent: JsSIP 3.10.1",
            "Content-Length: 0",
            "",
            "",
        ]
    )


def sip_200_ok() -> str:
    return CRLF.join(
        [
            "SIP/2.0 200 OK",
            "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK.opt7a1;received=127.0.0.1",
            "To: <sip:proxy.example.com>;tag=srv99",
            "From: <sip:alice@example.com>;tag=opt11",
            "Call-ID: opt-7a6b5c4d3e2f",
            "CSeq: 1 OPTIONS",
            "Allow: INVITE,ACK,CANCEL,BYE,OPTIONS,MESSAGE,REGISTER",
            "Accept: application/sdp",
            "Supported: path, outbound, gruu",
            "Server: anchor-bench",
            "Content-Length: 0",
            "",
            "",
        ]
    )


PAYLOADS = {
    "keepalive-60B": sip_tiny,
    "REGISTER-600B": sip_register,
    "INVITE-1300B": sip_invite_small,
    "WebRTC-INVITE-4500B": sip_invite_webrtc,
}


# --- WebSocket framing helpers (RFC 6455 section 5.2) -------------------------


def _mask_bytes(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ m).to_bytes(n, "little")


def frame_header(opcode: int, length: int, masked: bool, fin: bool = True) -> bytes:
    b0 = (0x80 if fin else 0) | opcode
    mbit = 0x80 if masked else 0
    if length < 126:
        return struct.pack("!BB", b0, mbit | length)
    if length < 65536:
        return struct.pack("!BBH", b0, mbit | 126, length)
    return struct.pack("!BBQ", b0, mbit | 127, length)


def client_frame(payload: bytes, mask: bytes, opcode: int = 1) -> bytes:
    """A client->server (masked) frame."""
    return frame_header(opcode, len(payload), True) + mask + _mask_bytes(payload, mask)


def server_frame(payload: bytes, opcode: int = 1) -> bytes:
    return frame_header(opcode, len(payload), False) + payload


def masked_stream(payload: bytes, count: int, seed: int = 1) -> tuple[bytes, list[bytes]]:
    """count client-masked text frames, each with a different random mask.

    Returns (whole stream, list of per-frame bytes).
    """
    rnd = random.Random(seed)
    frames = [client_frame(payload, rnd.randbytes(4)) for _ in range(count)]
    return b"".join(frames), frames


# --- Handshake --------------------------------------------------------------

ORIGIN = "https://app.example.com"


def chrome_upgrade_request(
    key: bytes | None = None, host: str = "sip.example.com", path: str = "/ws"
) -> bytes:
    if key is None:
        key = base64.b64encode(b"0123456789abcdef")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Connection: Upgrade",
        "Pragma: no-cache",
        "Cache-Control: no-cache",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Upgrade: websocket",
        f"Origin: {ORIGIN}",
        "Sec-WebSocket-Version: 13",
        "Accept-Encoding: gzip, deflate, br, zstd",
        "Accept-Language: en-US,en;q=0.9,de;q=0.8",
        "Cookie: session=3f9a1c2e7b6d4a5f8e0c1b2a3d4e5f60; _ga=GA1.1.1234567890.1700000000; "
        "_ga_XYZ=GS1.1.1700000000.1.1.1700000100.0.0.0; theme=dark",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
        "Sec-WebSocket-Protocol: sip",
        "",
        "",
    ]
    return CRLF.join(lines).encode()


if __name__ == "__main__":
    for name, fn in PAYLOADS.items():
        print(name, len(fn().encode()))
    print("OPTIONS", len(sip_options().encode()), "200 OK", len(sip_200_ok().encode()))
    print("upgrade request", len(chrome_upgrade_request()))
