"""permessage-deflate in the core: negotiation both ways, compressed frames in and out, the
inflated-size limit, the frame rules RSV1 brings, and what it costs in memory."""

from __future__ import annotations

import gc
import tracemalloc
import zlib

import pytest
from core_helpers import closed
from wire import BINARY, KEY, PING, REGISTER, TEXT, frame, reply_101, request

from sansio_wss import (
    Cause,
    ClientConnection,
    Config,
    ConfigError,
    Opened,
    ServerConnection,
    SipMessageReceived,
    State,
)
from sansio_wss._deflate import Agreement, accept_offer, read_response

DEFLATE = Config(deflate=True)
CHROMIUM = "permessage-deflate; client_max_window_bits"


def compress(payload: bytes, bits: int = 15, compressor: zlib._Compress | None = None) -> bytes:
    """A client's compressed payload, written here with zlib directly (RFC 7692 section 7.2.1)."""
    compressor = compressor or zlib.compressobj(6, zlib.DEFLATED, -bits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def inflate(data: bytes, bits: int = 15) -> bytes:
    return zlib.decompressobj(-bits).decompress(data + b"\x00\x00\xff\xff")


def server(offer: str | None = CHROMIUM, config: Config = DEFLATE) -> tuple[ServerConnection, Opened, bytes]:
    conn = ServerConnection(0.0, config)
    conn.receive_data(request(add=[] if offer is None else [("Sec-WebSocket-Extensions", offer)]), 0.0)
    (opened,) = conn.events()
    assert isinstance(opened, Opened)
    return conn, opened, conn.data_to_send()


def rsv1(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A masked client frame with RSV1 set."""
    raw = frame(opcode, payload, fin=fin)
    return bytes((raw[0] | 0x40,)) + raw[1:]


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        (CHROMIUM, "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
        ("permessage-deflate", "permessage-deflate; client_no_context_takeover; server_max_window_bits=12"),
        (
            "permessage-deflate; client_max_window_bits=10; server_max_window_bits=14",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=12; client_max_window_bits=12",
        ),
        ("permessage-deflate; server_max_window_bits=9; client_max_window_bits=8",
         "permessage-deflate; server_max_window_bits=9; client_max_window_bits=8"),
        # An offer we cannot honour is declined and the next one taken.
        ("permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
         "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
        ("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=\"11\"",
         "permessage-deflate; server_max_window_bits=12; client_max_window_bits=11"),
        ("permessage-deflate; unknown_parameter, permessage-deflate",
         "permessage-deflate; client_no_context_takeover; server_max_window_bits=12"),
    ],
)  # fmt: skip
def test_a_server_accepts_the_first_offer_it_can_honour(offer: str, answer: str) -> None:
    _, opened, reply = server(offer)
    assert opened.extensions == answer
    assert f"\r\nSec-WebSocket-Extensions: {answer}\r\n".encode() in reply


@pytest.mark.parametrize(
    "offer",
    [
        None,
        "x-webkit-deflate-frame",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=015",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=8",
    ],
)
def test_offers_we_decline_leave_the_connection_uncompressed(offer: str | None) -> None:
    conn, opened, reply = server(offer)
    assert opened.extensions == "" and b"Sec-WebSocket-Extensions" not in reply
    conn.send(REGISTER, 0.0)
    assert conn.data_to_send()[0] == 0x81  # RSV1 clear


def test_deflate_off_declines_every_offer() -> None:
    _, opened, reply = server(CHROMIUM, Config())
    assert opened.extensions == "" and b"Sec-WebSocket-Extensions" not in reply


def test_messages_both_ways_with_context_taken_over() -> None:
    conn, _, _ = server()
    compressor = zlib.compressobj(6, zlib.DEFLATED, -12)
    sizes = []
    for _ in range(3):
        data = compress(REGISTER, compressor=compressor)
        sizes.append(len(data))
        conn.receive_data(rsv1(TEXT, data), 0.0)
        (event,) = conn.events()
        assert isinstance(event, SipMessageReceived) and event.message == REGISTER and not event.binary
    assert sizes[1] < sizes[0] / 3  # the second REGISTER refers back to the first
    decompressor = zlib.decompressobj(-12)
    for _ in range(3):
        conn.send(REGISTER, 0.0)
        out = conn.data_to_send()
        assert out[0] == 0xC1 and out[1] < 126  # FIN, RSV1, text; short
        assert decompressor.decompress(out[2:] + b"\x00\x00\xff\xff") == REGISTER


def test_fragments_of_a_compressed_message_and_binary() -> None:
    conn, _, _ = server()
    data = compress(REGISTER * 3, bits=12)
    pieces = [data[:10], data[10:20], data[20:]]
    conn.receive_data(rsv1(BINARY, pieces[0], fin=False) + frame(0, pieces[1], fin=False), 0.0)
    conn.receive_data(frame(PING, b"p") + frame(0, pieces[2]), 0.0)
    events = conn.events()
    assert [type(e).__name__ for e in events] == ["PingReceived", "SipMessageReceived"]
    assert events[1] == SipMessageReceived(REGISTER * 3, True)


def test_an_uncompressed_message_is_fine_too() -> None:
    conn, _, _ = server()
    conn.receive_data(frame(TEXT, REGISTER), 0.0)
    assert conn.events() == [SipMessageReceived(REGISTER, False)]


def test_no_context_takeover_when_the_client_window_is_not_ours_to_choose() -> None:
    """The client compresses with 32 KiB windows and starts every message afresh, as we asked."""
    conn, opened, _ = server("permessage-deflate")
    assert "client_no_context_takeover" in opened.extensions
    for _ in range(2):
        conn.receive_data(rsv1(TEXT, compress(REGISTER)), 0.0)
        assert conn.events() == [SipMessageReceived(REGISTER, False)]


def test_server_no_context_takeover_compresses_every_message_alone() -> None:
    conn, _, _ = server("permessage-deflate; server_no_context_takeover; client_max_window_bits")
    outs = []
    for _ in range(2):
        conn.send(REGISTER, 0.0)
        outs.append(conn.data_to_send())
    assert outs[0] == outs[1] and inflate(outs[1][2:], 12) == REGISTER


@pytest.mark.parametrize("size", [65_536, 65_537, 10_000_000])
def test_a_decompression_bomb_is_1009_without_inflating_past_the_limit(size: int) -> None:
    conn, _, _ = server()
    head = b"MESSAGE sip:a@b SIP/2.0\r\n\r\n"
    payload = head + b"x" * (size - len(head))
    data = compress(payload, bits=12)
    assert len(data) < size / 100
    tracemalloc.start()
    conn.receive_data(rsv1(BINARY, data), 0.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    events = conn.events()
    if size <= 65_536:
        assert events == [SipMessageReceived(payload, True)]
        return
    end = closed(events)
    assert (end.code, end.cause) == (1009, Cause.MESSAGE_TOO_BIG)
    assert "once inflated" in end.detail
    assert peak < 600_000  # the limit's worth of output, never the 10 MB


def test_fragments_inflating_past_the_limit_together_are_1009() -> None:
    conn, _, _ = server(config=Config(deflate=True, max_message_size=1000))
    compressor = zlib.compressobj(6, zlib.DEFLATED, -12)
    first = compressor.compress(b"a" * 600) + compressor.flush(zlib.Z_SYNC_FLUSH)
    second = compressor.compress(b"b" * 600) + compressor.flush(zlib.Z_SYNC_FLUSH)
    conn.receive_data(rsv1(TEXT, first, fin=False), 0.0)
    assert conn.events() == []
    conn.receive_data(frame(0, second[:-4]), 0.0)
    assert closed(conn.events()).code == 1009


@pytest.mark.parametrize(
    ("data", "code", "detail"),
    [
        (rsv1(TEXT, b"\xff\xff\xff\xff"), 1002, "does not inflate"),
        (rsv1(TEXT, compress(b"caf\xe9")), 1007, "not UTF-8"),
        (frame(TEXT, b"x", fin=False) + rsv1(0, b"x"), 1002, "RSV1 set on a control or continuation"),
        (rsv1(PING, b""), 1002, "RSV1 set on a control or continuation"),
        (bytes((0xA1,)) + frame(TEXT, b"x")[1:], 1002, "reserved bits set"),
        (bytes((0xE1,)) + frame(TEXT, b"x")[1:], 1002, "reserved bits set"),
    ],
    ids=["garbage", "utf8", "rsv1 continuation", "rsv1 ping", "rsv2", "rsv1+rsv2"],
)
def test_frames_deflate_does_not_allow(data: bytes, code: int, detail: str) -> None:
    conn, _, _ = server()
    conn.receive_data(data, 0.0)
    end = closed(conn.events())
    assert end.code == code and detail in end.detail


def test_rsv1_without_deflate_is_still_1002() -> None:
    conn, _, _ = server(None)
    conn.receive_data(rsv1(TEXT, compress(REGISTER)), 0.0)
    assert closed(conn.events()).code == 1002


def client(answer: str | None, config: Config = DEFLATE) -> ClientConnection:
    conn = ClientConnection("sip.example.com", 0.0, config=config, key=KEY)
    sent = conn.data_to_send()
    offer = b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits"
    assert (offer + b"\r\n" in sent) is config.deflate
    extra = "" if answer is None else f"Sec-WebSocket-Extensions: {answer}\r\n"
    conn.receive_data(reply_101(extra=extra), 0.0)
    return conn


def test_a_client_compresses_with_what_the_server_answered() -> None:
    conn = client("permessage-deflate; server_max_window_bits=10; client_max_window_bits=9")
    (opened,) = conn.events()
    assert isinstance(opened, Opened)
    assert opened.extensions == "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"
    conn.send(REGISTER, 0.0)
    out = conn.data_to_send()
    assert out[0] == 0xC1
    length = out[1] & 0x7F
    payload = bytes(b ^ out[2 + i % 4] for i, b in enumerate(out[6 : 6 + length]))
    assert inflate(payload, 9) == REGISTER
    reply = zlib.compressobj(6, zlib.DEFLATED, -10)
    wire = compress(REGISTER, compressor=reply)
    conn.receive_data(bytes((0xC1, len(wire))) + wire, 0.0)
    assert conn.events() == [SipMessageReceived(REGISTER, False)]


def test_a_client_without_deflate_still_refuses_an_extension_and_one_accepts_none() -> None:
    refused = client("permessage-deflate", Config())
    assert closed(refused.events()).cause is Cause.HANDSHAKE_FAILED
    plain = client(None)
    (opened,) = plain.events()
    assert isinstance(opened, Opened) and opened.extensions == ""
    plain.send(REGISTER, 0.0)
    assert plain.data_to_send()[0] == 0x81


def test_a_server_that_does_not_confirm_our_window_is_inflated_with_its_own() -> None:
    agreement = read_response(["permessage-deflate"], 12)
    assert agreement.server_max_window_bits == 15
    conn = client("permessage-deflate")
    conn.events()
    wire = compress(REGISTER * 20)
    conn.receive_data(bytes((0xC1, 126)) + len(wire).to_bytes(2, "big") + wire, 0.0)
    assert conn.events() == [SipMessageReceived(REGISTER * 20, False)]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("permessage-deflate; server_max_window_bits=13", "server window we did not offer"),
        (
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=8",
            "zlib cannot compress with",
        ),
        ("permessage-deflate; server_max_window_bits=12; client_max_window_bits", "client window"),
        ("permessage-deflate, permessage-deflate", "more than the one extension"),
        ("x-webkit-deflate-frame", "did not offer"),
        ("permessage-deflate; mystery", "do not know"),
        ("permessage-deflate; server_no_context_takeover=yes", "gives server_no_context_takeover a value"),
        ("permessage-deflate; server_max_window_bits=12; server_max_window_bits=12", "did not offer"),
    ],
)
def test_a_client_fails_an_answer_it_cannot_keep(answer: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        read_response([answer], 12)
    end = closed(client(answer).events())
    assert end.cause is Cause.HANDSHAKE_FAILED and error in end.detail


def test_agreement_header_always_names_the_server_window() -> None:
    """RFC 7692 7.1.2.1: a server accepts server_max_window_bits by naming it, even at 15 (found by
    fuzz_handshake_server; websockets' client fails an answer without it)."""
    assert Agreement(False, False, 15, 15).header() == "permessage-deflate; server_max_window_bits=15"
    offer = accept_offer(["permessage-deflate; server_max_window_bits=15"], 15)
    assert offer is not None and "server_max_window_bits=15" in offer.header()
    assert accept_offer([], 12) is None


@pytest.mark.parametrize(
    ("values", "agreed"),
    [
        (['foo; x=", permessage-deflate, "'], None),  # the only offer is foo (found by fuzzing)
        (['permessage-deflate; x="unterminated, permessage-deflate'], None),
        (['permessage-deflate; client_max_window_bits="\\1\\0"'], 10),  # a quoted-pair
        (['permessage-deflate; client_max_window_bits="11"; server_max_window_bits=10'], 11),
        (["permessage-deflate; server_max_window_bits=09"], None),  # no leading zero (found by fuzzing)
        (["permessage-deflate; server_max_window_bits=09, permessage-deflate; client_max_window_bits"], 12),
    ],
)
def test_offers_are_read_as_quoted_lists(values: list[str], agreed: int | None) -> None:
    found = accept_offer(values, 12)
    assert (None if found is None else found.client_max_window_bits) == agreed


def test_a_client_fails_a_window_with_a_leading_zero_or_a_broken_quote() -> None:
    with pytest.raises(ValueError, match="server window"):
        read_response(["permessage-deflate; server_max_window_bits=09"], 12)
    with pytest.raises(ValueError, match="not well formed"):
        read_response(['permessage-deflate; x="a'], 12)


def test_config_checks_the_window() -> None:
    for bad in (8, 16, True, "12"):
        with pytest.raises(ConfigError):
            Config(deflate_window_bits=bad)  # type: ignore[arg-type]


def test_a_connection_keeps_under_64_kb_of_compression_state() -> None:
    """tracemalloc sees zlib's own allocations (CPython gives zlib its raw allocator)."""
    conns: list[ServerConnection] = []
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(50):
        conn, _, _ = server()
        conn.receive_data(rsv1(TEXT, compress(REGISTER, bits=12)), 0.0)
        conn.events()
        conn.send(REGISTER, 0.0)
        conn.data_to_send()
        conns.append(conn)
    per_connection = (tracemalloc.get_traced_memory()[0] - before) / len(conns)
    tracemalloc.stop()
    assert all(conn.state is State.OPEN for conn in conns)
    assert per_connection < 64_000, per_connection
