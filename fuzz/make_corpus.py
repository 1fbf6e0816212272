"""Rebuild the committed seed corpora in fuzz/corpus/ and check that each seed reaches what it is meant to."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fuzz_connection
import fuzz_frames
import fuzz_handshake_client
import fuzz_handshake_server
import fuzz_proxy
import fuzz_registrar
import fuzz_sip
import fuzz_sipmsg
from _samples import CHROME_REQUEST, CLIENT_ACCEPT, SIP_MESSAGES, reply_101
from _sip_dialog import (
    ALICE_CONTACT,
    BOB_CONTACT,
    in_dialog,
    jssip_invite,
    jssip_message,
    jssip_options,
    jssip_register,
    message,
    sipjs_register,
    sipjs_unregister_all,
)

from sansio_wss import Cause, InvalidSipMessage, SipMessageReceived
from sansio_wss._frames import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, encode

HERE = Path(__file__).resolve().parent
REGISTER, INVITE, OK, MESSAGE, KEEPALIVE, PONG_CRLF, BINARY_NOTIFY, NOT_SIP = SIP_MESSAGES
MASK = b"\x37\xfa\x21\x3d"


class Seed:
    """Writes an input the way atheris' FuzzedDataProvider reads it back.

    The provider takes bytes (ConsumeBytes, ConsumeUnicode, ConsumeBool) from the
    front and integers from the back, each integer as just enough bytes for its
    range, most significant first. `value()` is the bytes.
    """

    def __init__(self) -> None:
        self.front = bytearray()
        self.back = bytearray()

    def int(self, low: int, high: int, value: int) -> Seed:
        span, raw = high - low, value - low
        if not 0 <= raw <= span:
            raise ValueError(f"{value} not in [{low}, {high}]")
        size = 0
        while span >> (8 * size):
            size += 1
        self.back += raw.to_bytes(size, "big")
        return self

    def bool(self, value: bool) -> Seed:
        """ConsumeBool, unlike the integers, reads one byte from the front."""
        self.front.append(int(value))
        return self

    def take(self, data: bytes) -> Seed:
        self.front += data
        return self

    def ascii(self, text: str) -> Seed:
        """For ConsumeUnicode(len(text)): a type byte choosing ASCII, then the text."""
        if text:
            self.front += b"\x01" + text.encode("ascii")
        return self

    def value(self) -> bytes:
        return bytes(self.front) + bytes(reversed(self.back))


# ------------------------------------------------------------------- handshakes


def server_seed(
    payload: bytes,
    *,
    flags: int = 3,
    origins: int = 1,
    resources: int = 1,
    chunks: int = 2,
    size: int = 3,
    verdict: int = 0,
    ending: int = 0,
    cuts: tuple[int, ...] = (),
) -> bytes:
    """fuzz_handshake_server.run's layout; flags: 1 require_origin, 2 auto_accept, 4 no timeout."""
    seed = Seed().int(0, 255, flags).int(0, 2, origins).int(0, 2, resources).int(0, 4, chunks).int(0, 3, size)
    seed.int(0, 255, verdict).int(0, 3, ending).int(0, 7, len(cuts))
    for cut in cuts:
        seed.int(1, 1024, cut)
    return seed.take(payload).value()


def client_seed(
    payload: bytes,
    *,
    flags: int = 1,
    chunks: int = 2,
    size: int = 3,
    port: int = 0,
    ending: int = 0,
    cuts: tuple[int, ...] = (),
) -> bytes:
    """fuzz_handshake_client.run's layout; flags: 1 send_origin, 2 fixed origin, 4 no timeout."""
    seed = Seed().int(0, 255, flags).int(0, 4, chunks).int(0, 3, size).int(0, 1, port).int(0, 3, ending)
    seed.int(0, 7, len(cuts))
    for cut in cuts:
        seed.int(1, 1024, cut)
    return seed.take(payload).value()


MINIMAL_REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: sip.example.com:8443\r\nUpgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip, msrp\r\n"
    b"Origin: https://app.example.com\r\n\r\n"
)


def closed_with(status: int | None, cause: Cause | None = None) -> Callable[[Any], bool]:
    def ok(watch: Any) -> bool:
        closed = watch.closed
        return bool(
            closed is not None and closed.status == status and (cause is None or closed.cause is cause)
        )

    return ok


def opened(watch: Any) -> bool:
    return watch.opened is not None


def server_seeds() -> dict[str, tuple[bytes, Callable[[Any], bool]]]:
    no_origin = CHROME_REQUEST.replace(b"Origin: https://app.example.com\r\n", b"")
    return {
        "chrome_auto_accept": (server_seed(CHROME_REQUEST), opened),
        "chrome_split_manual_accept": (
            server_seed(CHROME_REQUEST, flags=1, chunks=4, cuts=(90, 1, 300)),
            opened,
        ),
        "chrome_manual_reject_401": (server_seed(CHROME_REQUEST, flags=1, verdict=129), closed_with(401)),
        "minimal_request": (
            server_seed(MINIMAL_REQUEST, origins=0, resources=2, cuts=(3,)),
            closed_with(404),
        ),
        "missing_origin_403": (server_seed(no_origin), closed_with(403)),
        "version_8_426": (
            server_seed(CHROME_REQUEST.replace(b"Version: 13", b"Version: 8")),
            closed_with(426),
        ),
        "head_too_big_431": (server_seed(CHROME_REQUEST, size=0), closed_with(431)),
        "chunk_limit": (
            server_seed(CHROME_REQUEST, chunks=0, cuts=(10,)),
            closed_with(None, Cause.CHUNK_LIMIT),
        ),
        "timeout": (server_seed(CHROME_REQUEST[:200], ending=2), closed_with(None, Cause.HANDSHAKE_TIMEOUT)),
        "bare_lf_400": (server_seed(CHROME_REQUEST.replace(b"\r\n", b"\n", 2)), closed_with(400)),
        "data_after_head_400": (server_seed(CHROME_REQUEST + encode(TEXT, OK, MASK)), closed_with(400)),
        "post_method_400": (server_seed(CHROME_REQUEST.replace(b"GET", b"POST", 1)), closed_with(400)),
        # flags 8: permessage-deflate, window 9 + (flags >> 4 & 7) % 7; 128: a generated offer
        "deflate_chrome_offer": (server_seed(CHROME_REQUEST, flags=3 | 8 | 0x30), opened),
        "deflate_generated_offer": (server_seed(b"", flags=3 | 8 | 128 | 0x60), opened),
    }


def client_seeds() -> dict[str, tuple[bytes, Callable[[Any], bool]]]:
    def rejected(status: int) -> Callable[[Any], bool]:
        return closed_with(status, Cause.HANDSHAKE_REJECTED)

    challenge = (
        b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="example.com", nonce="abc"\r\n'
        b"Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nUnauthorized\n"
    )
    redirect = b"HTTP/1.1 302 Found\r\nLocation: wss://edge2.example.com/ws\r\nContent-Length: 0\r\n\r\n"
    return {
        "reply_101": (client_seed(reply_101()), opened),
        "reply_101_split_then_frames": (
            client_seed(reply_101() + encode(TEXT, OK) + encode(PING, b"hi"), chunks=4, cuts=(1, 40, 2, 100)),
            opened,
        ),
        "wrong_accept": (client_seed(reply_101(accept="x" + CLIENT_ACCEPT[1:])), closed_with(101)),
        "challenge_401": (client_seed(challenge, port=1), rejected(401)),
        "redirect_302": (client_seed(redirect), rejected(302)),
        "extension_named": (
            client_seed(reply_101(extra=b"Sec-WebSocket-Extensions: permessage-deflate\r\n")),
            closed_with(101),
        ),
        "deflate_answer": (
            client_seed(
                reply_101(
                    extra=b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12\r\n"
                ),
                flags=1 | 8 | 0x30,
            ),
            opened,
        ),
        "deflate_generated_answer": (client_seed(b"", flags=1 | 8 | 128), opened),
        "http_1_0": (client_seed(reply_101().replace(b"HTTP/1.1", b"HTTP/1.0")), closed_with(None)),
        "truncated_timeout": (
            client_seed(reply_101()[:60], ending=2),
            closed_with(None, Cause.HANDSHAKE_TIMEOUT),
        ),
        "obs_fold": (client_seed(reply_101(extra=b"X-Folded: a\r\n b\r\n")), closed_with(101)),
    }


# ------------------------------------------------------------------------ frames


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    return encode(opcode, payload, MASK, fin)


def stream_seed(
    payload: bytes, *, to_server: bool = True, size: int = 5, chunks: int = 2, cuts: tuple[int, ...] = ()
) -> bytes:
    """fuzz_frames.run's stream layout; size and chunks index fuzz_frames.SIZES and CHUNKS."""
    seed = Seed().int(0, 3, 0).int(0, 6, size).int(0, 4, chunks).bool(to_server).int(0, 15, len(cuts))
    for cut in cuts:
        seed.int(1, 300, cut)
    return seed.take(payload).value()


def round_trip_seed(
    message: bytes, *, fragments: int, text: bool, ping: bool, cuts: tuple[int, ...], repeat: int = 0
) -> bytes:
    seed = Seed().int(0, 3, 3).int(1, 8, fragments).bool(text).bool(ping).int(0, 7, 0)
    seed.take(MASK * (fragments + 1))
    for cut in cuts:
        seed.int(0, 4096, cut)
    return seed.int(0, 3, repeat).take(message).value()


def frame_seeds() -> dict[str, tuple[bytes, Callable[[Any], bool]]]:
    def messages(count: int) -> Callable[[Any], bool]:
        return lambda w: sum(isinstance(e, SipMessageReceived) for e in w.events) == count

    def failed(code: int) -> Callable[[Any], bool]:
        return lambda w: w.closed is not None and w.closed.code == code and w.wire.close_code == code

    def round_trip(result: Any) -> bool:
        return result is None

    fragmented = (
        masked(TEXT, INVITE[:100], fin=False)
        + masked(PING, b"keepalive")
        + masked(CONTINUATION, INVITE[100:300], fin=False)
        + masked(CONTINUATION, INVITE[300:])
    )
    client_stream = (
        encode(TEXT, OK) + encode(TEXT, PONG_CRLF) + encode(PING, b"") + encode(CLOSE, b"\x03\xe9")
    )
    ping_pong_close = (
        masked(PING, b"1") + masked(PONG, b"") + masked(CLOSE, b"\x03\xe8bye") + masked(TEXT, OK)
    )
    huge = b"\x82\xff" + (70000).to_bytes(8, "big") + MASK + b"y" * 300
    return {
        "server_sip_messages": (
            stream_seed(masked(TEXT, REGISTER) + masked(TEXT, OK) + masked(TEXT, MESSAGE)),
            messages(3),
        ),
        "server_fragmented_with_ping": (stream_seed(fragmented, cuts=(50, 3, 200)), messages(1)),
        "server_binary_and_keepalive": (
            stream_seed(masked(BINARY, BINARY_NOTIFY) + masked(TEXT, KEEPALIVE)),
            lambda w: (TEXT, PONG_CRLF) in w.wire.frames,
        ),
        "server_ping_pong_close": (
            stream_seed(ping_pong_close),
            lambda w: w.closed.cause is Cause.PEER_CLOSED and w.wire.frames[0] == (PONG, b"1"),
        ),
        "server_unmasked_1002": (stream_seed(encode(TEXT, REGISTER)), failed(1002)),
        "server_rsv_bit_1002": (stream_seed(bytes([0xC1]) + masked(TEXT, OK)[1:]), failed(1002)),
        "server_reserved_opcode": (stream_seed(masked(0x3, b"x") + masked(0xB, b"")), failed(1002)),
        "server_bad_utf8_1007": (
            stream_seed(masked(TEXT, b"OPTIONS sip:a SIP/2.0\r\n\xc3\x28")),
            failed(1007),
        ),
        "server_too_big_1009": (stream_seed(masked(TEXT, INVITE), size=1), failed(1009)),
        "server_16bit_length_1002": (stream_seed(b"\x81\xfe\x00\x7d" + MASK + b"x" * 125), failed(1002)),
        "server_64bit_length": (stream_seed(huge, size=6), lambda w: w.closed.cause is Cause.EOF),
        "server_close_bad_code": (stream_seed(masked(CLOSE, b"\x03\xed")), failed(1002)),
        "server_chunk_limit": (
            stream_seed(masked(TEXT, REGISTER), chunks=1, cuts=(20, 20, 20)),
            failed(1008),
        ),
        "client_sip_messages": (
            stream_seed(client_stream, to_server=False),
            lambda w: w.closed.code == 1001 and w.closed.clean and messages(1)(w),
        ),
        "client_masked_1002": (stream_seed(masked(TEXT, OK), to_server=False), failed(1002)),
        "round_trip_invite_text": (
            round_trip_seed(INVITE, fragments=3, text=True, ping=True, cuts=(77, 400)),
            round_trip,
        ),
        "round_trip_binary": (
            round_trip_seed(BINARY_NOTIFY, fragments=2, text=False, ping=False, cuts=(30,), repeat=3),
            round_trip,
        ),
        "round_trip_over_64k": (
            round_trip_seed(INVITE.ljust(1000, b"a"), fragments=2, text=True, ping=True, cuts=(9,), repeat=3),
            round_trip,
        ),
        "round_trip_keepalive": (
            round_trip_seed(KEEPALIVE, fragments=1, text=True, ping=False, cuts=()),
            round_trip,
        ),
        "round_trip_utf8_split": (
            round_trip_seed(MESSAGE, fragments=2, text=True, ping=False, cuts=(len(MESSAGE) - 5,)),
            round_trip,
        ),
    }


# --------------------------------------------------------------------------- sip


def sip_seeds() -> dict[str, bytes]:
    texts = {
        "register": REGISTER,
        "ok": OK,
        "keepalive": KEEPALIVE,
        "crlf": PONG_CRLF,
        "not_sip": NOT_SIP,
        "binary_notify": BINARY_NOTIFY,
        "wss_uri": b"wss://sip.example.com:8443/ws",
        "ws_ipv6_uri": b"ws://[2001:db8::1]/sip",
        "sip_uri_ws": b"sip:alice@example.com;transport=ws",
        "sips_uri_wss": b"sips:[2001:db8::1]:5061;transport=wss;lr",
        "sip_uri_udp": b"sip:bob@192.0.2.4:5060;transport=udp",
        "ws_ipv6_zone_id": b"ws://[fe80::1%25eth0]:8080/ws",  # finding ipv6-zone-id (fuzz/README.md)
    }
    return {name: Seed().bool(False).int(1, 65535, 443).take(body).value() for name, body in texts.items()}


# -------------------------------------------------------------------- connection


class Script:
    """Writes a fuzz_connection input op by op (the op numbers are fuzz_connection.Script.op's)."""

    def __init__(self, server: bool, *, flags: int, ping: int = 2, idle: int = 0, chunks: int = 3) -> None:
        self.seed = Seed().bool(server).int(0, 255, flags).int(0, 2, ping).int(0, 2, idle).int(0, 3, chunks)
        self.server = server

    def _feed(self) -> None:
        self.seed.bool(False)

    def handshake(self, index: int = 0) -> Script:
        self.seed.int(0, 12, 10).int(0, 2, index)
        self._feed()
        return self

    def frame(self, opcode: int, message: bytes | None = None, fin: bool = True, raw: bytes = b"") -> Script:
        opcode_index = fuzz_connection.OPCODES.index(opcode)
        self.seed.int(0, 12, 1).int(0, 7, opcode_index).int(0, 3, 1 if fin else 0)
        self._payload(message, raw)
        self._mask()
        self._feed()
        return self

    def _payload(self, message: bytes | None, raw: bytes = b"") -> None:
        if message is not None:
            self.seed.int(0, len(SIP_MESSAGES), SIP_MESSAGES.index(message))
        else:
            self.seed.int(0, len(SIP_MESSAGES), len(SIP_MESSAGES)).int(0, 200, len(raw)).take(raw)

    def _mask(self) -> None:
        self.seed.int(0, 15, 5)
        if self.server:
            self.seed.take(MASK)

    def raw(self, data: bytes, cut: int = 0) -> Script:
        self.seed.int(0, 12, 0).int(1, 64, len(data)).take(data)
        self.seed.bool(bool(cut))
        if cut:
            self.seed.int(1, len(data) - 1, cut)
        return self

    def advance(self, tenths: int) -> Script:
        self.seed.int(0, 12, 2).int(0, 400, tenths)
        return self

    def timer(self) -> Script:
        self.seed.int(0, 12, 3)
        return self

    def eof(self) -> Script:
        self.seed.int(0, 12, 4)
        return self

    def send(self, message: bytes) -> Script:
        self.seed.int(0, 12, 6).int(0, 2, 0)
        self._payload(message)
        return self

    def ping(self, payload: bytes) -> Script:
        self.seed.int(0, 12, 7).int(0, 130, len(payload)).take(payload)
        return self

    def close(self, code: int, reason: str = "") -> Script:
        self.seed.int(0, 12, 8).bool(False).int(0, 65535, code).int(0, 70, len(reason)).ascii(reason)
        return self

    def accept(self, headers: int = 0) -> Script:
        self.seed.int(0, 12, 9).int(0, len(fuzz_connection.HEADER_SETS) - 1, headers).bool(True)
        return self

    def reject(self, status: int, headers: int = 0) -> Script:
        self.seed.int(0, 12, 9).int(0, len(fuzz_connection.HEADER_SETS) - 1, headers).bool(False)
        self.seed.int(300, 700, status).bool(False)
        return self

    def peer_close(self, code: int, reason: bytes = b"") -> Script:
        self.seed.int(0, 12, 11).bool(True).int(0, 5000, code).int(0, 20, len(reason)).take(reason)
        self._mask()
        self._feed()
        return self

    def keepalive(self) -> Script:
        self.seed.int(0, 12, 12).bool(True)
        self._mask()
        self._feed()
        return self

    def value(self) -> bytes:
        return self.seed.value()


def connection_seeds() -> dict[str, tuple[bytes, Callable[[Any], bool]]]:
    def ended(cause: Cause, clean: bool | None = None) -> Callable[[Any], bool]:
        def ok(script: Any) -> bool:
            closed = script.watch.closed
            return bool(closed is not None and closed.cause is cause and clean in (None, closed.clean))

        return ok

    def saw(kind: type) -> Callable[[Any], bool]:
        return lambda script: any(isinstance(e, kind) for e in script.watch.events)

    auto, manual = 1 | 2, 2
    return {
        "server_register_and_close": (
            Script(True, flags=auto)
            .handshake()
            .frame(TEXT, REGISTER)
            .send(OK)
            .ping(b"are you there")
            .frame(PONG, raw=b"are you there")
            .peer_close(1000, b"bye")
            .eof()
            .value(),
            ended(Cause.PEER_CLOSED, clean=True),
        ),
        "server_manual_accept_pong_timeout": (
            Script(True, flags=manual | 4, ping=1)
            .handshake()
            .accept(1)
            .frame(TEXT, INVITE)
            .timer()
            .timer()
            .value(),
            ended(Cause.PONG_TIMEOUT),
        ),
        "server_manual_reject_401": (
            Script(True, flags=manual).handshake().reject(401, 2).eof().value(),
            ended(Cause.HANDSHAKE_REJECTED),
        ),
        "server_fragments_and_keepalive": (
            Script(True, flags=auto, chunks=2)
            .handshake()
            .frame(TEXT, MESSAGE, fin=False)
            .frame(PING, raw=b"p")
            .frame(CONTINUATION, raw=b" more text")
            .keepalive()
            .frame(BINARY, BINARY_NOTIFY)
            .close(1001, "going away")
            .advance(100)
            .value(),
            ended(Cause.CLOSE_TIMEOUT),
        ),
        "server_commands_refused": (
            Script(True, flags=auto)
            .send(REGISTER)
            .ping(b"x" * 126)
            .close(1005)
            .accept()
            .raw(b"GET / HTTP/1.1\r\n", cut=5)
            .timer()
            .value(),
            ended(Cause.HANDSHAKE_TIMEOUT),
        ),
        "client_invite_and_close": (
            Script(False, flags=1)
            .handshake()
            .frame(TEXT, OK)
            .send(INVITE)
            .keepalive()
            .close(1000, "bye")
            .peer_close(1000)
            .eof()
            .value(),
            ended(Cause.LOCAL_CLOSED, clean=True),
        ),
        "client_rejected_401": (
            Script(False, flags=1).handshake(2).value(),
            ended(Cause.HANDSHAKE_REJECTED),
        ),
        "client_idle_timeout": (
            Script(False, flags=1, idle=1).handshake(1).frame(TEXT, REGISTER).advance(30).timer().value(),
            ended(Cause.CLOSE_TIMEOUT),
        ),
        "client_garbage_after_open": (
            Script(False, flags=1).handshake().raw(b"\x81\x05hel", cut=2).raw(b"lo\x8f\x00").value(),
            saw(InvalidSipMessage),
        ),
    }


# ----------------------------------------------------------------- cli SIP parsers


def sipmsg_seeds() -> dict[str, bytes]:
    """Whole messages as the browsers send them (the harness reads the input as one message)."""
    bye = in_dialog("BYE", f"{ALICE_CONTACT};ob", "z9hG4bK7731", 5232, from_bob=True)
    return {
        "jssip_register": jssip_register(),
        "sipjs_register": sipjs_register(),
        "sipjs_unregister_all": sipjs_unregister_all(),
        "jssip_message": jssip_message(),
        "jssip_options_compact": jssip_options(),
        "jssip_invite": jssip_invite(),
        "jssip_cancel": jssip_invite("CANCEL"),
        "sipjs_bye": bye,
        "ringing": message(
            "SIP/2.0 180 Ringing",
            "Via: SIP/2.0/WSS edge.example.com;branch=z9hG4bK1f2e,SIP/2.0/WSS 4r5bc3s6b9kq.invalid"
            ";branch=z9hG4bK9184312;received=192.0.2.7",
            "Record-Route: <sip:edge.example.com;transport=ws;lr>",
            'From: "Alice" <sip:alice@example.com>;tag=ko5v2ivqjr',
            "To: <sip:bob@example.com>;tag=9vs4bq",
            "Call-ID: nq6pm9hbud2vht2jrhfs",
            "CSeq: 5231 INVITE",
            f"Contact: <{BOB_CONTACT}>",
        ),
        "folded_ipv6": (
            b"OPTIONS sips:[2001:db8::1]:5061;transport=wss SIP/2.0\r\n"
            b"Via: SIP/2.0/WSS [2001:db8::9]:443 ;branch=z9hG4bKv6;rport\r\n"
            b"To:\r\n <sips:[2001:db8::1]:5061>\r\n"
            b"From: Alice Smith <sip:alice:secret@example.com?subject=hi>;tag=x\r\n"
            b"Call-ID: v6\r\nCSeq: 1 OPTIONS\r\nl: 4\r\n\r\nbody and more"
        ),
        "salvaged_control_in_uri": (  # finding salvage-start-line (fuzz/README.md)
            b"OPTIONS sips:[2001:db8::1]:5061;transport=ws\x18s SIP/2.0\r\n"
            b"Via: SIP/2.0/WSS [2001:cb8::9]:443 ;branch=z9hG4bKv6;rport\r\n"
            b"To:\r\n <sips:[2001:db8::1]:5061>\r\n"
            b"From: Alice Smith <sip:alice:secret@example.com?subject=hi>;tag=x\r\n"
            b"Call-ID: v6\r\nCSeq: 1 OPTIONS\r\nl: 4\r\n\r\nbody and more"
        ),
        "unterminated_contact": message(
            "MESSAGE sip:bob@example.com SIP/2.0",
            "Via: SIP/2.0/WSS 4r5bc3s6b9kq.invalid;branch=z9hG4bKbad",
            "To: <sip:bob@example.com>",
            "From: <sip:alice@example.com>;tag=1",
            "Call-ID: bad-1",
            "CSeq: 1 MESSAGE",
            "Contact: <sip:a@b",
        ),
    }


class Registrar:
    """A registrar script the way fuzz_registrar reads it (operations as integers from the end,
    message bytes from the front)."""

    def __init__(
        self, *, domain: bool = True, via: int = 0, bindings: int = 8, branches: int = 8, expires: int = 2
    ) -> None:
        self.seed = Seed().int(0, 3, 0 if domain else 1).int(0, 2, via)
        self.seed.int(1, 8, bindings).int(1, 8, branches).int(0, 3, expires).int(0, 3, 3)

    def _op(self, op: int) -> Seed:
        return self.seed.int(0, 4, op)

    def send(self, slot: int, data: bytes) -> Registrar:
        self._op(fuzz_registrar.SEND).int(0, 3, slot).int(0, fuzz_registrar.MAX_MESSAGE, len(data)).take(data)
        return self

    def answer(self, status: int, back: int = 0, wrong_slot: int | None = None) -> Registrar:
        self._op(fuzz_registrar.ANSWER).int(0, 7, back)
        self.seed.int(0, len(fuzz_registrar.STATUSES) - 1, fuzz_registrar.STATUSES.index(status))
        self.seed.int(0, 7, 0 if wrong_slot is None else 7)
        if wrong_slot is not None:
            self.seed.int(0, 3, wrong_slot)
        return self

    def close(self, slot: int) -> Registrar:
        self._op(fuzz_registrar.CLOSE).int(0, 3, slot)
        return self

    def wait(self, seconds: float, purge: bool = False) -> Registrar:
        self._op(fuzz_registrar.TIME).int(0, 0xFFFF, round(seconds * 16)).bool(purge)
        return self

    def repeat(self) -> Registrar:
        self._op(fuzz_registrar.REPEAT)
        return self

    def value(self) -> bytes:
        return self.seed.value()


def registrar_seeds() -> dict[str, tuple[bytes, Callable[[Any], bool]]]:
    def counted(**least: int) -> Callable[[Any], bool]:
        def ok(script: Any) -> bool:
            counters = script.registrar.counters
            return all(getattr(counters, name) >= value for name, value in least.items())

        return ok

    def both() -> Registrar:
        return Registrar().send(0, jssip_register()).send(1, sipjs_register())

    ack_2xx = in_dialog("ACK", BOB_CONTACT, "z9hG4bK5a1", 5231)
    bye = in_dialog("BYE", f"{ALICE_CONTACT};ob", "z9hG4bK7731", 5232, from_bob=True)
    return {
        "message_and_200": (
            both().send(0, jssip_message()).answer(200).value(),
            counted(replies=2, relayed_requests=1, relayed_responses=1),
        ),
        "call_answered_and_bye": (
            both()
            .send(0, jssip_invite())
            .answer(100)
            .answer(180)
            .answer(200)
            .send(0, ack_2xx)
            .send(1, bye)
            .answer(200)
            .value(),
            counted(relayed_requests=3, relayed_responses=4),
        ),
        "call_cancelled": (
            both()
            .send(0, jssip_invite())
            .answer(180)
            .send(0, jssip_invite("CANCEL"))
            .answer(200)
            .answer(487, back=1)
            .send(0, jssip_invite("ACK"))
            .repeat()
            .value(),
            counted(relayed_requests=4, relayed_responses=3),
        ),
        "options_notfound_ack": (
            Registrar(domain=False, via=1)
            .send(2, jssip_options())
            .send(2, jssip_message("carol"))
            .send(3, in_dialog("ACK", "sip:nobody@example.com", "z9hG4bKa", 1))
            .repeat()
            .value(),
            counted(replies=2, dropped_acks=2),
        ),
        "closed_flow_and_expiry": (
            both()
            .close(1)
            .send(0, jssip_message())
            .wait(601, purge=True)
            .send(0, jssip_message())
            .send(2, sipjs_unregister_all())
            .value(),
            counted(replies=5),
        ),
        "malformed_and_stray_response": (
            Registrar(via=2)
            .send(0, fuzz_sipmsg_seed("unterminated_contact"))
            .send(1, b"\r\n\r\n")
            .send(1, fuzz_sipmsg_seed("ringing"))
            .send(0, jssip_register(expires=0))
            .value(),
            counted(replies=2, dropped_malformed=1, dropped_responses=1),
        ),
        "eviction": (
            Registrar(bindings=2, branches=1)
            .send(0, jssip_register())
            .send(1, sipjs_register())
            .send(0, jssip_register(user="carol"))
            .send(0, jssip_invite())
            .send(1, jssip_message())
            .answer(200, wrong_slot=3)
            .answer(486, back=1)
            .value(),
            counted(evicted_bindings=1, evicted_branches=1, dropped_responses=2),
        ),
    }


# -------------------------------------------------------------------- PROXY headers


def proxy_seeds() -> dict[str, bytes]:
    """fuzz_proxy's layout: the first byte picks the part (0 raw bytes to the reader, 1 a valid
    header built from the rest, 2 forwarding fields, 3 a server), the rest is the provider's."""
    sig = bytes.fromhex("0d0a0d0a000d0a515549540a")
    crc = sig + bytes((0x21, 0x11, 0, 19)) + bytes((192, 0, 2, 7, 10, 0, 0, 1, 0x13, 0xC4, 1, 0xBB))
    crc += bytes((0x03, 0, 4, 0x16, 0x18, 0xA5, 0x61))  # the CRC32C of the header with these 4 zeroed

    def raw(payload: bytes, cuts: tuple[int, ...] = (), max_reads: int = 8, late: int = 9) -> bytes:
        seed = Seed().int(1, 8, max_reads).int(0, 9, late).int(0, 7, len(cuts))
        for cut in cuts:
            seed.int(1, 128, cut)
        return b"\x00" + seed.take(payload).value()

    def v4(seed: Seed, *octets: int) -> Seed:
        return seed.int(0, 3, 2).int(0, 2**32 - 1, int.from_bytes(bytes(octets), "big"))

    def valid_tail(seed: Seed, flip_range: int) -> bytes:
        seed.int(0, 64, 3).take(b"GET").int(0, 5, 1).int(1, 64, 7).int(1, 8, 8).int(0, 9, 9)
        return b"\x01" + seed.int(0, flip_range - 1, 12).int(1, 255, 1).value()

    tcp4 = v4(v4(Seed().bool(True).int(0, 2, 0), 192, 0, 2, 7), 10, 0, 0, 1).int(0, 65535, 5060)
    tcp4.int(0, 65535, 443)
    local = Seed().bool(False).int(0, 1, 0).int(0, 6, 0).int(-1, 4, 0).int(0, 4, 1).int(0, 8, 4)
    local.int(0, 300, 5).take(b"\x00\x01\x02\x03\x04").int(0, 15, 1)

    def xff(*hops: tuple[int, int, int, int]) -> Seed:
        seed = Seed().int(0, 9, 3)
        for i, hop in enumerate(hops):
            if i:
                seed.int(0, 9, 3)
            v4(seed, *hop).int(0, 7, 0)
        return seed

    def forwarding(header: int, trusted: int, fields: list[tuple[int, Seed, int]]) -> Seed:
        seed = Seed().int(1, 127, trusted).int(0, 2, header).int(0, 4, len(fields))
        for name, parts, count in fields:
            seed.int(0, 5, name).int(0, 7, 1).int(0, 5, count)
            seed.back += parts.back
            seed.front += parts.front
            seed.bool(True)
        return seed

    chain = xff((203, 0, 113, 5), (10, 1, 1, 1))
    element = Seed().int(0, 3, 1).int(0, 5, 0).int(0, 9, 3)
    v4(element, 198, 51, 100, 7).int(0, 7, 2).int(0, 3, 1)
    xff_seed = forwarding(2, 1, [(0, chain, 2)]).int(0, 3, 1).int(0, 9, 0).int(0, 65535, 40000)
    fwd_seed = forwarding(1, 1, [(1, element, 1)]).int(0, 3, 1).int(0, 9, 0).int(0, 65535, 40000)
    server = Seed().int(1, 127, 1).int(0, 2, 2).int(0, 3, 1).int(0, 9, 0).int(0, 65535, 40000)
    server.int(0, 3, 1).bool(True).int(0, 3, 1).int(1, 512, 100)  # no PROXY header, auto_accept, 2 reads
    server.int(0, 4, 1).int(0, 5, 0).int(0, 7, 1).int(0, 5, 2)  # one X-Forwarded-For of 2 hops
    server.back += chain.back
    server.bool(True).int(0, 7, 1)
    return {
        "v1_tcp4_then_http": raw(b"PROXY TCP4 192.0.2.7 10.0.0.1 5060 443\r\nGET / HTTP/1.1\r\n", (10, 30)),
        "v1_tcp6": raw(b"PROXY TCP6 2001:db8::7 ::1 65535 0\r\n\x16\x03\x01", (40,)),
        "v1_unknown": raw(b"PROXY UNKNOWN ffff::1 ::2 1 2\r\n"),
        "v1_bad_port": raw(b"PROXY TCP4 1.2.3.4 5.6.7.8 080 1\r\n"),
        "v2_crc_then_tls": raw(crc + b"\x16\x03\x01", (5, 16, 1)),
        "v2_local": raw(sig + b"\x20\x00\x00\x00", late=1),
        "v2_local_tcp4_empty": raw(sig + b"\x20\x11\x00\x00"),  # finding local-family
        "tls_not_proxy": raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", max_reads=1),
        "valid_v1_tcp4": valid_tail(tcp4, 40),
        "valid_v2_local_crc": valid_tail(local, 16 + 7),
        "xff_chain": b"\x02" + xff_seed.value(),
        "forwarded_quoted": b"\x02" + fwd_seed.value(),
        "server_xff": b"\x03" + server.value(),
    }


def fuzz_sipmsg_seed(label: str) -> bytes:
    return sipmsg_seeds()[label]


def is_grown(path: Path) -> bool:
    """Whether a corpus file was found by a campaign (libFuzzer names those by the SHA-1 of their
    content) rather than written here as `<label>-<digest>`."""
    return len(path.name) == 40 and all(char in "0123456789abcdef" for char in path.name)


def write(name: str, seeds: dict[str, bytes]) -> None:
    """Replace the labelled seeds of corpus `name`; the inputs campaigns grew there stay."""
    folder = HERE / "corpus" / name
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if not is_grown(path):
            path.unlink()
    for label, data in seeds.items():
        digest = hashlib.sha1(data).hexdigest()[:10]
        (folder / f"{label}-{digest}").write_bytes(data)


def checked(
    name: str, run: Callable[[bytes], Any], seeds: dict[str, tuple[bytes, Callable[[Any], bool]]]
) -> dict[str, bytes]:
    failed = [label for label, (data, ok) in seeds.items() if not ok(run(data))]
    if failed:
        raise SystemExit(f"{name}: seeds that miss their target: {', '.join(failed)}")
    return {label: data for label, (data, _) in seeds.items()}


def main() -> None:
    """Write every corpus; refuse when a seed no longer reaches its target (the harness layout changed)."""
    write("fuzz_handshake_server", checked("server", fuzz_handshake_server.run, server_seeds()))
    write("fuzz_handshake_client", checked("client", fuzz_handshake_client.run, client_seeds()))
    write("fuzz_frames", checked("frames", fuzz_frames.run, frame_seeds()))
    for data in sip_seeds().values():
        fuzz_sip.run(data)
    write("fuzz_sip", sip_seeds())
    write("fuzz_connection", checked("connection", fuzz_connection.run, connection_seeds()))
    for data in sipmsg_seeds().values():
        fuzz_sipmsg.run(data)
    write("fuzz_sipmsg", sipmsg_seeds())
    write("fuzz_registrar", checked("registrar", fuzz_registrar.run, registrar_seeds()))
    for data in proxy_seeds().values():
        fuzz_proxy.run(data)
    write("fuzz_proxy", proxy_seeds())
    print(f"corpora written under {HERE / 'corpus'}", file=sys.stderr)


if __name__ == "__main__":
    main()
