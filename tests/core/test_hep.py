"""HEPv3 encoding: checked with a decoder written here from the HEP spec (not the encoder run
backwards), and byte for byte against real OpenSIPS 3.5.9 packets."""

from __future__ import annotations

import ipaddress
import json

import hep_samples
import pytest
from hep_wire import decode, fields, number

from sansio_wss.hep import IP_PROTO_WS, PROTO_NET, PROTO_SIP, HepPacket, PayloadFormat, net_payload


def same_packet(sample: bytes, payload: bytes) -> HepPacket:
    """The sample's values, with `payload`, as our packet."""
    got = fields(sample)
    return HepPacket(
        source=(str(ipaddress.ip_address(got[3])), number(got[7])),
        destination=(str(ipaddress.ip_address(got[4])), number(got[8])),
        time=number(got[9]) + number(got[10]) / 1e6,
        proto_type=number(got[11]),
        payload=payload,
        capture_id=number(got[12]),
        ip_proto=number(got[2]),
        correlation_id=got[17].decode(),
    )


CLOSED = [("Protocol", "WSS"), ("Event", "CLOSED"), ("Status", "SUCCESS")]
CONNECTED = [
    ("Protocol", "WSS"),
    ("client-subject", "/CN=127.0.0.1"),
    ("client-issuer", "/CN=127.0.0.1"),
    ("server-subject", "/CN=127.0.0.1"),
    ("server-issuer", "/CN=127.0.0.1"),
    ("Event", "CONNECTED"),
    ("Status", "SUCCESS"),
    ("Message", "Successfully connected..."),
]


@pytest.mark.parametrize(
    ("sample", "parts", "payload_format"),
    [
        (hep_samples.SAMPLE_2, [*CLOSED, ("Message", "EOF received")], PayloadFormat.HOMER5),
        (hep_samples.SAMPLE_5, [*CLOSED, ("Message", "Closed by Proto layer")], PayloadFormat.HOMER5),
        (hep_samples.SAMPLE_4, CONNECTED, PayloadFormat.HOMER5),
        (hep_samples.SAMPLE_7, CONNECTED, PayloadFormat.JSON),
        (hep_samples.SAMPLE_8, [*CLOSED, ("Message", "EOF received")], PayloadFormat.JSON),
    ],
    ids=["homer5 closed", "homer5 closed by proto", "homer5 connected", "json connected", "json closed"],
)
def test_opensips_packets_byte_for_byte(
    sample: bytes, parts: list[tuple[str, str]], payload_format: PayloadFormat
) -> None:
    payload = net_payload(parts, payload_format)
    assert payload == fields(sample)[15]
    assert same_packet(sample, payload).encode() == sample


def test_every_chunk_of_a_connection_event() -> None:
    packet = HepPacket(
        source=("198.51.100.7", 50123),
        destination=("192.0.2.10", 443),
        time=1700000000.123456,
        proto_type=PROTO_NET,
        payload=b"WSS:CLOSED:SUCCESS:EOF",
        correlation_id="4660",
    ).encode()
    assert [(vendor, kind) for vendor, kind, _ in decode(packet)] == [
        (0, 1), (0, 2), (0, 7), (0, 8), (0, 9), (0, 10), (0, 11), (0, 12), (0, 3), (0, 4), (0, 15), (0, 17),
    ]  # fmt: skip
    got = fields(packet)
    assert [number(got[kind]) for kind in (1, 2, 7, 8, 9, 10, 11, 12)] == [
        2, IP_PROTO_WS, 50123, 443, 1700000000, 123456, 0x59, 1,
    ]  # fmt: skip
    assert [len(got[kind]) for kind in (1, 2, 7, 8, 9, 10, 11, 12)] == [1, 1, 2, 2, 4, 4, 1, 4]
    assert got[3] == bytes((198, 51, 100, 7)) and got[4] == bytes((192, 0, 2, 10))
    assert (got[15], got[17]) == (b"WSS:CLOSED:SUCCESS:EOF", b"4660")


def test_a_sip_message_over_ipv6_with_extra_correlation_and_auth_key() -> None:
    message = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    packet = HepPacket(
        source=("2001:db8::7", 443),
        destination=("2001:db8::1", 50000),
        time=1.5,
        proto_type=PROTO_SIP,
        payload=message,
        capture_id=0xFFFFFFFF,
        correlation_id="99",
        extra_correlation='{"net":"99"}',
        auth_key=b"s3cret",
    ).encode()
    kinds = [kind for _, kind, _ in decode(packet)]
    assert kinds == [1, 2, 7, 8, 9, 10, 11, 12, 5, 6, 14, 15, 101, 17]
    got = fields(packet)
    assert (number(got[1]), number(got[11]), number(got[12])) == (10, 1, 0xFFFFFFFF)
    assert (number(got[9]), number(got[10])) == (1, 500000)
    assert got[5] == ipaddress.ip_address("2001:db8::7").packed and len(got[6]) == 16
    assert (got[14], got[15], got[101], got[17]) == (b"s3cret", message, b'{"net":"99"}', b"99")


def test_json_payload_escapes_as_cjson_and_keeps_repeated_keys() -> None:
    parts = [("Event", "ACCEPTED"), ("Ws-Request", 'GET / HTTP/1.1\r\n\t"x"\\\x01\x1f é'), ("Event", "X")]
    text = net_payload(parts, PayloadFormat.JSON).decode()
    assert text == (
        '{\n\t"Event":\t"ACCEPTED",\n\t"Ws-Request":\t"GET / HTTP/1.1\\r\\n\\t\\"x\\"\\\\\\u0001\\u001f é",'
        '\n\t"Event":\t"X"\n}'
    )
    assert json.loads(text, object_pairs_hook=list) == parts
    assert (
        net_payload(parts, PayloadFormat.HOMER5) == 'ACCEPTED:GET / HTTP/1.1\r\n\t"x"\\\x01\x1f é:X'.encode()
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"destination": ("::1", 1)}, "same IP version"),
        ({"proto_type": 256}, "8-bit"),
        ({"ip_proto": -1}, "8-bit"),
        ({"capture_id": 1 << 32}, "32-bit"),
        ({"time": float("nan")}, "epoch"),
        ({"time": -1.0}, "epoch"),
        ({"time": 2.0**32}, "epoch"),
        ({"payload": b"x" * 65_500}, "at most 65535 bytes"),
        ({"payload": b"x" * 65_600}, "at most 65535 bytes"),
        ({"source": ("not-an-ip", 1)}, "does not appear to be an IPv4 or IPv6 address"),
    ],
)
def test_values_a_packet_cannot_hold(change: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "source": ("127.0.0.1", 1),
        "destination": ("127.0.0.1", 2),
        "time": 0.0,
        "proto_type": PROTO_SIP,
        "payload": b"",
    }
    with pytest.raises(ValueError, match=message):
        HepPacket(**{**values, **change}).encode()  # type: ignore[arg-type]


def test_the_largest_packet_fits() -> None:
    base = HepPacket(
        source=("127.0.0.1", 1), destination=("127.0.0.1", 2), time=0.0, proto_type=1, payload=b""
    )
    room = 65535 - len(base.encode())
    packet = HepPacket(
        source=("127.0.0.1", 1), destination=("127.0.0.1", 2), time=0.0, proto_type=1, payload=b"x" * room
    ).encode()
    assert len(packet) == 65535 and fields(packet)[15] == b"x" * room
