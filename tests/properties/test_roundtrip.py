"""Frame round trips: our client and server carry any payload intact; wsproto decodes our frames."""

from __future__ import annotations

import itertools
import random

from hypothesis import event, given, settings
from hypothesis import strategies as st
from props_support import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    examples,
    is_utf8,
    open_client,
    open_server,
)
from wsproto.frame_protocol import FrameProtocol, Opcode

from sansio_wss import (
    Config,
    Connection,
    CrlfKeepalive,
    Event,
    InvalidSipMessage,
    SipMessageReceived,
)
from sansio_wss._frames import close_payload, encode

CONFIG = Config(max_message_size=1 << 20)
# Both sides of each length-encoding boundary: 7-bit up to 125, 16-bit up to 65535, 64-bit beyond.
BOUNDARIES = [0, 1, 2, 3, 4, 5, 124, 125, 126, 127, 128, 65534, 65535, 65536, 65537, 70_000]


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """0 to ~70 KB: ASCII, UTF-8 text, bytes, or text with one invalid or truncated UTF-8 sequence."""
    size = draw(
        st.one_of(
            st.sampled_from(BOUNDARIES),
            st.integers(0, 300),
            st.integers(126, 65535),
            st.integers(65536, 70_000),
        )
    )
    rng = random.Random(draw(st.integers(0, 2**32)))
    kind = draw(st.sampled_from(["ascii", "unicode", "bytes", "invalid utf8", "truncated utf8", "keepalive"]))
    if kind == "keepalive":
        return draw(st.sampled_from([b"\r\n\r\n", b"\r\n"]))
    if kind == "bytes":
        return rng.randbytes(size)
    if kind == "ascii":
        data = bytes(rng.randrange(128) for _ in range(min(size, 4096))) * (size // 4096 + 1)
        return data[:size]
    alphabet = "aZ0 \r\n\u00e9\u00ff\u0100\u20ac\u4e2d\U0001f600\ufeff"
    text = "".join(rng.choice(alphabet) for _ in range(min(size // 2, 2048)))
    data = (text * (size // max(1, len(text.encode())) + 1)).encode()[:size] if text else b""
    data = data.decode("utf-8", "ignore").encode()  # a cut in the middle of a sequence
    if kind == "invalid utf8":
        at = rng.randint(0, len(data))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80"])) + data[at:]
    elif kind == "truncated utf8":
        data += draw(st.sampled_from([b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98"]))
    return data


def delivered(events: list[Event]) -> list[tuple[bytes, bool | None]]:
    """(message, binary) per message; CRLF keepalives as their bytes with binary None."""
    out: list[tuple[bytes, bool | None]] = []
    for ev in events:
        if isinstance(ev, (SipMessageReceived, InvalidSipMessage)):
            out.append((ev.message, ev.binary))
        elif isinstance(ev, CrlfKeepalive):
            out.append((b"\r\n\r\n" if ev.ping else b"\r\n", None))
        else:
            raise AssertionError(f"unexpected event {ev!r}")
    return out


def expected(payload: bytes) -> tuple[bytes, bool | None]:
    if payload in (b"\r\n\r\n", b"\r\n"):
        return payload, None
    return payload, not is_utf8(payload)


@settings(max_examples=examples(1.0))
@given(
    st.sampled_from(["client to server", "server to client"]),
    st.lists(payloads(), min_size=1, max_size=3),
    st.data(),
)
def test_any_payload_arrives_intact(direction: str, messages: list[bytes], data: st.DataObject) -> None:
    client, server = open_client(CONFIG), open_server(CONFIG)
    sender: Connection = client if direction == "client to server" else server
    receiver: Connection = server if sender is client else client
    for payload in messages:
        event(
            "64-bit length"
            if len(payload) > 65535
            else "16-bit length"
            if len(payload) > 125
            else "7-bit length"
        )
        as_str = is_utf8(payload) and data.draw(st.booleans(), "send as str")
        sender.send(payload.decode() if as_str else payload, 0.0)
    wire = sender.data_to_send()
    assert bool(wire[1] & 0x80) == (sender is client)  # only a client masks
    receiver.receive_data(wire, 0.0)
    assert delivered(receiver.events()) == [expected(p) for p in messages]
    assert receiver.closed_event is None


def wsproto_messages(wire: bytes, *, sent_by_client: bool) -> list[tuple[int, bytes | tuple[int, str], bool]]:
    """(opcode, payload, fin) per frame as wsproto's FrameProtocol decodes `wire`."""
    proto = FrameProtocol(client=not sent_by_client, extensions=[])
    proto.receive_bytes(wire)
    out: list[tuple[int, bytes | tuple[int, str], bool]] = []
    for f in proto.received_frames():
        assert f.frame_finished
        payload = f.payload
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        elif isinstance(payload, (bytes, bytearray)):
            payload = bytes(payload)
        else:
            code, reason = payload
            payload = (int(code), reason)
        out.append((int(f.opcode), payload, f.message_finished))
    return out


@settings(max_examples=examples(1.0))
@given(
    payloads(),
    st.booleans(),
    st.lists(st.integers(0, 70_000), max_size=4),
    st.binary(min_size=4, max_size=4),
    st.binary(max_size=125),
    st.tuples(st.sampled_from([1000, 1001, 1008, 1011, 3000, 4999]), st.text(max_size=30)).filter(
        lambda cr: len(cr[1].encode()) <= 123
    ),
)
def test_encode_then_wsproto_decode(
    payload: bytes,
    masked: bool,
    cuts: list[int],
    mask: bytes,
    ping: bytes,
    close: tuple[int, str],
) -> None:
    opcode = TEXT if is_utf8(payload) else BINARY
    key = mask if masked else None
    bounds = [0, *sorted(c for c in cuts if c <= len(payload)), len(payload)]
    parts = [payload[a:b] for a, b in itertools.pairwise(bounds)]
    wire = b""
    for i, part in enumerate(parts):
        wire += encode(opcode if i == 0 else CONTINUATION, part, key, fin=i == len(parts) - 1)
        if i == 0:
            wire += encode(PING, ping, key)  # a control frame in the middle of the message
    wire += encode(PONG, ping, key) + encode(CLOSE, close_payload(*close), key)
    frames = wsproto_messages(wire, sent_by_client=masked)
    # wsproto reports every fragment of a message with the message's opcode
    data_frames = [f for f in frames if f[0] in (Opcode.TEXT, Opcode.BINARY)]
    assert b"".join(f[1] for f in data_frames if isinstance(f[1], bytes)) == payload
    assert [f[2] for f in data_frames] == [i == len(parts) - 1 for i in range(len(parts))]
    assert {f[0] for f in data_frames} == {opcode}
    controls = [f for f in frames if f not in data_frames]
    assert controls == [(PING, ping, True), (PONG, ping, True), (CLOSE, close, True)]
