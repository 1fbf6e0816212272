"""permessage-deflate benchmark: bytes on the wire, CPU per message and memory per connection on SIP
payloads, ours against websockets' and wsproto's sans-IO servers, with and without deflate."""

from __future__ import annotations

import argparse
import gc
import json
import random
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable, Sequence
from typing import cast

import sip_payloads as sp
from core_bench import check, fail, loadavg
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol
from websockets.typing import Origin, Subprotocol
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate

from sansio_wss import Config, Opened, ServerConnection, SipMessageReceived, State
from sansio_wss._deflate import _LEVEL as OUR_LEVEL
from sansio_wss._deflate import _MEM_LEVEL as OUR_MEM_LEVEL

NOW = 0.0
REQUEST = sp.chrome_upgrade_request()  # offers `permessage-deflate; client_max_window_bits`, as Chromium does
MASK = b"\x5a\x17\xc3\x3e"
TAIL = b"\x00\x00\xff\xff"
PLAIN = Config(allowed_origins=frozenset({sp.ORIGIN}))
DEFLATE = Config(allowed_origins=frozenset({sp.ORIGIN}), deflate=True)

# ------------------------------------------------------------------------- payloads


def _fields(message: str) -> dict[str, str]:
    """The first value of each header of a SIP message, by name."""
    found: dict[str, str] = {}
    for line in message.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        name, _, value = line.partition(": ")
        found.setdefault(name, value)
    return found


def _response(
    request: str, status: str, extra: Sequence[str] = (), body: str = "", to_tag: bool = True
) -> str:
    got = _fields(request)
    to = got["To"] + (";tag=8g2h4j6k1m" if to_tag else "")
    lines = [
        f"SIP/2.0 {status}",
        f"Via: {got['Via']};received=198.51.100.7;rport=50123",
        f"From: {got['From']}",
    ]
    lines += [f"To: {to}", f"Call-ID: {got['Call-ID']}", f"CSeq: {got['CSeq']}", *extra]
    if body:
        lines.append("Content-Type: application/sdp")
    return "\r\n".join([*lines, f"Content-Length: {len(body)}", "", body])


def _in_dialog(invite: str, method: str, cseq: int, branch: str) -> str:
    got = _fields(invite)
    lines = [
        f"{method} sip:bob@203.0.113.20:5060;transport=udp SIP/2.0",
        f"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK{branch}",
        "Max-Forwards: 69",
        "Route: <sip:edge1.example.com;transport=wss;lr;r2=on>",
        "Route: <sip:10.0.0.5;lr;r2=on>",
        f"To: {got['To']};tag=8g2h4j6k1m",
        f"From: {got['From']}",
        f"Call-ID: {got['Call-ID']}",
        f"CSeq: {got['CSeq'].split()[0] if method == 'ACK' else cseq} {method}",
        "User-Agent: JsSIP 3.10.1",
        "Content-Length: 0",
    ]
    return "\r\n".join([*lines, "", ""])


SDP_ANSWER = "\r\n".join([
    "v=0", "o=- 7234598124 7234598124 IN IP4 203.0.113.20", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "a=msid-semantic: WMS *", "m=audio 40122 UDP/TLS/RTP/SAVPF 111 110", "c=IN IP4 203.0.113.20",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:3042345211 1 udp 2130706431 203.0.113.20 40122 typ host generation 0",
    "a=ice-ufrag:q7Rz", "a=ice-pwd:Vx3ZkLm0Qp8rT2sW9yBnC4dF", "a=ice-options:trickle",
    "a=fingerprint:sha-256 4F:2A:9C:11:D7:3B:8E:60:A5:72:0C:E9:14:BD:56:F3"
    ":28:C1:7A:9D:E0:43:B6:5F:12:8A:D4:7E:39:C6:0B:F1",
    "a=setup:active", "a=mid:0", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=sendrecv",
    "a=msid:- 9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10;useinbandfec=1", "a=rtpmap:110 telephone-event/48000",
    "a=ssrc:3398227561 cname:Wr5tYu8iOp2aSd4F",
    "a=ssrc:3398227561 msid:- 9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4", "",
])  # fmt: skip


def dialog() -> list[tuple[str, str]]:
    """A browser's registration and call as the server sees it: (direction, SIP message), `in` from the
    client, `out` from the server."""
    register, invite = sp.sip_register(), sp.sip_invite_webrtc()
    contact = "Contact: <sip:bob@203.0.113.20:5060;transport=udp>"
    allow = "Allow: INVITE,ACK,CANCEL,BYE,UPDATE,OPTIONS,REFER,NOTIFY"
    rr = [
        "Record-Route: <sip:10.0.0.5;lr;r2=on>",
        "Record-Route: <sip:edge1.example.com;transport=wss;lr;r2=on>",
    ]
    bye = _in_dialog(invite, "BYE", 314160, "3kd9s0q2mzv")
    return [
        ("in", register),
        ("out", _response(register, "200 OK", [_fields(register)["Contact"], "Server: sansio-wss bench"])),
        ("in", invite),
        ("out", _response(invite, "100 Trying", to_tag=False)),
        ("out", _response(invite, "180 Ringing", [*rr, contact])),
        ("out", _response(invite, "200 OK", [*rr, contact, allow, "Supported: timer, replaces"], SDP_ANSWER)),
        ("in", _in_dialog(invite, "ACK", 0, "8ak2la9qpe1")),
        ("in", bye),
        ("out", _response(bye, "200 OK", to_tag=False)),
    ]


DIALOG_NAMES = ["REGISTER", "200 OK (REGISTER)", "INVITE", "100 Trying", "180 Ringing", "200 OK (INVITE)",
                "ACK", "BYE", "200 OK (BYE)"]  # fmt: skip
SINGLES: dict[str, Callable[[], str]] = {
    "REGISTER": sp.sip_register,
    "INVITE": sp.sip_invite_small,
    "WebRTC INVITE": sp.sip_invite_webrtc,
    "200 OK": sp.sip_200_ok,
    "OPTIONS": sp.sip_options,
}
_TOKENS = re.compile(
    r"(?:branch=z9hG4bK|tag=|Call-ID: |ice-ufrag:|ice-pwd:|cname:|CSeq: |o=- |o=alice )([\w.]+)"
)
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def vary(messages: Sequence[str], rnd: random.Random) -> list[str]:
    """`messages` as another dialog would have them: each branch, tag, Call-ID, CSeq and ICE credential
    replaced (its first 24 characters, the same length, the same value wherever it recurs)."""
    fresh: dict[str, str] = {}

    def swap(match: re.Match[str]) -> str:
        token = match.group(1)
        if token not in fresh:
            chars = "0123456789" if token.isdigit() else _ALNUM
            fresh[token] = "".join(rnd.choice(chars) for _ in token[:24]) + token[24:]
        return match.group(0)[: match.start(1) - match.start(0)] + fresh[token]

    return [_TOKENS.sub(swap, message) for message in messages]


def streams(count: int) -> dict[str, dict[str, list[str]]]:
    """Per row of the CPU table: `count` messages each way (`in`, `out`), every one from its own dialog."""
    rnd = random.Random(7692)
    out: dict[str, dict[str, list[str]]] = {}
    for name, build in SINGLES.items():
        base = build()
        out[name] = {side: [vary([base], rnd)[0] for _ in range(count)] for side in ("in", "out")}
    steps = dialog()
    seq: dict[str, list[str]] = {"in": [], "out": []}
    while len(seq["in"]) < count or len(seq["out"]) < count:
        for (side, _), message in zip(steps, vary([m for _, m in steps], rnd), strict=True):
            seq[side].append(message)
    out["dialog"] = {side: seq[side][:count] for side in ("in", "out")}
    return out


# ---------------------------------------------------------------- a Chromium client


def _params(extension: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in extension.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        params[key] = value
    return params


def _head(b0: int, n: int, mask: bool) -> bytes:
    bit = 0x80 if mask else 0
    if n < 126:
        return bytes((b0, bit | n))
    if n < 65536:
        return bytes((b0, bit | 126)) + n.to_bytes(2, "big")
    return bytes((b0, bit | 127)) + n.to_bytes(8, "big")


class Chromium:
    """The client end as Chromium runs it: zlib level 6, memLevel 8, the window the server's answer
    allows (15 bits unless it names client_max_window_bits); masks its frames; inflates the server's."""

    def __init__(self, extension: str) -> None:
        self.deflate = extension.startswith("permessage-deflate")
        params = _params(extension)
        self.bits = max(int(params.get("client_max_window_bits") or 15), 9)
        self.reset_out = "client_no_context_takeover" in params
        self.reset_in = "server_no_context_takeover" in params
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def frame(self, message: bytes) -> bytes:
        """One masked text frame carrying `message`, compressed when deflate was agreed."""
        if not self.deflate:
            return sp.client_frame(message, MASK)
        if self._compressor is None:
            self._compressor = zlib.compressobj(6, zlib.DEFLATED, -self.bits, 8)
        data = self._compressor.compress(message) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if self.reset_out:
            self._compressor = None
        check(data.endswith(TAIL), "client: sync flush without its tail")
        data = data[:-4]
        return _head(0xC1, len(data), True) + MASK + sp.client_frame(data, MASK)[-len(data) :]

    def read(self, wire: bytes) -> bytes:
        """The message in one unmasked server frame (the whole of `wire`), inflated if compressed."""
        b0, n = wire[0], wire[1] & 0x7F
        start = 2 if n < 126 else 4 if n == 126 else 10
        payload = wire[start:]
        check(b0 & 0x8F == 0x81 and b0 & 0x30 == 0, f"server frame header {wire[:2]!r}")
        check(len(payload) == (n if n < 126 else int.from_bytes(wire[2:start], "big")), "server frame length")
        if not b0 & 0x40:
            return payload
        check(self.deflate, "a compressed frame without deflate agreed")
        if self._decompressor is None:
            self._decompressor = zlib.decompressobj(-15)  # a window as big as any server's
        out = self._decompressor.decompress(payload + TAIL)
        if self.reset_in:
            self._decompressor = None
        return out


# --------------------------------------------------------------------- contenders


class Server:
    """One server implementation, one connection at a time: opened on the Chromium upgrade."""

    name = ""
    extension = ""

    def open(self) -> None:
        raise NotImplementedError

    def receive(self, frame: bytes) -> list[bytes]:
        """Feed one frame; the messages delivered (untimed checks and memory figures)."""
        raise NotImplementedError

    def send(self, message: bytes) -> bytes:
        """Send one text message; the bytes to write."""
        raise NotImplementedError

    def time_receive(self, frames: Sequence[bytes]) -> tuple[float, int]:
        """Thread CPU seconds to receive `frames` one per read on a new connection; characters delivered."""
        raise NotImplementedError

    def time_send(self, messages: Sequence[bytes], texts: Sequence[str]) -> float:
        """Thread CPU seconds to send `messages` (`texts` decoded) on a new connection."""
        raise NotImplementedError


class Ours(Server):
    def __init__(self, config: Config, name: str) -> None:
        self.config, self.name = config, name
        self.conn = ServerConnection(NOW, config)

    def open(self) -> None:
        conn = self.conn = ServerConnection(NOW, self.config)
        conn.receive_data(REQUEST, NOW)
        events = conn.events()
        check(
            conn.state is State.OPEN and conn.data_to_send().startswith(b"HTTP/1.1 101 "), f"{self.name}: 101"
        )
        opened = events[0] if len(events) == 1 else None
        if not isinstance(opened, Opened):
            fail(f"{self.name}: handshake events {events}")
        self.extension = opened.extensions

    def receive(self, frame: bytes) -> list[bytes]:
        self.conn.receive_data(frame, NOW)
        got = [e.message for e in self.conn.events() if isinstance(e, SipMessageReceived)]
        check(self.conn.data_to_send() == b"", f"{self.name}: output on receive")
        return got

    def send(self, message: bytes) -> bytes:
        self.conn.send(message, NOW)
        return self.conn.data_to_send()

    def time_receive(self, frames: Sequence[bytes]) -> tuple[float, int]:
        self.open()
        receive_data, events, data_to_send = self.conn.receive_data, self.conn.events, self.conn.data_to_send
        total = 0
        t0 = time.thread_time()
        for frame in frames:
            receive_data(frame, NOW)
            for event in events():
                total += len(cast(SipMessageReceived, event).message)
            data_to_send()
        return time.thread_time() - t0, total

    def time_send(self, messages: Sequence[bytes], texts: Sequence[str]) -> float:
        self.open()
        send, data_to_send = self.conn.send, self.conn.data_to_send
        t0 = time.thread_time()
        for message in messages:
            send(message, NOW)
            data_to_send()
        return time.thread_time() - t0


def ws_serve_default() -> ServerPerMessageDeflateFactory:
    """What websockets' `serve()` adds by default (`enable_server_permessage_deflate`)."""
    return ServerPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5}
    )


class WebSockets(Server):
    def __init__(self, factory: Callable[[], ServerPerMessageDeflateFactory] | None, name: str) -> None:
        self.factory, self.name = factory, name
        self.proto = ServerProtocol()

    def open(self) -> None:
        extensions = None if self.factory is None else [self.factory()]
        proto = self.proto = ServerProtocol(
            origins=[Origin(sp.ORIGIN)], subprotocols=[Subprotocol("sip")], extensions=extensions
        )
        proto.receive_data(REQUEST)
        (request,) = proto.events_received()
        if not isinstance(request, WsRequest):
            fail(f"{self.name}: handshake event {request}")
        response = proto.accept(request)
        proto.send_response(response)
        check(b"".join(proto.data_to_send()).startswith(b"HTTP/1.1 101 "), f"{self.name}: 101")
        self.extension = response.headers.get("Sec-WebSocket-Extensions", "")

    def receive(self, frame: bytes) -> list[bytes]:
        self.proto.receive_data(frame)
        got = []
        for event in self.proto.events_received():
            if not isinstance(event, Frame) or event.opcode is not Opcode.TEXT or not event.fin:
                fail(f"{self.name}: event {event}")
            got.append(bytes(event.data))
        check(self.proto.data_to_send() == [], f"{self.name}: output on receive")
        return got

    def send(self, message: bytes) -> bytes:
        self.proto.send_text(message)
        return b"".join(self.proto.data_to_send())

    def time_receive(self, frames: Sequence[bytes]) -> tuple[float, int]:
        self.open()
        proto = self.proto
        receive_data, events, data_to_send = proto.receive_data, proto.events_received, proto.data_to_send
        total = 0
        t0 = time.thread_time()
        for frame in frames:
            receive_data(frame)
            for event in events():
                total += len(bytes(cast(Frame, event).data).decode())  # the UTF-8 check its I/O layers add
            data_to_send()
        return time.thread_time() - t0, total

    def time_send(self, messages: Sequence[bytes], texts: Sequence[str]) -> float:
        self.open()
        send_text, data_to_send = self.proto.send_text, self.proto.data_to_send
        t0 = time.thread_time()
        for message in messages:
            send_text(message)
            data_to_send()
        return time.thread_time() - t0


class Wsproto(Server):
    def __init__(self, deflate: bool, name: str) -> None:
        self.deflate, self.name = deflate, name
        self.conn = WSConnection(ConnectionType.SERVER)

    def open(self) -> None:
        conn = self.conn = WSConnection(ConnectionType.SERVER)
        conn.receive_data(REQUEST)
        (request,) = list(conn.events())
        if not isinstance(request, Request):
            fail(f"{self.name}: handshake event {request}")
        extensions: list[Extension] = [PerMessageDeflate()] if self.deflate else []
        out = conn.send(AcceptConnection(subprotocol="sip", extensions=extensions))
        check(out.startswith(b"HTTP/1.1 101 "), f"{self.name}: 101")
        found = re.search(rb"(?im)^sec-websocket-extensions: *([^\r]*)", out)
        self.extension = found.group(1).decode() if found else ""

    def receive(self, frame: bytes) -> list[bytes]:
        self.conn.receive_data(frame)
        got, parts = [], []
        for event in self.conn.events():
            if not isinstance(event, TextMessage):
                fail(f"{self.name}: event {event}")
            parts.append(event.data)
            if event.message_finished:
                got.append("".join(parts).encode())
                parts = []
        check(not parts, f"{self.name}: a partial message")
        return got

    def send(self, message: bytes) -> bytes:
        return self.conn.send(TextMessage(data=message.decode()))

    def time_receive(self, frames: Sequence[bytes]) -> tuple[float, int]:
        self.open()
        receive_data, events = self.conn.receive_data, self.conn.events
        parts: list[str] = []
        total = 0
        t0 = time.thread_time()
        for frame in frames:
            receive_data(frame)
            for event in events():
                data = cast(TextMessage, event).data
                if cast(TextMessage, event).message_finished:
                    if parts:
                        parts.append(data)
                        data, parts = "".join(parts), []
                    total += len(data)
                else:
                    parts.append(data)
        return time.thread_time() - t0, total

    def time_send(self, messages: Sequence[bytes], texts: Sequence[str]) -> float:
        self.open()
        send = self.conn.send
        t0 = time.thread_time()
        for text in texts:
            send(TextMessage(data=text))
        return time.thread_time() - t0


def contenders() -> dict[str, Server]:
    """Every server, by its column's name; `+d`: permessage-deflate agreed with Chromium's offer."""
    servers: list[Server] = [
        Ours(PLAIN, "ours"),
        WebSockets(None, "websockets"),
        Wsproto(False, "wsproto"),
        Ours(DEFLATE, "ours+d"),
        WebSockets(ws_serve_default, "websockets+d (serve)"),
        WebSockets(ServerPerMessageDeflateFactory, "websockets+d (factory)"),
        Wsproto(True, "wsproto+d"),
        Ours(
            Config(allowed_origins=frozenset({sp.ORIGIN}), deflate=True, deflate_window_bits=13),
            "ours+d (13 bits)",
        ),
    ]
    return {server.name: server for server in servers}


PLAIN_NAMES = ("ours", "websockets", "wsproto")
DEFLATE_NAMES = ("ours+d", "websockets+d (serve)", "websockets+d (factory)", "wsproto+d", "ours+d (13 bits)")


# ---------------------------------------------------------------- bytes on the wire


def exchange(server: Server, messages: Sequence[tuple[str, str]]) -> list[int]:
    """Bytes on the wire of each message on one new connection, in order; every message is checked
    to arrive intact (the server's output inflated by the Chromium client and the other way)."""
    server.open()
    client = Chromium(server.extension)
    sizes = []
    for side, text in messages:
        message = text.encode()
        if side == "in":
            frame = client.frame(message)
            check(server.receive(frame) == [message], f"{server.name}: received a different message")
            sizes.append(len(frame))
        else:
            wire = server.send(message)
            check(client.read(wire) == message, f"{server.name}: sent a different message")
            sizes.append(len(wire))
    return sizes


def wire_tables(servers: dict[str, Server], steady: int) -> list[str]:
    lines = ["## Bytes on the wire per message (frame header and mask included)", ""]
    for server in servers.values():
        server.open()
    agreed = {name: server.extension for name, server in servers.items() if server.extension}
    lines.append("Agreed with Chromium's offer (`permessage-deflate; client_max_window_bits`): " + "; ".join(
        f"{name}: `{ext}`" for name, ext in agreed.items()
    ) + ". The client compresses as Chromium does (zlib level 6, memLevel 8) with the window the answer "
        "allows: 12 bits for ours+d and websockets+d (serve), 13 for ours+d (13 bits), "
        "15 for the others.")  # fmt: skip
    lines.append("")
    lines.append(
        f"Single messages: `first` is the message on a new connection; `then` the mean of {steady} more "
        "of the same kind on that connection, each from another dialog (its branch, tags, Call-ID, CSeq, "
        "ICE credentials changed), as a connection that keeps context sees them."
    )
    lines.append("")
    names = ["ours", *DEFLATE_NAMES]
    lines.append(
        "| message | direction | SIP bytes | " + " | ".join(names) + " | ours+d ÷ websockets+d (serve) |"
    )
    lines.append("|---|---|---:|" + "---:|" * (len(names) + 1))
    rnd = random.Random(1)
    for side, label in (("in", "client → server"), ("out", "server → client")):
        for title, build in SINGLES.items():
            texts = [build(), *vary([build()] * steady, rnd)]
            run = [(side, text) for text in texts]
            firsts, thens = {}, {}
            for name in names:
                sizes = exchange(servers[name], run)
                firsts[name], thens[name] = sizes[0], statistics.mean(sizes[1:])
            cells = [f"{firsts[n]:,} / {thens[n]:,.0f}" for n in names]
            ratio = thens["ours+d"] / thens["websockets+d (serve)"]
            size = len(texts[0].encode())
            lines.append(f"| {title} | {label} | {size:,} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    lines += [
        "",
        "A registration and call on one connection (context taken over from message to message):",
        "",
    ]
    lines.append("| message | direction | SIP bytes | " + " | ".join(names) + " |")
    lines.append("|---|---|---:|" + "---:|" * len(names))
    steps = dialog()
    per = {name: exchange(servers[name], steps) for name in names}
    for i, (side, text) in enumerate(steps):
        cells = [f"{per[n][i]:,}" for n in names]
        arrow = "client → server" if side == "in" else "server → client"
        lines.append(f"| {DIALOG_NAMES[i]} | {arrow} | {len(text.encode()):,} | " + " | ".join(cells) + " |")
    raw = sum(len(text.encode()) for _, text in steps)
    totals = [sum(per[n]) for n in names]
    cells = [f"**{t:,}** ({t / totals[0]:.0%})" for t in totals]
    lines.append(f"| **whole dialog** | both | {raw:,} | " + " | ".join(cells) + " |")
    return lines


# ----------------------------------------------------------------------------- CPU


def cpu_tables(servers: dict[str, Server], msgs: int, reps: int) -> list[str]:
    rows = streams(msgs)
    # Inputs per server: the client frames it gets (compressed as agreed with it), checked untimed.
    frames: dict[tuple[str, str], list[bytes]] = {}
    for row, sides in rows.items():
        for name, server in servers.items():
            server.open()
            client = Chromium(server.extension)
            frames[row, name] = [client.frame(text.encode()) for text in sides["in"]]
            for frame, text in zip(frames[row, name][:50], sides["in"], strict=False):
                check(server.receive(frame) == [text.encode()], f"{name} {row}: received a different message")
            for text in sides["out"][:50]:
                check(client.read(server.send(text.encode())) == text.encode(), f"{name} {row}: sent wrong")
    times: dict[tuple[str, str, str], list[float]] = {}
    for rep in range(reps):
        order = list(servers)[::-1] if rep % 2 else list(servers)
        for row, sides in rows.items():
            want = sum(len(text) for text in sides["in"])
            out_texts = sides["out"]
            out_bytes = [text.encode() for text in out_texts]
            for name in order:
                server = servers[name]
                gc.collect()
                took, total = server.time_receive(frames[row, name])
                check(total == want, f"{name} {row}: {total} characters received of {want}")
                times.setdefault((row, name, "in"), []).append(took / msgs)
                gc.collect()
                times.setdefault((row, name, "out"), []).append(server.time_send(out_bytes, out_texts) / msgs)
        log(f"CPU rep {rep + 1}/{reps} done, loadavg {loadavg()}")

    def us(row: str, name: str, side: str) -> float:
        return statistics.median(times[row, name, side]) * 1e6

    def ratio(row: str, a: str, b: str, side: str) -> float:
        pairs = zip(times[row, a, side], times[row, b, side], strict=True)
        return statistics.median(x / y for x, y in pairs)

    lines: list[str] = []
    for side, title in (("in", "Server receive (one client frame per read)"), ("out", "Server send")):
        lines += [
            "",
            f"## CPU: {title}, µs per message (thread CPU, median of {reps} x {msgs:,} messages)",
            "",
        ]
        names = [*PLAIN_NAMES, *DEFLATE_NAMES]
        lines.append(
            "| messages | " + " | ".join(names) + " | ours ÷ websockets | ours+d ÷ websockets+d (serve) "
            "| ours+d ÷ websockets+d (factory) | ours+d ÷ ours |"
        )
        lines.append("|---|" + "---:|" * (len(names) + 4))
        for row in rows:
            cells = [f"{us(row, name, side):.2f}" for name in names]
            ratios = [
                ratio(row, "ours", "websockets", side),
                ratio(row, "ours+d", "websockets+d (serve)", side),
                ratio(row, "ours+d", "websockets+d (factory)", side),
                ratio(row, "ours+d", "ours", side),
            ]
            label = "dialog (its messages this way, in turn)" if row == "dialog" else row
            lines.append(
                f"| {label} | " + " | ".join(cells) + " | " + " | ".join(f"{r:.2f}" for r in ratios) + " |"
            )
    return lines


# -------------------------------------------------------------------------- memory


def _vm_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    fail("no VmRSS in /proc/self/status")


def memory_child(name: str, mode: str, n: int) -> dict[str, float]:
    """In a fresh process: per connection, after the upgrade, one 4.5 KB WebRTC INVITE received
    (compressed by the client when agreed) and sent back: tracemalloc's or VmRSS's growth over `n`."""
    invite = sp.sip_invite_webrtc().encode()
    conns: list[object] = [None] * n
    if name == "zlib only (ours' settings)":

        def one() -> object:
            compressor = zlib.compressobj(OUR_LEVEL, zlib.DEFLATED, -12, OUR_MEM_LEVEL)
            decompressor = zlib.decompressobj(-12)
            decompressor.decompress(compressor.compress(invite) + compressor.flush(zlib.Z_SYNC_FLUSH))
            return compressor, decompressor

    else:
        server = contenders()[name]
        server.open()
        frame = Chromium(server.extension).frame(invite)  # a new client's first frame: the same for all

        def one() -> object:
            server.open()
            check(server.receive(frame) == [invite], f"{name}: memory traffic")
            server.send(invite)
            return getattr(server, "conn", None) or getattr(server, "proto", None)

    for _ in range(3):  # first-use caches (regexes, interned names) are not per-connection costs
        one()
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    else:
        base = _vm_rss()
    for i in range(n):
        conns[i] = one()
    gc.collect()
    grown = (tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else _vm_rss()) - base
    return {"per_conn": grown / n}


def memory_table(n: int, passes: int) -> list[str]:
    names = ["ours", "websockets", "wsproto", *DEFLATE_NAMES, "zlib only (ours' settings)"]
    got: dict[tuple[str, str], list[float]] = {}
    for p in range(passes):
        for name in names[::-1] if p % 2 else names:
            for mode in ("tracemalloc", "rss"):
                out = subprocess.run(
                    [sys.executable, __file__, "--memory-child", name, mode, str(n)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                got.setdefault((name, mode), []).append(json.loads(out.stdout)["per_conn"])
    log(f"memory done, loadavg {loadavg()}")
    med = {key: statistics.median(values) for key, values in got.items()}
    plain = {"ours+d": "ours", "websockets+d (serve)": "websockets", "websockets+d (factory)": "websockets",
             "wsproto+d": "wsproto", "ours+d (13 bits)": "ours"}  # fmt: skip
    lines = [
        "",
        f"## Memory per connection after the upgrade, one 4.5 KB WebRTC INVITE in and one out ({n:,} "
        f"connections, a fresh process per figure, median of {passes})",
        "",
        "Each figure from its own fresh process: 3 warm-up connections, `gc.collect()`, then the growth of "
        "`tracemalloc.get_traced_memory()` (tracemalloc started after the warm-up) or of VmRSS in "
        "/proc/self/status (no tracemalloc in that process) over the connections, kept alive, divided by "
        "their number. zlib allocates through PyMem_RawMalloc, which tracemalloc traces: the `zlib only` row "
        "(a bare compressobj and decompressobj) shows it. RSS counts only the pages touched: below "
        "tracemalloc where zlib's buffers are big and partly used (15-bit windows, memLevel 8).",
        "",
        "| server | tracemalloc | RSS growth | RSS ÷ tracemalloc "
        "| deflate's share (tracemalloc, minus its plain row) | ≤ 64 KB? |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name in names:
        t, r = med[name, "tracemalloc"], med[name, "rss"]
        extra = f"{t - med[plain[name], 'tracemalloc']:,.0f} B" if name in plain else "—"
        verdict = ("PASS" if t <= 65536 else "MISS") if name == "ours+d" else ""
        lines.append(f"| {name} | {t:,.0f} B | {r:,.0f} B | {r / t:.2f} | {extra} | {verdict} |")
    return lines


# -------------------------------------------------------------- zlib settings sweep


def sweep_table(msgs: int, reps: int) -> list[str]:
    """The server's compressor alone, context kept: what the window, level and memLevel cost."""
    made = streams(msgs)
    inputs = {
        "dialog": [text.encode() for text in made["dialog"]["out"]],
        "WebRTC INVITE": [text.encode() for text in made["WebRTC INVITE"]["out"]],
    }
    settings = [(12, OUR_LEVEL, OUR_MEM_LEVEL, "ours, websockets (serve)"), (12, 6, 4, ""),
                (12, 6, 8, ""), (12, 1, 4, ""), (12, 1, 5, ""), (12, 4, 5, ""), (12, 9, 5, ""),
                (13, 6, 4, ""), (13, 6, 5, ""), (15, 6, 8, "wsproto, websockets (factory)")]  # fmt: skip
    times: dict[tuple[str, int, int, int], list[float]] = {}
    sizes: dict[tuple[str, int, int, int], int] = {}
    state: dict[tuple[int, int, int], int] = {}
    for rep in range(reps):
        for row, texts in inputs.items():
            for bits, level, mem, _ in settings[::-1] if rep % 2 else settings:
                compressor = zlib.compressobj(level, zlib.DEFLATED, -bits, mem)
                compress, flush, sync = compressor.compress, compressor.flush, zlib.Z_SYNC_FLUSH
                gc.collect()
                total = 0
                t0 = time.thread_time()
                for text in texts:
                    total += len(compress(text) + flush(sync)) - 4
                times.setdefault((row, bits, level, mem), []).append((time.thread_time() - t0) / len(texts))
                sizes[row, bits, level, mem] = total
    for bits, level, mem, _ in settings:
        tracemalloc.start()
        compressor = zlib.compressobj(level, zlib.DEFLATED, -bits, mem)
        compressor.compress(inputs["dialog"][0])
        compressor.flush(zlib.Z_SYNC_FLUSH)
        state[bits, level, mem] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del compressor
    lines = [
        "",
        f"## zlib settings for the server's compressor alone (context kept; {msgs:,} messages, each from "
        "another dialog; compress + sync flush; median of the repetitions)",
        "",
        "| window bits | level | memLevel | who | compressor state | "
        + " | ".join(f"{row}: bytes/msg, µs/msg, CPU ÷ ours" for row in inputs)
        + " |",
        "|---:|---:|---:|---|---:|" + "---:|" * len(inputs),
    ]
    for bits, level, mem, who in settings:
        cells = []
        for row, texts in inputs.items():
            t = statistics.median(times[row, bits, level, mem])
            base = statistics.median(times[row, 12, OUR_LEVEL, OUR_MEM_LEVEL])
            cells.append(f"{sizes[row, bits, level, mem] / len(texts):,.0f} B, {t * 1e6:.1f}, {t / base:.2f}")
        lines.append(
            f"| {bits} | {level} | {mem} | {who} | {state[bits, level, mem]:,} B | "
            + " | ".join(cells)
            + " |"
        )
    raw = {row: sum(map(len, texts)) / len(texts) for row, texts in inputs.items()}
    lines.append("")
    lines.append(
        "Raw sizes: " + ", ".join(f"{row} {size:,.0f} B per message" for row, size in raw.items()) + "."
    )
    return lines


# -------------------------------------------------------------------------- harness


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer messages, repetitions and connections")
    ap.add_argument("--memory-child", nargs=3, metavar=("SERVER", "MODE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        name, mode, n = args.memory_child
        print(json.dumps(memory_child(name, mode, int(n))))
        return 0
    started = time.perf_counter()
    msgs, reps, conns, passes = (800, 3, 1000, 1) if args.quick else (4000, 7, 1000, 3)
    servers = contenders()
    mode = "quick" if args.quick else "full"
    lines = [
        "# permessage-deflate benchmark",
        "",
        f"- Python {sys.version.split()[0]}, zlib {zlib.ZLIB_RUNTIME_VERSION}; mode {mode}; load average "
        f"{loadavg()} at start",
        "- `+d`: permessage-deflate agreed with Chromium's offer; ours: `Config(deflate=True)` "
        f"(12-bit windows, context takeover, level {OUR_LEVEL}, memLevel {OUR_MEM_LEVEL}); "
        "websockets (serve): what its `serve()` "
        "enables by default (12-bit windows, memLevel 5); websockets (factory): "
        "`ServerPerMessageDeflateFactory()` (15 bits, memLevel 8); wsproto: `PerMessageDeflate()` (15 bits, "
        "memLevel 8); ours+d (13 bits): `Config(deflate=True, deflate_window_bits=13)`.",
        "",
    ]
    lines += wire_tables(servers, steady=20 if args.quick else 50)
    log(f"bytes done at {time.perf_counter() - started:.0f} s")
    lines += cpu_tables(servers, msgs, reps)
    lines += memory_table(conns, passes)
    lines += sweep_table(msgs, reps)
    lines += ["", f"_Elapsed {time.perf_counter() - started:.0f} s; load average {loadavg()} at end._"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
