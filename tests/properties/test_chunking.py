"""Any split of a byte stream gives the same events; a unit spanning more than max_msg_chunks reads fails."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from props_support import (
    BINARY,
    CLOSE,
    CONTINUATION,
    HUGE_CHUNKS,
    KEY,
    PING,
    PONG,
    REPLY_101,
    REQUEST,
    TEXT,
    Frame,
    examples,
    frame,
    parse_frames,
    sip_message,
    split,
)

from sansio_wss import (
    Cause,
    ClientConnection,
    CloseReceived,
    Config,
    Connection,
    ConnectionClosed,
    CrlfKeepalive,
    Event,
    Opened,
    PingReceived,
    PongReceived,
    ServerConnection,
    SipMessageReceived,
    State,
    TransportAction,
)

NOW = 1.0
UNLIMITED = Config(max_msg_chunks=HUGE_CHUNKS, max_message_size=1 << 20)


@dataclass
class Unit:
    """Bytes of one message (all its fragments, pings included) or one control frame, and what
    the receiving connection must emit and answer for it."""

    data: bytes = b""
    events: list[Event] = field(default_factory=list)
    replies: list[Frame] = field(default_factory=list)


def _append(unit: Unit, other: Unit) -> Unit:
    return Unit(unit.data + other.data, unit.events + other.events, unit.replies + other.replies)


@st.composite
def ping_units(draw: st.DrawFn, masked: bool) -> Unit:
    payload = draw(st.binary(max_size=125))
    mask = MASKS[draw(st.integers(0, len(MASKS) - 1))] if masked else None
    if draw(st.booleans()):
        return Unit(frame(PING, payload, mask=mask), [PingReceived(payload)], [(PONG, True, payload)])
    return Unit(frame(PONG, payload, mask=mask), [PongReceived(payload)], [])


MASKS = (b"\x00\x00\x00\x00", b"\x37\xfa\x21\x3d", b"\xff\xff\xff\xff", b"\x01\x80\x7f\xfe")
METHODS = st.sampled_from(["REGISTER", "INVITE", "OPTIONS", "MESSAGE"])


@st.composite
def message_units(draw: st.DrawFn, masked: bool, max_body: int = 300) -> Unit:
    """One data message: a SIP text message, a non-UTF-8 binary one, or a CRLF keepalive;
    one frame or several, with pings and pongs between the fragments."""
    kind = draw(st.sampled_from(["text", "binary", "keepalive"]))
    if kind == "text":
        payload = sip_message(draw(METHODS), draw(st.text(max_size=max_body)))
        opcode = TEXT
        expected: Event = SipMessageReceived(payload, False)
    elif kind == "binary":
        body = b"\xff" + draw(st.binary(max_size=max_body))  # 0xFF never occurs in UTF-8
        payload = sip_message(draw(METHODS), "") + body
        opcode = BINARY
        expected = SipMessageReceived(payload, True)
    else:
        payload = b"\r\n\r\n"
        opcode = draw(st.sampled_from([TEXT, BINARY]))
        expected = CrlfKeepalive(True)
    cuts = draw(st.lists(st.integers(0, len(payload)), max_size=4))
    bounds = [0, *sorted(cuts), len(payload)]
    parts = [payload[a:b] for a, b in itertools.pairwise(bounds)]
    unit = Unit()
    for i, part in enumerate(parts):
        if i:
            for _ in range(draw(st.integers(0, 2))):
                unit = _append(unit, draw(ping_units(masked)))
        mask = MASKS[draw(st.integers(0, len(MASKS) - 1))] if masked else None
        unit.data += frame(opcode if i == 0 else CONTINUATION, part, fin=i == len(parts) - 1, mask=mask)
    unit.events.append(expected)
    if kind == "keepalive":
        unit.replies.append((opcode, True, b"\r\n"))
    return unit


def any_units(masked: bool) -> st.SearchStrategy[Unit]:
    return st.one_of(message_units(masked), ping_units(masked))


@st.composite
def streams(draw: st.DrawFn, masked: bool) -> tuple[Unit, tuple[int, str] | None]:
    """Several units, then maybe a Close frame: (the stream, the Close's code and reason)."""
    stream = Unit()
    for unit in draw(st.lists(any_units(masked), min_size=1, max_size=8)):
        stream = _append(stream, unit)
    close = None
    if draw(st.booleans()):
        code = draw(st.sampled_from([1000, 1001, 1003, 1008, 1011, 1014, 3000, 4999]))
        reason = draw(st.text(max_size=20).filter(lambda r: len(r.encode()) <= 123))
        close = (code, reason)
        mask = MASKS[1] if masked else None
        stream.data += frame(CLOSE, code.to_bytes(2, "big") + reason.encode(), mask=mask)
        stream.events.append(CloseReceived(code, reason))
        stream.replies.append((CLOSE, True, code.to_bytes(2, "big")))
    return stream, close


def cut_points(data: st.DataObject, length: int) -> list[int]:
    """Where to cut `length` bytes: nowhere, a few random places, or everywhere."""
    if length < 2:
        return []
    how = data.draw(st.sampled_from(["few", "few", "many", "every byte"]))
    if how == "every byte":
        return list(range(1, length))
    size = 4 if how == "few" else 40
    return data.draw(st.lists(st.integers(1, length - 1), max_size=size))


def feed(conn: Connection, pieces: list[bytes]) -> tuple[list[Event], bytes]:
    events: list[Event] = []
    out = b""
    for piece in pieces:
        conn.receive_data(piece, NOW)
        events += conn.events()
        out += conn.data_to_send()
    return events, out


def check_model(events: list[Event], expected: Unit, close: tuple[int, str] | None) -> None:
    """The events of the whole-stream run are exactly those the stream's builder predicted."""
    assert isinstance(events[0], Opened), events[0]
    body = events[1:]
    if close is None:
        assert body == expected.events
        return
    assert body[:-1] == expected.events
    end = body[-1]
    assert isinstance(end, ConnectionClosed), end
    assert (end.code, end.reason, end.clean, end.cause) == (*close, True, Cause.PEER_CLOSED)


@settings(max_examples=examples(1.0))
@given(streams(masked=True), st.data())
def test_server_any_split_gives_same_events_and_bytes(
    built: tuple[Unit, tuple[int, str] | None], data: st.DataObject
) -> None:
    stream, close = built
    whole = ServerConnection(0.0, UNLIMITED)
    events, out = feed(whole, [REQUEST, stream.data])
    check_model(events, stream, close)
    head, sep, frames = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ") and sep
    assert parse_frames(frames, masked=False) == stream.replies

    request_cuts = cut_points(data, len(REQUEST))
    frame_cuts = cut_points(data, len(stream.data))
    pieces = split(REQUEST, request_cuts) + split(stream.data, frame_cuts)
    chopped = ServerConnection(0.0, UNLIMITED)
    assert feed(chopped, pieces) == (events, out)
    assert (chopped.state, chopped.transport_action) == (whole.state, whole.transport_action)


def test_server_refuses_frames_pipelined_behind_the_request() -> None:
    """Why the split tests always cut between the request and the frames."""
    conn = ServerConnection(0.0, UNLIMITED)
    events, out = feed(conn, [REQUEST + frame(PING, b"x")])
    assert isinstance(events[-1], ConnectionClosed) and events[-1].status == 400
    assert out.startswith(b"HTTP/1.1 400 ")


@settings(max_examples=examples(1.0))
@given(streams(masked=False), st.data())
def test_client_any_split_gives_same_events_and_frames(
    built: tuple[Unit, tuple[int, str] | None], data: st.DataObject
) -> None:
    stream, close = built
    raw = REPLY_101 + stream.data
    runs = []
    for cuts in ([], cut_points(data, len(raw))):
        conn = ClientConnection("sip.example.com", 0.0, config=UNLIMITED, key=KEY)
        conn.data_to_send()
        events, out = feed(conn, split(raw, cuts))
        runs.append((events, parse_frames(out, masked=True), conn.state, conn.transport_action))
    assert runs[0] == runs[1]  # masks differ from run to run: compare unmasked frames
    check_model(runs[0][0], stream, close)
    assert runs[0][1] == stream.replies


def opened(role: str, config: Config) -> Connection:
    if role == "server":
        conn: Connection = ServerConnection(0.0, config)
        conn.receive_data(REQUEST, NOW)
    else:
        conn = ClientConnection("sip.example.com", 0.0, config=config, key=KEY)
        conn.receive_data(REPLY_101, NOW)
    assert conn.state is State.OPEN
    conn.events()
    conn.data_to_send()
    return conn


@settings(max_examples=examples(1.5))
@given(
    st.sampled_from(["server", "client"]),
    st.integers(1, 6),
    st.data(),
)
def test_message_over_max_msg_chunks_reads_fails_with_1008(role: str, k: int, data: st.DataObject) -> None:
    masked = role == "server"
    message = data.draw(
        st.one_of(message_units(masked, max_body=40), ping_units(masked)), "message or control frame"
    )
    # a unit that began in earlier reads (within the limit) and ends in the message's first read,
    # then whole units, then the message, then whole units in its last read
    previous = data.draw(st.lists(any_units(masked), max_size=1), "unit ending in the first read")
    before = previous + data.draw(st.lists(any_units(masked), max_size=2), "complete units in the first read")
    after = data.draw(st.lists(any_units(masked), max_size=2), "complete units in the last read")
    early: list[bytes] = []
    if previous:
        size = len(previous[0].data)
        early = split(
            previous[0].data, data.draw(st.sets(st.integers(1, size - 1), max_size=min(k - 1, size - 1)))
        )
        early, before[0] = early[:-1], Unit(early[-1], before[0].events, before[0].replies)
    cuts = data.draw(st.sets(st.integers(1, len(message.data) - 1), max_size=min(9, len(message.data) - 1)))
    reads = split(message.data, cuts)
    m = len(reads)
    reads[0] = b"".join(u.data for u in before) + reads[0]
    reads[-1] += b"".join(u.data for u in after)
    reads = early + reads

    conn = opened(role, Config(max_msg_chunks=k, max_message_size=1 << 20))
    events: list[Event] = []
    out = b""
    failed_at = None
    action_then = None
    for i, piece in enumerate(reads, 1):
        conn.receive_data(piece, NOW)
        new = conn.events()
        if failed_at is None and any(isinstance(e, ConnectionClosed) for e in new):
            failed_at = i
            action_then = conn.transport_action
        events += new
        out += conn.data_to_send()
    ends = [e for e in events if isinstance(e, ConnectionClosed)]
    if m > k:
        assert failed_at == len(early) + k
        assert len(ends) == 1 and events[-1] is ends[0]
        assert (ends[0].cause, ends[0].code) == (Cause.CHUNK_LIMIT, 1008)
        done = [e for u in before for e in u.events]
        assert events[: len(done)] == done
        rest = events[len(done) : -1]  # the pings of the message that arrived in time, not the message
        assert rest == message.events[: len(rest)] and len(rest) < len(message.events)
        assert conn.state is State.CLOSED
        sent = parse_frames(out, masked=not masked)
        assert sent[-1][0] == CLOSE and sent[-1][2][:2] == (1008).to_bytes(2, "big")
        expected_action = TransportAction.HALF_CLOSE if role == "server" else TransportAction.NONE
        assert action_then is expected_action  # later reads are the rest of a broken stream
    else:
        assert not ends, ends
        predicted = (
            [e for u in before for e in u.events] + message.events + [e for u in after for e in u.events]
        )
        assert events == predicted
        units = [*before, message, *after]
        assert parse_frames(out, masked=not masked) == [r for u in units for r in u.replies]
        assert conn.state is State.OPEN


@settings(max_examples=examples(1.0))
@given(st.sampled_from(["server", "client"]), st.integers(1, 6), st.data())
def test_handshake_over_max_msg_chunks_reads_is_dropped(role: str, k: int, data: st.DataObject) -> None:
    config = Config(max_msg_chunks=k)
    head = REQUEST if role == "server" else REPLY_101
    cuts = data.draw(st.sets(st.integers(1, len(head) - 1), max_size=9))
    reads = split(head, cuts)
    if role == "server":
        conn: Connection = ServerConnection(0.0, config)
    else:
        conn = ClientConnection("sip.example.com", 0.0, config=config, key=KEY)
        conn.data_to_send()
    events: list[Event] = []
    out = b""
    failed_at = None
    for i, piece in enumerate(reads, 1):
        conn.receive_data(piece, NOW)
        new = conn.events()
        if failed_at is None and new:
            failed_at = i
        events += new
        out += conn.data_to_send()
    if len(reads) > k:
        assert failed_at == k
        assert len(events) == 1 and isinstance(events[0], ConnectionClosed), events
        assert events[0].cause is Cause.CHUNK_LIMIT and events[0].status is None
        assert out == b""  # dropped: no reply at all
        assert (conn.state, conn.transport_action) == (State.CLOSED, TransportAction.CLOSE)
    else:
        assert failed_at == len(reads)
        assert len(events) == 1 and isinstance(events[0], Opened), events
        assert conn.state is State.OPEN
        assert out.startswith(b"HTTP/1.1 101 ") if role == "server" else out == b""


@settings(max_examples=examples(1.0))
@given(st.integers(1, 6), st.data())
def test_client_chunk_count_restarts_after_the_reply(k: int, data: st.DataObject) -> None:
    """The 101 spans up to k reads, its last read also starts a message: that read is the message's first."""
    message = data.draw(message_units(masked=False, max_body=40), "message")
    reply = split(REPLY_101, data.draw(st.sets(st.integers(1, len(REPLY_101) - 1), max_size=k - 1)))
    size = len(message.data)
    reads = split(message.data, data.draw(st.sets(st.integers(1, size - 1), max_size=min(9, size - 1))))
    m = len(reads)
    reads = [*reply[:-1], reply[-1] + reads[0], *reads[1:]]
    conn = ClientConnection("sip.example.com", 0.0, config=Config(max_msg_chunks=k), key=KEY)
    conn.data_to_send()
    events, _ = feed(conn, reads)
    assert isinstance(events[0], Opened)
    if m > k:
        assert isinstance(events[-1], ConnectionClosed) and events[-1].cause is Cause.CHUNK_LIMIT
    else:
        assert events[1:] == message.events
