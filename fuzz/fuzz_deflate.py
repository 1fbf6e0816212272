"""Fuzz permessage-deflate on open connections, both roles: a negotiated agreement, then a peer that
sends compressed messages (valid, raw bytes, bombs), plain ones and bad reserved bits, and sends."""

from __future__ import annotations

import codecs
import tracemalloc
import zlib
from types import SimpleNamespace
from typing import Any

import atheris
from _deflate_oracle import TAIL, Negotiated, Reference, agreement_of, allowed_answer
from _oracle import OracleError, Watcher, check, split, valid_utf8
from _samples import CHROME_REQUEST, CLIENT_KEY, HOST, SIP_MESSAGES, reply_101
from _trace_oracle import FixedMasks
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import Opcode, RsvBits

from sansio_wss import (
    ClientConnection,
    Config,
    CrlfKeepalive,
    InvalidSipMessage,
    ServerConnection,
    SipMessageReceived,
)
from sansio_wss._connection import Connection
from sansio_wss._frames import BINARY, CONTINUATION, PING, TEXT, encode
from sansio_wss.sip import receive

MAX_SIZES = (64, 300, 4096, 65536)
MASK = b"\x37\xfa\x21\x3d"
PLAIN_REQUEST = CHROME_REQUEST.replace(
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", b""
)
BOMB_SIZES = (1 << 20, 16 << 20)
_BOMBS: dict[int, bytes] = {}
_DELIVERED = (SipMessageReceived, InvalidSipMessage, CrlfKeepalive)


def bomb(size: int) -> bytes:
    """`size` zero bytes compressed (made once): distance-1 matches, valid for any window."""
    if size not in _BOMBS:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -9)
        _BOMBS[size] = compressor.compress(bytes(size)) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
    return _BOMBS[size]


def offer(fdp: atheris.FuzzedDataProvider, client_window: int | None) -> tuple[str, Negotiated]:
    """A valid permessage-deflate offer (`client_window` None) or an answer our client keeps to its
    offer of `server_max_window_bits=client_window; client_max_window_bits`; and what it says."""
    flags = fdp.ConsumeIntInRange(0, 63)
    parts = ["permessage-deflate"]
    if flags & 1:
        parts.append("server_no_context_takeover")
    if flags & 2:
        parts.append("client_no_context_takeover")
    server: int | None = None
    client: int | None = None
    if flags & 4:
        server = fdp.ConsumeIntInRange(9, client_window or 15)
        parts.append(f"server_max_window_bits={server}")
    if flags & 8:
        if client_window is None and flags & 16:
            client = 0
            parts.append("client_max_window_bits")
        else:
            client = fdp.ConsumeIntInRange(8 if client_window is None else 9, 15)
            parts.append(f"client_max_window_bits={client}")
    text = "; ".join(parts) if flags & 32 else ";".join(parts)
    return text, Negotiated(bool(flags & 1), bool(flags & 2), server, client)


class Run:
    """One open connection with an agreement, its peer, and what each side must see."""

    def __init__(self, fdp: atheris.FuzzedDataProvider) -> None:
        self.fdp = fdp
        self.server = fdp.ConsumeBool()
        choice = fdp.ConsumeIntInRange(0, 13)  # the window, and 7..13: the peer compresses with wsproto
        self.window = 9 + choice % 7
        self.limit = MAX_SIZES[fdp.ConsumeIntInRange(0, len(MAX_SIZES) - 1)]
        config = Config(
            deflate=True,
            deflate_window_bits=self.window,
            max_message_size=self.limit,
            ping_interval=None,
            idle_timeout=None,
            handshake_timeout=None,
            max_msg_chunks=1 << 16,
            require_origin=False,
        )
        self.now = 10.0
        conn: Connection
        if self.server:
            conn = ServerConnection(self.now, config)
        else:
            conn = ClientConnection(HOST, self.now, config=config, key=CLIENT_KEY)
            conn._masks = FixedMasks()
        self.conn = conn
        self.watch = Watcher(conn, self.server)
        self.watch.wire.deflate = True
        self.watch.bound = self.limit + (self.limit >> 8) + 64 + 14
        self.watch.step()
        agreement = self.negotiate()
        terms = agreement.terms()
        # wsproto's PerMessageDeflate as the peer: it inflates what we send (a second opinion beside
        # zlib) and, in its mode, compresses what the peer sends; it takes windows of 9 bits and up
        self.wsproto: PerMessageDeflate | None = None
        if 8 not in terms:
            self.wsproto = PerMessageDeflate()
            self.wsproto.finalize(_full(agreement))
        self.via_wsproto = choice >= 7 and self.wsproto is not None
        self.proto: Any = SimpleNamespace(client=self.server)  # the peer is a client when we serve
        own, peer = ((2, 0), (3, 1)) if self.server else ((3, 1), (2, 0))
        self.own_bits, self.own_reset = int(terms[own[0]]), bool(terms[own[1]])
        self.peer_bits, self.peer_reset = int(terms[peer[0]]), bool(terms[peer[1]])
        self.reference = Reference(self.peer_bits, self.peer_reset, self.limit)
        self.compressor: zlib._Compress | None = None
        self.inflater: zlib._Decompress | None = None
        self.outgoing: list[bytes] = []  # what we sent or answered, in order, still to be seen
        self.frames_seen = 0
        self.failed: int | None = None
        self.tainted = False  # the receiver's context is not one a valid peer compressor shares

    def negotiate(self) -> Negotiated:
        """Open with a fuzzer-chosen offer (we are the server) or answer (we are the client)."""
        if self.server:
            value, asked = offer(self.fdp, None)
            lines = f"Sec-WebSocket-Extensions: {value}\r\n".encode()
            self.watch.feed(PLAIN_REQUEST[:-2] + lines + b"\r\n", self.now)
        else:
            value, asked = offer(self.fdp, self.window)
            self.watch.feed(reply_101(extra=f"Sec-WebSocket-Extensions: {value}\r\n".encode()), self.now)
        self.watch.step()
        opened = self.watch.opened
        check(opened is not None and bool(opened.extensions), lambda: f"{value!r} not agreed: {opened}")
        assert opened is not None
        answer = agreement_of([opened.extensions])
        check(answer is not None, lambda: f"answer {opened.extensions!r} to {value!r}")
        assert answer is not None
        if self.server:
            why = allowed_answer(asked, answer, self.window)
            check(why is None, lambda: f"{why}: {opened.extensions!r} to {value!r}")
        else:
            same = answer.terms() == asked.terms()
            check(same, lambda: f"Opened.extensions {opened.extensions!r} for {value!r}")
        return answer

    # ------------------------------------------------------------------ the peer

    def content(self) -> bytes:
        fdp = self.fdp
        kind = fdp.ConsumeIntInRange(0, 3)
        if kind == 0:
            index: int = fdp.ConsumeIntInRange(0, len(SIP_MESSAGES) - 1)
            return SIP_MESSAGES[index]
        if kind == 1:
            return bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300)))
        sizes = (self.limit - 1, self.limit, self.limit + 1, fdp.ConsumeIntInRange(0, 70000))
        fill = bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 8))) or b"a"
        size = sizes[fdp.ConsumeIntInRange(0, 3)]
        return (fill * (size // len(fill) + 1))[:size]

    def frames(self, first: int, pieces: list[bytes]) -> bytes:
        """A message's frames as the peer writes them (masked towards a server), maybe a Ping between."""
        wire = b""
        for index, piece in enumerate(pieces):
            opcode = first if index == 0 else CONTINUATION
            wire += encode(opcode, piece, MASK if self.server else None, index == len(pieces) - 1)
            if index < len(pieces) - 1 and self.fdp.ConsumeIntInRange(0, 7) == 0:
                wire += encode(PING, b"p", MASK if self.server else None)
        return wire

    def cut(self, data: bytes, most: int = 4) -> list[bytes]:
        fdp = self.fdp
        count = fdp.ConsumeIntInRange(0, most - 1)
        return split(data, [fdp.ConsumeIntInRange(1, max(1, len(data))) for _ in range(count)])

    def compressed(self) -> tuple[bytes, bytes, bool, bool]:
        """A message and its compression with zlib (or wsproto); whether that follows the agreement,
        and whether the compressor started afresh (without the context of earlier messages)."""
        fdp = self.fdp
        data = self.content()
        if self.via_wsproto and self.wsproto is not None:
            fresh = self.wsproto._compressor is None
            _, body = self.wsproto.frame_outbound(
                self.proto, Opcode.BINARY, RsvBits(False, False, False), data, True
            )
            return data, body, True, fresh
        rogue = fdp.ConsumeIntInRange(0, 15) == 0  # a window or a context the agreement forbids
        top = 15 if rogue else max(self.peer_bits, 9)
        compressor = self.compressor
        fresh = compressor is None or not fdp.ConsumeBool() or (self.peer_reset and not rogue)
        if fresh or compressor is None:
            bits = fdp.ConsumeIntInRange(9, top)
            compressor = zlib.compressobj(fdp.ConsumeIntInRange(0, 9), zlib.DEFLATED, -bits)
            self.compressor = compressor
        # compress(b"") too: without a call since the last flush, zlib's flush writes nothing
        body = b"".join(compressor.compress(piece) for piece in self.cut(data) or [b""])
        if fdp.ConsumeIntInRange(0, 7) == 0:  # a final block (RFC 7692 7.2.3.4): the stream ends
            self.compressor = None
            return data, body + compressor.flush(zlib.Z_FINISH), not rogue, fresh
        body += compressor.flush(zlib.Z_SYNC_FLUSH if fdp.ConsumeBool() else zlib.Z_FULL_FLUSH)
        check(body.endswith(TAIL), "zlib's flush does not end with 00 00 ff ff")
        return data, body[:-4], not rogue, fresh

    def message(self) -> None:
        """A compressed message: valid, raw fuzzer bytes or a bomb, in fragments and reads."""
        fdp = self.fdp
        kind = fdp.ConsumeIntInRange(0, 5)
        text = fdp.ConsumeBool()
        valid = fresh = False
        original = b""
        if kind <= 2:
            original, payload, valid, fresh = self.compressed()
        elif kind == 3:
            payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
        elif kind == 4:
            payload = bomb(BOMB_SIZES[fdp.ConsumeIntInRange(0, 1)])
        else:
            self.uncompressed(text)
            return
        pieces = self.cut(payload) if payload else [b""]
        # after raw bytes or a rogue peer, the two ends share no context until both start afresh
        in_step = not self.tainted or (fresh and self.reference.inflater is None)
        expected = self.reference.message(pieces, text)
        if valid and in_step and len(original) <= self.limit and (not text or valid_utf8(original)):
            check(expected == original, "the reference does not inflate a valid message")
        self.tainted = not (valid and in_step)
        self.deliver(self.frames((TEXT if text else BINARY) | 0x40, pieces), expected, text, kind == 4)

    def uncompressed(self, text: bool) -> None:
        """A plain message, allowed beside compressed ones (RSV1 clear): per frame, the size, then
        UTF-8 (invalid as soon as a prefix cannot start valid text)."""
        data = self.content()
        pieces = self.cut(data) if data else [b""]
        expected: bytes | int = data
        decoder = codecs.getincrementaldecoder("utf-8")()
        size = 0
        for index, piece in enumerate(pieces):
            size += len(piece)
            if size > self.limit:
                expected = 1009
                break
            try:
                if text:
                    decoder.decode(piece, index == len(pieces) - 1)
            except UnicodeDecodeError:
                expected = 1007
                break
        self.deliver(self.frames(TEXT if text else BINARY, pieces), expected, text, False)

    def reserved(self) -> None:
        """RSV1 where it has no meaning (a Ping, a continuation), or RSV2/RSV3: 1002."""
        fdp = self.fdp
        first = (PING | 0x40, CONTINUATION | 0x40, TEXT | 0x20, BINARY | 0x10, TEXT | 0x60)
        opcode = first[fdp.ConsumeIntInRange(0, len(first) - 1)]
        self.deliver(encode(opcode, b"x", MASK if self.server else None), 1002, False, False)

    def deliver(self, wire: bytes, expected: bytes | int, text: bool, bomb: bool) -> None:
        """Feed a message in fuzzer-chosen reads; it arrives as `expected` or fails with that code."""
        if bomb:
            tracemalloc.start()
        for chunk in self.cut(wire):
            if bomb:  # measure the core only: the watcher keeps a copy of all the peer sent
                self.conn.receive_data(chunk, self.now)
            else:
                self.watch.feed(chunk, self.now)
            self.memory()
        if bomb:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            most = 3 * len(wire) + 4 * (self.limit + 1) + (256 << 10)
            check(peak <= most, lambda: f"a bomb of {len(wire)} bytes took {peak} bytes, limit {self.limit}")
        events, _ = self.watch.step()
        delivered = [e for e in events if isinstance(e, _DELIVERED)]
        if isinstance(expected, int):
            check(not delivered, lambda: f"delivered {delivered!r}, expected close {expected}")
            self.now += 1.0
            self.conn.handle_timer(self.now)  # a failure held back for our answer goes now
            self.watch.step()
            closed = self.watch.closed
            check(
                closed is not None and closed.code == expected, lambda: f"expected {expected}, got {closed}"
            )
            self.failed = expected
            return
        event, reply = receive(expected, not text)
        check(delivered == [event], lambda: f"delivered {delivered!r}, expected {event!r}")
        if reply is not None:
            self.outgoing.append(reply)

    def memory(self) -> None:
        """Never more than max_message_size inflated in memory (one byte more while failing)."""
        conn = self.conn
        held = conn._frag_size
        check(held <= self.limit, lambda: f"{held} bytes of a message held, limit {self.limit}")
        deflate = conn._deflate
        inflated = 0 if deflate is None else deflate._inflated
        check(inflated <= self.limit, lambda: f"{inflated} bytes inflated, limit {self.limit}")

    # ------------------------------------------------------------------- our side

    def send(self) -> None:
        fdp = self.fdp
        message: bytes | str = self.content() if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(100)
        self.conn.send(message, self.now)
        self.outgoing.append(message.encode() if isinstance(message, str) else message)
        self.watch.step()

    def written(self) -> None:
        """Our data frames inflate (window and context as agreed) to what we sent, in order."""
        wire = self.watch.wire
        for index in range(self.frames_seen, len(wire.frames)):
            opcode, payload = wire.frames[index]
            if opcode not in (TEXT, BINARY):
                continue
            if wire.compressed[index]:
                if self.inflater is None:
                    self.inflater = zlib.decompressobj(-self.own_bits)
                try:
                    payload = self.inflater.decompress(payload + TAIL)
                except zlib.error as exc:
                    raise OracleError(
                        f"our frame does not inflate with {self.own_bits} bits: {exc}"
                    ) from None
                if self.own_reset:
                    self.inflater = None
                if self.wsproto is not None:
                    self.differential(opcode, wire.frames[index][1], payload)
            if not self.outgoing:
                raise OracleError(f"we wrote a message nobody sent: {payload[:60]!r}")
            sent = self.outgoing.pop(0)
            if payload != sent:
                raise OracleError(f"we sent {sent[:60]!r}, wrote {payload[:60]!r}")
        self.frames_seen = len(wire.frames)

    def differential(self, opcode: int, frame: bytes, inflated: bytes) -> None:
        """wsproto, as the peer, inflates our compressed frame to what zlib does."""
        ext, proto = self.wsproto, self.proto
        assert ext is not None
        header = ext.frame_inbound_header(proto, Opcode(opcode), RsvBits(True, False, False), len(frame))
        check(header == RsvBits(True, False, False), lambda: f"wsproto refused our frame header: {header!r}")
        data = ext.frame_inbound_payload_data(proto, frame)
        tail = ext.frame_inbound_complete(proto, True)
        check(isinstance(data, bytes) and isinstance(tail, bytes), lambda: f"wsproto: {data!r} {tail!r}")
        assert isinstance(data, bytes) and isinstance(tail, bytes)
        check(data + tail == inflated, "wsproto inflates our frame to something else than zlib")


def _full(agreement: Negotiated) -> str:
    """The agreement with every window written out, as wsproto's `finalize` reads it."""
    snct, cnct, server, client = agreement.terms()
    flags = ["server_no_context_takeover"] * snct + ["client_no_context_takeover"] * cnct
    windows = [f"server_max_window_bits={server}", f"client_max_window_bits={client}"]
    return "; ".join(["permessage-deflate", *flags, *windows])


def run(data: bytes) -> Run:
    """Run the script in `data`; returns it for the seed tests."""
    fdp = atheris.FuzzedDataProvider(data)
    script = Run(fdp)
    for _ in range(24):
        if not fdp.remaining_bytes() or script.failed is not None:
            break
        op = fdp.ConsumeIntInRange(0, 7)
        if op <= 4:
            script.message()
        elif op == 5:
            script.reserved()
        else:
            script.send()
        script.written()
    if script.failed is None:
        check(not script.outgoing, lambda: f"sent but never written: {script.outgoing[:2]!r}")
    return script


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the OSS-Fuzz entry point's name)
    """The atheris entry point."""
    run(data)


if __name__ == "__main__":
    from _engine import fuzz

    fuzz(TestOneInput)
