"""Tracing: the packets a traced connection emits, read back with the spec decoder and laid
next to real OpenSIPS packets; the filter, the run-time switch and the counters."""

from __future__ import annotations

import ipaddress
import json

import hep_samples
import pytest
from hep_wire import decode, fields, number
from hypothesis import given
from hypothesis import strategies as st
from wire import BINARY, CLOSE, KEY, REGISTER, REQUEST, TEXT, close_body, frame, reply_101, request

from sansio_wss import (
    Cause,
    ClientConnection,
    Config,
    ConfigError,
    Connection,
    ServerConnection,
    SipMessageReceived,
    State,
    TlsDetails,
    TraceConfig,
    TracePeer,
    Tracer,
)
from sansio_wss.hep import PayloadFormat

REMOTE = ("198.51.100.7", 50123)
LOCAL = ("192.0.2.10", 443)
WALL = 1_800_000_000.0  # the wall clock when the connection's clock reads 100.0
JSON = TraceConfig(payload_format=PayloadFormat.JSON)
TLS = TlsDetails(
    version="TLSv1.3",
    cipher="TLS_AES_256_GCM_SHA384",
    server_subject="/CN=sip.example.com",
    server_issuer="/O=Example/CN=Example CA",
    domain="edge",
)
OK = b"SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"


class Sink:
    """Keeps every packet."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def __call__(self, packet: bytes) -> None:
        self.packets.append(packet)


def parts(packet: bytes) -> list[tuple[str, str]]:
    """The key/value parts of a JSON connection event, repeated keys kept."""
    got = fields(packet)
    assert number(got[11]) == 0x59
    result: list[tuple[str, str]] = json.loads(got[15].decode(), object_pairs_hook=list)
    return result


def address(got: dict[int, bytes], ip: int, port: int) -> tuple[str, int]:
    return str(ipaddress.ip_address(got[ip])), number(got[port])


def server(sink: Sink, config: TraceConfig = JSON, **options: object) -> tuple[Tracer, ServerConnection]:
    tracer = Tracer(sink, config, seed=7, **options)  # type: ignore[arg-type]
    conn = ServerConnection(100.0, Config())
    tracer.attach(conn, remote=REMOTE, local=LOCAL, now=100.0, wall=WALL)
    return tracer, conn


def session(conn: ServerConnection) -> bytes:
    """Upgrade, a REGISTER in, its 200 out, the client closes; returns our 101."""
    assert conn.trace is not None
    conn.trace.tls(TLS)
    conn.receive_data(REQUEST, 101.0)
    reply = conn.data_to_send()
    conn.receive_data(frame(TEXT, REGISTER), 101.5)
    conn.send(OK, 101.75)
    conn.receive_data(frame(CLOSE, close_body(1000)), 102.0)
    assert conn.state is State.CLOSED
    return reply


def test_a_server_session_accept_sip_both_ways_close() -> None:
    sink = Sink()
    tracer, conn = server(sink)
    reply = session(conn)
    set_up, sip_in, sip_out, closed = sink.packets
    cid = str((7 << 32) + 1)
    for packet in sink.packets:
        assert fields(packet)[17] == cid.encode()

    got = fields(set_up)
    assert [kind for _, kind, _ in decode(set_up)] == [1, 2, 7, 8, 9, 10, 11, 12, 3, 4, 15, 17]
    assert [number(got[kind]) for kind in (1, 2, 9, 10, 11, 12)] == [2, 50, int(WALL) + 1, 0, 0x59, 1]
    assert (address(got, 3, 7), address(got, 4, 8)) == (REMOTE, LOCAL)
    assert parts(set_up) == [
        ("Protocol", "WSS"),
        ("server-subject", "/CN=sip.example.com"),
        ("server-issuer", "/O=Example/CN=Example CA"),
        ("Event", "ACCEPTED"),
        ("Status", "SUCCESS"),
        ("Message", "Connection accepted..."),
        ("Event", "ACCEPTED"),
        ("Ws-Request", REQUEST.decode()),
        ("Status", "SUCCESS"),
        ("Ws-Reply", reply.decode()),
        ("Message", "Connection accepted..."),
        ("tls-version", "TLSv1.3"),
        ("tls-cipher", "TLS_AES_256_GCM_SHA384"),
    ]

    for packet, source, destination, message, usec in (
        (sip_in, REMOTE, LOCAL, REGISTER, 500000),
        (sip_out, LOCAL, REMOTE, OK, 750000),
    ):
        got = fields(packet)
        assert [kind for _, kind, _ in decode(packet)] == [1, 2, 7, 8, 9, 10, 11, 12, 3, 4, 15, 101, 17]
        assert [number(got[kind]) for kind in (2, 9, 10, 11)] == [50, int(WALL) + 1, usec, 1]
        assert (address(got, 3, 7), address(got, 4, 8)) == (source, destination)
        assert got[15] == message
        assert json.loads(got[101]) == {"net": cid}

    got = fields(closed)
    assert (address(got, 3, 7), address(got, 4, 8)) == (REMOTE, LOCAL)  # not 127.0.0.2:0
    assert (number(got[9]), number(got[10])) == (int(WALL) + 2, 0)
    assert parts(closed) == [
        ("Protocol", "WSS"),
        ("Event", "CLOSED"),
        ("Status", "SUCCESS"),
        ("Message", "closing handshake completed"),
        ("Cause", "peer_closed"),
        ("Code", "1000"),
    ]
    assert tracer.stats.packets == 4 and tracer.stats.connections == 1 and tracer.stats.lost == 0


def test_homer5_joins_the_values_and_sip_has_no_json_correlation() -> None:
    sink = Sink()
    _, conn = server(sink, TraceConfig(capture_id=77, auth_key=b"key"))
    session(conn)
    set_up, sip_in, _, closed = sink.packets
    assert fields(set_up)[15].startswith(
        b"WSS:/CN=sip.example.com:/O=Example/CN=Example CA:ACCEPTED:SUCCESS:"
    )
    assert fields(closed)[15] == b"WSS:CLOSED:SUCCESS:closing handshake completed:peer_closed:1000"
    assert [kind for _, kind, _ in decode(sip_in)] == [1, 2, 7, 8, 9, 10, 11, 12, 3, 4, 14, 15, 17]
    assert (number(fields(sip_in)[12]), fields(sip_in)[14]) == (77, b"key")


def without_master_key(sample: bytes) -> list[tuple[str, str]]:
    text = fields(sample)[15].decode("latin-1")
    found: list[tuple[str, str]] = json.loads(text, object_pairs_hook=list)
    return [(key, value) for key, value in found if key != "master-key"]


def test_the_set_up_packet_is_laid_out_as_opensips_lays_out_its_own() -> None:
    """Sample 6 is OpenSIPS's ACCEPTED in JSON: our packet for the same handshake has the same
    chunks and, the raw master key aside, the same parts, then the TLS version and cipher."""
    opensips = fields(hep_samples.SAMPLE_6)
    opensips_parts = without_master_key(hep_samples.SAMPLE_6)
    request_text = dict(opensips_parts)["Ws-Request"].encode()
    reply_text = dict(opensips_parts)["Ws-Reply"].encode()
    sink = Sink()
    tracer = Tracer(sink, JSON)
    conn = ServerConnection(0.0)
    source, destination = address(opensips, 3, 7), address(opensips, 4, 8)
    wall = number(opensips[9]) + number(opensips[10]) / 1e6
    trace = tracer.attach(conn, remote=source, local=destination, now=0.0, wall=wall)
    trace.tls(
        TlsDetails(
            version="TLSv1.3", cipher="X", server_subject="/CN=127.0.0.1", server_issuer="/CN=127.0.0.1"
        )
    )
    trace.request(request_text)
    trace.reply(reply_text)
    trace.opened(0.0)
    (ours,) = sink.packets
    assert [kind for _, kind, _ in decode(ours)] == [kind for _, kind, _ in decode(hep_samples.SAMPLE_6)]
    mine = fields(ours)
    assert all(mine[kind] == opensips[kind] for kind in (1, 2, 3, 4, 7, 8, 9, 10, 11, 12))
    assert parts(ours) == [*opensips_parts, ("tls-version", "TLSv1.3"), ("tls-cipher", "X")]

    # Sample 1, the same in HOMER5: the values joined, the 48 raw key bytes left out.
    homer5 = fields(hep_samples.SAMPLE_1)[15]
    assert homer5[:32] == b"WSS:/CN=127.0.0.1:/CN=127.0.0.1:"
    expected = homer5[:32] + homer5[32 + 48 + 1 :]
    sink.packets.clear()
    tracer.config = TraceConfig()
    again = tracer.attach(ServerConnection(0.0), remote=source, local=destination, now=0.0, wall=wall)
    again.tls(
        TlsDetails(
            version="TLSv1.3", cipher="X", server_subject="/CN=127.0.0.1", server_issuer="/CN=127.0.0.1"
        )
    )
    request_1 = homer5.split(b":ACCEPTED:")[2].split(b":SUCCESS:")[0]
    again.request(request_1)
    again.reply(homer5.split(b":SUCCESS:")[-1].rsplit(b":", 1)[0])
    again.opened(0.0)
    assert fields(sink.packets[0])[15] == expected + b":TLSv1.3:X"


def test_the_closed_packet_keeps_opensips_first_parts_with_real_addresses() -> None:
    """Sample 8 is OpenSIPS's CLOSED in JSON, from 127.0.0.2:0 to 127.0.0.2:0 (its bug)."""
    sink = Sink()
    _, conn = server(sink)
    session(conn)
    opensips = parts(hep_samples.SAMPLE_8)
    ours = parts(sink.packets[-1])
    assert [key for key, _ in ours[:4]] == [key for key, _ in opensips]
    assert ours[:3] == opensips[:3]
    assert [kind for _, kind, _ in decode(sink.packets[-1])] == [
        kind for _, kind, _ in decode(hep_samples.SAMPLE_8)
    ]
    assert address(fields(hep_samples.SAMPLE_8), 3, 7) == ("127.0.0.2", 0)
    assert address(fields(sink.packets[-1]), 3, 7) == REMOTE


def test_an_outbound_connection_matches_opensips_connected_then_adds_the_handshake() -> None:
    """Sample 4: OpenSIPS as a client, CONNECTED, src the server, dst our ephemeral port."""
    sample = fields(hep_samples.SAMPLE_4)
    sink = Sink()
    tracer = Tracer(sink)
    conn = ClientConnection("127.0.0.1", 0.0, port=17444, key=KEY)
    remote, local = address(sample, 3, 7), address(sample, 4, 8)
    wall = number(sample[9]) + number(sample[10]) / 1e6
    trace = tracer.attach(conn, remote=remote, local=local, now=0.0, wall=wall)
    cn = "/CN=127.0.0.1"
    trace.tls(TlsDetails(client_subject=cn, client_issuer=cn, server_subject=cn, server_issuer=cn))
    sent = conn.data_to_send()
    conn.receive_data(reply_101(), 0.0)
    assert conn.state is State.OPEN
    (ours,) = sink.packets
    mine = fields(ours)
    assert all(mine[kind] == sample[kind] for kind in (1, 2, 3, 4, 7, 8, 9, 10, 11, 12))
    opensips_payload = sample[15]
    assert mine[15] == (
        opensips_payload
        + b":CONNECTED:"
        + sent
        + b":SUCCESS:"
        + reply_101()
        + b":Successfully connected...::"  # no TLS version or cipher given
    )


def test_a_rejected_handshake_traces_request_reply_and_status() -> None:
    sink = Sink()
    _, conn = server(sink)
    bad = request(drop=("Origin",))
    conn.receive_data(bad, 101.0)
    reply = conn.data_to_send()
    assert reply.startswith(b"HTTP/1.1 403")
    set_up, closed = sink.packets
    found = parts(set_up)
    assert found[:3] == [("Protocol", "WSS"), ("Event", "ACCEPTED"), ("Ws-Request", bad.decode())]
    assert found[3:5] == [("Status", "FAILURE"), ("Ws-Reply", reply.decode())]
    assert found[5][0] == "Message" and "Origin" in found[5][1]
    assert parts(closed)[2:] == [
        ("Status", "FAILURE"),
        ("Message", found[5][1]),
        ("Cause", "handshake_failed"),
        ("Code", "1006"),
    ]


def test_a_client_rejected_with_404_and_a_tls_failure() -> None:
    sink = Sink()
    tracer = Tracer(sink, JSON)
    conn = ClientConnection("sip.example.com", 0.0, key=KEY)
    tracer.attach(conn, remote=REMOTE, local=LOCAL, now=0.0, wall=WALL)
    sent = conn.data_to_send()
    not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    conn.receive_data(not_found, 0.5)
    assert parts(sink.packets[0]) == [
        ("Protocol", "WSS"),
        ("Event", "CONNECTED"),
        ("Ws-Request", sent.decode()),
        ("Status", "FAILURE"),
        ("Ws-Reply", not_found.decode()),
        ("Message", "server answered 404 Not Found"),
    ]
    assert parts(sink.packets[1])[4] == ("Cause", "handshake_rejected")

    sink.packets.clear()
    conn2 = ServerConnection(0.0)
    tracer.attach(conn2, remote=REMOTE, local=LOCAL, now=0.0, wall=WALL)
    conn2.transport_failed(0.1, "TLS handshake failed: unknown ca", Cause.TLS_FAILED)
    assert parts(sink.packets[0]) == [
        ("Protocol", "WSS"),
        ("Event", "ACCEPTED"),
        ("Status", "FAILURE"),
        ("Message", "TLS handshake failed: unknown ca"),
    ]
    assert parts(sink.packets[1])[2:5] == [
        ("Status", "FAILURE"),
        ("Message", "TLS handshake failed: unknown ca"),
        ("Cause", "tls_failed"),
    ]


def test_a_limit_violation_is_a_failed_close_with_its_code() -> None:
    sink = Sink()
    tracer = Tracer(sink, JSON)
    conn = ServerConnection(0.0, Config(max_message_size=1000))
    tracer.attach(conn, remote=REMOTE, local=LOCAL, now=0.0, wall=WALL)
    conn.receive_data(REQUEST, 0.0)
    conn.receive_data(frame(TEXT, REGISTER + b"x" * 2000), 0.0)
    assert parts(sink.packets[-1])[2:] == [
        ("Status", "FAILURE"),
        ("Message", "message over max_message_size (1000 bytes)"),
        ("Cause", "message_too_big"),
        ("Code", "1009"),
        ("Reason", "message too big"),
    ]


def test_fragmented_messages_are_traced_whole_and_garbage_is_not_sip() -> None:
    sink = Sink()
    _, conn = server(sink)
    conn.receive_data(REQUEST, 100.0)
    conn.receive_data(frame(BINARY, REGISTER[:10], fin=False) + frame(0, REGISTER[10:]), 100.0)
    conn.receive_data(frame(TEXT, b"hello there"), 100.0)  # InvalidSipMessage: not traced as SIP
    assert [number(fields(p)[11]) for p in sink.packets] == [0x59, 1]
    assert fields(sink.packets[1])[15] == REGISTER


def test_the_filter_sees_both_ends_and_the_tls_domain_once() -> None:
    seen: list[TracePeer] = []

    def only_edge(peer: TracePeer) -> bool:
        seen.append(peer)
        return peer.tls_domain == "edge"

    sink = Sink()
    _, conn = server(sink, filter=only_edge)
    session(conn)
    assert seen == [TracePeer(REMOTE, LOCAL, "edge", False)]
    assert len(sink.packets) == 4

    _, other = server(sink, filter=only_edge)
    sink.packets.clear()
    assert other.trace is not None
    other.trace.tls(TlsDetails(domain="lab"))
    other.receive_data(REQUEST, 101.0)
    other.receive_data(frame(TEXT, REGISTER), 101.0)
    other.close(102.0)
    assert sink.packets == [] and len(seen) == 2


def test_a_filter_that_raises_keeps_the_connection_out_not_down() -> None:
    def broken(peer: TracePeer) -> bool:
        raise RuntimeError("bug in the filter")

    sink = Sink()
    tracer, conn = server(sink, filter=broken)
    session(conn)
    assert sink.packets == []
    assert tracer.stats.filtered == 1 and tracer.stats.connections == 0


def test_switched_off_nothing_switched_on_from_then_on() -> None:
    calls: list[TracePeer] = []

    def everyone(peer: TracePeer) -> bool:
        calls.append(peer)
        return True

    sink = Sink()
    tracer, conn = server(sink, on=False, filter=everyone)
    assert conn.trace is not None
    conn.trace.tls(TLS)
    conn.receive_data(REQUEST, 101.0)
    conn.receive_data(frame(TEXT, REGISTER), 101.0)
    assert sink.packets == [] and calls == []  # OpenSIPS: the filter route is not run while off
    tracer.set_mode("On")
    assert tracer.status == "on"
    conn.send(OK, 101.5)
    tracer.set_mode("OFFline")
    conn.receive_data(frame(TEXT, REGISTER), 101.6)
    tracer.on = True
    conn.close(102.0)
    conn.receive_data(frame(CLOSE, close_body(1000)), 102.1)
    assert [number(fields(p)[11]) for p in sink.packets] == [1, 0x59]
    assert fields(sink.packets[0])[15] == OK
    assert parts(sink.packets[1])[1:3] == [("Event", "CLOSED"), ("Status", "SUCCESS")]
    assert len(calls) == 1


@pytest.mark.parametrize(("mode", "on"), [("on", True), ("ON", True), ("onwards", True), ("off", False)])
def test_set_mode_reads_as_wss_trace_does(mode: str, on: bool) -> None:
    tracer = Tracer(Sink(), on=not on)
    tracer.set_mode(mode)
    assert tracer.on is on and tracer.status == ("on" if on else "off")


@pytest.mark.parametrize("mode", ["", "o", "of", "yes", "1", " on"])
def test_set_mode_refuses_anything_else(mode: str) -> None:
    tracer = Tracer(Sink())
    with pytest.raises(ValueError, match="trace_mode should be 'on' or 'off'"):
        tracer.set_mode(mode)
    assert tracer.on


def test_a_sink_that_raises_or_a_message_too_big_for_hep_loses_packets_not_sip() -> None:
    def broken(packet: bytes) -> None:
        raise OSError("collector gone")

    tracer, conn = server(Sink(), filter=None)
    tracer.sink = broken
    session(conn)
    assert tracer.stats.lost == 4 and tracer.stats.packets == 0

    sink = Sink()
    tracer = Tracer(sink, seed=1)
    conn = ServerConnection(0.0, Config(max_message_size=100_000))
    tracer.attach(conn, remote=REMOTE, local=LOCAL, now=0.0, wall=WALL)
    conn.receive_data(REQUEST, 0.0)
    big = REGISTER + b"x" * 66_000
    conn.receive_data(frame(TEXT, big), 0.0)
    events = conn.events()
    assert any(isinstance(e, SipMessageReceived) and e.message == big for e in events)
    conn.send(OK, 0.0)
    assert tracer.stats.lost == 1 and [fields(p)[15] for p in sink.packets[1:]] == [OK]


def test_the_master_key_only_when_asked_and_only_as_hex() -> None:
    key = bytes(range(48))
    for config, expected in (
        (JSON, None),
        (TraceConfig(payload_format=PayloadFormat.JSON, master_key=True), key),
    ):
        sink = Sink()
        tracer = Tracer(sink, config)
        trace = tracer.attach(ServerConnection(0.0), remote=REMOTE, local=LOCAL, now=0.0, wall=WALL)
        trace.tls(TlsDetails(server_subject="/CN=a", server_issuer="/CN=a", master_key=key))
        trace.opened(0.0)
        found = dict(parts(sink.packets[0]))
        assert found.get("master-key") == (None if expected is None else key.hex())
        if expected is not None:
            assert [k for k, _ in parts(sink.packets[0])][3] == "master-key"


def test_sip_messages_can_be_left_out() -> None:
    sink = Sink()
    _, conn = server(sink, TraceConfig(sip_messages=False))
    session(conn)
    assert [number(fields(p)[11]) for p in sink.packets] == [0x59, 0x59]


def test_correlation_ids_are_decimal_distinct_and_shared_by_a_connection() -> None:
    sink = Sink()
    tracer = Tracer(sink)
    ids = set()
    for _ in range(50):
        conn: Connection = ServerConnection(0.0)
        trace = tracer.attach(conn, remote=REMOTE, local=LOCAL, now=0.0, wall=WALL)
        assert trace.correlation_id.isdigit() and int(trace.correlation_id) < 1 << 64
        ids.add(trace.correlation_id)
    assert len(ids) == 50
    assert Tracer(sink, seed=5).attach(
        ServerConnection(0.0), remote=REMOTE, local=LOCAL, now=0, wall=0
    ).correlation_id == str((5 << 32) + 1)


def test_request_bytes_that_are_not_utf8_stay_valid_json() -> None:
    sink = Sink()
    tracer = Tracer(sink, JSON)
    trace = tracer.attach(ServerConnection(0.0), remote=REMOTE, local=LOCAL, now=0.0, wall=WALL)
    trace.request(b'GET / HTTP/1.1\r\nX: \xff"\\\r\n\r\n')
    trace.opened(0.0)
    assert dict(parts(sink.packets[0]))["Ws-Request"] == 'GET / HTTP/1.1\r\nX: \\xff"\\\r\n\r\n'


@pytest.mark.parametrize(
    "change",
    [
        {"capture_id": -1},
        {"capture_id": 1 << 32},
        {"capture_id": True},
        {"auth_key": "text"},
        {"auth_key": b"k" * 1025},
        {"payload_format": "json"},
    ],
)
def test_trace_config_refuses_what_a_packet_cannot_carry(change: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        TraceConfig(**change)  # type: ignore[arg-type]


@given(st.lists(st.binary(max_size=300), max_size=8), st.booleans())
def test_any_bytes_give_decodable_packets_one_set_up_and_closed_last(
    chunks: list[bytes], upgrade: bool
) -> None:
    sink = Sink()
    tracer = Tracer(sink, JSON)
    conn = ServerConnection(0.0)
    tracer.attach(conn, remote=REMOTE, local=LOCAL, now=0.0, wall=WALL)
    if upgrade:
        conn.receive_data(REQUEST, 0.0)
    for chunk in chunks:
        conn.receive_data(chunk, 0.0)
    conn.receive_eof(1.0)
    kinds = [number(fields(p)[11]) for p in sink.packets]
    events = [dict(parts(p))["Event"] for p, kind in zip(sink.packets, kinds, strict=True) if kind == 0x59]
    assert events[-1] == "CLOSED" and events.count("CLOSED") == 1
    assert events[0] == "ACCEPTED" and events.count("ACCEPTED") == 1
    assert len({fields(p)[17] for p in sink.packets}) == 1
    assert tracer.stats.lost == 0


def test_text_that_is_not_unicode_is_escaped_never_an_error() -> None:
    """Found by fuzz_connection: a lone surrogate in what a trace writes failed the connection."""
    for payload_format in PayloadFormat:
        sink = Sink()
        tracer = Tracer(sink, TraceConfig(payload_format=payload_format))
        conn = ServerConnection(0.0)
        trace = tracer.attach(conn, remote=REMOTE, local=LOCAL, now=0.0, wall=WALL, protocol="W\udcffS")
        trace.tls(TlsDetails(cipher="\ud800", client_subject="/CN=\udcff"))
        conn.receive_data(REQUEST, 0.0)
        assert conn.state is State.OPEN
        conn.receive_eof(1.0)
        assert conn.closed_event is not None and conn.closed_event.cause is Cause.EOF
        assert tracer.stats.lost == 0 and len(sink.packets) == 2
        assert b"\\ud800" in fields(sink.packets[0])[15] and b"W\\udcffS" in fields(sink.packets[1])[15]


@pytest.mark.parametrize("change", [{"cipher": b"x"}, {"domain": 1}, {"master_key": "00ff"}])
def test_tls_details_take_text_and_a_bytes_key(change: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        TlsDetails(**change)  # type: ignore[arg-type]


def test_each_connection_keeps_its_own_clock_offset() -> None:
    """One tracer, two adapters with different clocks (trio's starts far from asyncio's)."""
    sink = Sink()
    tracer = Tracer(sink)
    first = tracer.attach(ServerConnection(5.0), remote=REMOTE, local=LOCAL, now=5.0, wall=WALL)
    later = ServerConnection(90_000.0)
    second = tracer.attach(later, remote=REMOTE, local=LOCAL, now=90_000.0, wall=WALL + 1)
    first.opened(6.0)
    second.opened(90_002.0)
    assert [number(fields(p)[9]) for p in sink.packets] == [int(WALL) + 1, int(WALL) + 3]
