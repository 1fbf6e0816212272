"""The PROXY protocol header (v1 and v2) read by `sansio_wss.proxy`, against headers built byte by
byte from the specification in `proxy_wire`, and `ProxyPolicy`'s validation and trust."""

from __future__ import annotations

import itertools
import struct

import proxy_wire
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_wss import ConfigError, ProxyHeader, ProxyHeaderReader, ProxyPolicy
from sansio_wss.proxy import ProxyHeaderError, crc32c, parse_proxy_header

CLIENT4, SERVER4 = ("192.0.2.7", 51234), ("198.51.100.1", 443)
CLIENT6, SERVER6 = ("2001:db8::7", 51234), ("2001:db8:1::1", 443)
TLS_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


def parsed(data: bytes) -> tuple[ProxyHeader, int]:
    found = parse_proxy_header(data)
    assert found is not None
    return found


# ----------------------------------------------------------------- version 1


def test_v1_tcp4_as_the_specification_example() -> None:
    data = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"
    header, length = parsed(data)
    assert header == ProxyHeader(1, ("192.168.0.1", 56324), ("192.168.0.11", 443))
    assert data[length:] == b"GET / HTTP/1.1\r\n"


def test_v1_tcp6_is_given_in_compressed_form() -> None:
    data = proxy_wire.v1(("2001:0db8:0000:0000:0000:0000:0000:0007", 1), SERVER6)
    header, length = parsed(data)
    assert header.source == ("2001:db8::7", 1)
    assert header.destination == SERVER6
    assert length == len(data)


def test_v1_longest_lines_fit() -> None:
    full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    line = f"PROXY TCP6 {full} {full} 65535 65535\r\n".encode()
    assert len(line) == 104
    assert parsed(line)[0].source == (full, 65535)
    unknown = f"PROXY UNKNOWN {full} {full} 65535 65535\r\n".encode()
    assert len(unknown) == 107
    assert parsed(unknown) == (ProxyHeader(1, None, None), 107)


def test_v1_tcp6_takes_an_ipv4_mapped_client_as_inet_ntop_writes_it() -> None:
    header, _ = parsed(b"PROXY TCP6 ::ffff:192.0.2.7 2001:db8::1 1 443\r\n")
    assert header.source == ("::ffff:192.0.2.7", 1)
    binary, _ = parsed(proxy_wire.v2(("::ffff:c000:207", 1), ("2001:db8::1", 443)))
    assert (binary.source, binary.destination) == (header.source, header.destination)


def test_v1_unknown_keeps_the_socket_addresses() -> None:
    assert parsed(b"PROXY UNKNOWN\r\nrest") == (ProxyHeader(1, None, None), 15)


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\n",  # bare LF
        b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\rX",  # bare CR
        b"PROXY  TCP4 192.0.2.7 198.51.100.1 51234 443\r\n",  # two spaces
        b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443 \r\n",  # trailing space
        b"PROXY TCP4 192.0.2.7 198.51.100.1 51234\r\n",  # a port missing
        b"PROXY TCP4 192.0.2.07 198.51.100.1 51234 443\r\n",  # heading zero in an address
        b"PROXY TCP4 192.0.2.7 198.51.100.1 051234 443\r\n",  # heading zero in a port
        b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",  # port out of range
        b"PROXY TCP4 192.0.2.7 198.51.100.1 -1 443\r\n",
        b"PROXY TCP4 2001:db8::7 198.51.100.1 1 443\r\n",  # family mismatch
        b"PROXY TCP6 192.0.2.7 2001:db8::1 1 443\r\n",
        b"PROXY TCP6 fe80::1%eth0 2001:db8::1 1 443\r\n",  # zone
        b"PROXY TCP5 192.0.2.7 198.51.100.1 1 443\r\n",
        b"PROXY UNKNOWNX\r\n",
        b"PROXY tcp4 192.0.2.7 198.51.100.1 1 443\r\n",  # case matters
        b"PROXY TCP4 192.0.2.7 198.51.100.1 1 4\xc3\xa9\r\n",  # not ASCII
        b"proxy TCP4 192.0.2.7 198.51.100.1 1 443\r\n",
        b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n",  # CRLF past 107 bytes
        b"GET / HTTP/1.1\r\n",  # no header at all
        TLS_HELLO,
        b"\r\n\r\n\x00\r\nQUIX\n" + b"\x21\x11\x00\x00",  # near the v2 signature
    ],
)
def test_malformed_headers_are_refused(line: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(line)


def test_v1_waits_for_its_crlf_within_107_bytes() -> None:
    line = proxy_wire.v1(CLIENT4, SERVER4)
    for cut in range(len(line)):
        assert parse_proxy_header(line[:cut]) is None, cut
    assert parse_proxy_header(b"PROXY UNKNOWN " + b"a" * 92) is None  # 106 bytes: CRLF may come
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(b"PROXY UNKNOWN " + b"a" * 93)  # 107 bytes and no CRLF


# ----------------------------------------------------------------- version 2


def test_v2_tcp4_byte_exact() -> None:
    data = proxy_wire.v2(CLIENT4, SERVER4)
    expected = (
        b"\r\n\r\n\x00\r\nQUIT\n"  # signature
        + b"\x21\x11\x00\x0c"  # v2 PROXY, TCP over IPv4, 12 bytes
        + bytes((192, 0, 2, 7, 198, 51, 100, 1))
        + struct.pack("!HH", 51234, 443)
    )
    assert data == expected
    assert parsed(data + TLS_HELLO) == (ProxyHeader(2, CLIENT4, SERVER4), 28)


def test_v2_tcp6() -> None:
    data = proxy_wire.v2(CLIENT6, SERVER6)
    assert len(data) == 16 + 36
    assert parsed(data) == (ProxyHeader(2, CLIENT6, SERVER6), 52)


def test_v2_local_keeps_the_socket_addresses_whatever_it_carries() -> None:
    assert parsed(proxy_wire.v2(command=proxy_wire.LOCAL)) == (ProxyHeader(2, None, None), 16)
    # A LOCAL header must be skipped by its length even when it carries addresses.
    data = proxy_wire.v2(CLIENT4, SERVER4, command=proxy_wire.LOCAL)
    assert parsed(data) == (ProxyHeader(2, None, None), 28)


@pytest.mark.parametrize(
    ("family", "addresses"),
    [
        (proxy_wire.UDP4, (CLIENT4, SERVER4)),
        (proxy_wire.UDP6, (CLIENT6, SERVER6)),
        (proxy_wire.UNIX_STREAM, (None, None)),
        (proxy_wire.UNIX_DGRAM, (None, None)),
        (proxy_wire.UNSPEC, (None, None)),
    ],
)
def test_v2_families_we_do_not_use_fall_back_to_the_socket(
    family: int, addresses: tuple[tuple[str, int] | None, tuple[str, int] | None]
) -> None:
    data = proxy_wire.v2(*addresses, family=family)
    header, length = parsed(data + b"rest")
    assert (header.source, header.destination, length) == (None, None, len(data))


def test_v2_tlvs_are_kept_in_order() -> None:
    tlvs = (
        proxy_wire.tlv(proxy_wire.ALPN, b"http/1.1")
        + proxy_wire.tlv(proxy_wire.AUTHORITY, b"sip.example.net")
        + proxy_wire.tlv(proxy_wire.NOOP, b"")
        + proxy_wire.tlv(proxy_wire.UNIQUE_ID, b"\x01" * 128)
        + proxy_wire.tlv(proxy_wire.SSL, b"\x01\x00\x00\x00\x00" + proxy_wire.tlv(0x21, b"TLSv1.3"))
    )
    header, _ = parsed(proxy_wire.v2(CLIENT4, SERVER4, tlvs=tlvs))
    assert [kind for kind, _ in header.tlvs] == [0x01, 0x02, 0x04, 0x05, 0x20]
    assert header.tlv(proxy_wire.AUTHORITY) == b"sip.example.net"
    assert header.tlv(proxy_wire.UNIQUE_ID) == b"\x01" * 128
    assert header.tlv(0x30) is None


def test_v2_crc32c_is_checked() -> None:
    data = proxy_wire.v2(CLIENT4, SERVER4, tlvs=proxy_wire.tlv(proxy_wire.UNIQUE_ID, b"id"), crc=True)
    header, _ = parsed(data)
    assert header.tlv(proxy_wire.CRC32C) == data[-4:]
    for at in (13, 17, len(data) - 8, len(data) - 1):  # any bit changed, checksum included
        broken = bytearray(data)
        broken[at] ^= 0x01
        with pytest.raises(ProxyHeaderError):
            parse_proxy_header(bytes(broken))


def test_crc32c_matches_the_specification_and_a_bitwise_reference() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == proxy_wire.crc32c(b"") == 0
    payload = bytes(range(256)) * 3
    assert crc32c(payload) == proxy_wire.crc32c(payload)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (proxy_wire.v2(CLIENT4, SERVER4, version=1), "version 1"),
        (proxy_wire.v2(CLIENT4, SERVER4, command=0x2), "unknown command"),
        (proxy_wire.v2(CLIENT4, SERVER4, family=0x13), "unknown family"),
        (proxy_wire.v2(CLIENT4, SERVER4, family=0x41), "unknown family"),
        (proxy_wire.SIGNATURE + b"\x21\x21\x00\x0c" + b"\x00" * 12, "too short for its addresses"),
        (proxy_wire.SIGNATURE + b"\x21\x11\x10\x01", "over our 4096"),
        (proxy_wire.v2(CLIENT4, SERVER4, tlvs=b"\x05\x00"), "TLV cut short"),
        (proxy_wire.v2(CLIENT4, SERVER4, tlvs=b"\x05\x00\x09abc"), "TLV longer than the header"),
        (proxy_wire.v2(CLIENT4, SERVER4, tlvs=proxy_wire.tlv(proxy_wire.CRC32C, b"\x00")), "4 bytes"),
    ],
)
def test_v2_malformed(data: bytes, detail: str) -> None:
    with pytest.raises(ProxyHeaderError, match=detail):
        parse_proxy_header(data)


def test_v2_waits_for_its_whole_length() -> None:
    data = proxy_wire.v2(CLIENT6, SERVER6, tlvs=proxy_wire.tlv(proxy_wire.NOOP, b"\x00" * 40))
    for cut in range(len(data)):
        assert parse_proxy_header(data[:cut]) is None, cut
    assert parsed(data)[1] == len(data)


# ------------------------------------------------------------------ the reader


def test_reader_returns_what_follows_the_header_in_the_same_read() -> None:
    reader = ProxyHeaderReader(0.0, 5.0, 4)
    assert reader.receive_data(proxy_wire.v2(CLIENT4, SERVER4) + TLS_HELLO) == TLS_HELLO
    assert reader.header == ProxyHeader(2, CLIENT4, SERVER4)
    assert reader.get_timer() is None
    assert reader.receive_data(b"more") == b"more"  # once read, bytes pass through


def test_reader_takes_a_header_over_several_reads_within_the_chunk_limit() -> None:
    data = proxy_wire.v1(CLIENT4, SERVER4)
    reader = ProxyHeaderReader(0.0, 5.0, 4)
    assert reader.receive_data(data[:10]) is None
    assert reader.receive_data(data[10:20]) is None
    assert reader.receive_data(data[20:] + b"GET") == b"GET"
    assert reader.error is None


def test_reader_refuses_a_header_over_more_reads_than_max_msg_chunks() -> None:
    reader = ProxyHeaderReader(0.0, 5.0, 3)
    for byte in (b"P", b"R"):
        assert reader.receive_data(byte) is None
    assert reader.get_timer() == 5.0  # still waiting
    assert reader.receive_data(b"O") is None
    assert reader.error == "PROXY header incomplete after 3 reads (max_msg_chunks)"
    assert reader.receive_data(b"XY TCP4") is None  # failed for good


def test_reader_times_out() -> None:
    reader = ProxyHeaderReader(10.0, 3.0, 4)
    assert reader.get_timer() == 13.0
    assert reader.handle_timer(12.9) is False
    assert reader.receive_data(b"PROXY ") is None
    assert reader.handle_timer(13.0) is True
    assert reader.error == "no PROXY header within header_timeout"
    assert reader.get_timer() is None
    assert reader.handle_timer(20.0) is False


def test_reader_refuses_a_connection_that_starts_with_anything_else() -> None:
    reader = ProxyHeaderReader(0.0, 5.0, 4)
    assert reader.receive_data(TLS_HELLO) is None
    assert reader.error is not None and "not a PROXY header" in reader.error


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_any_bytes_in_any_reads_end_in_a_header_or_an_error(data: bytes, cuts: list[int]) -> None:
    """Never an exception: each read leaves the reader waiting, done or failed."""
    reader = ProxyHeaderReader(0.0, 5.0, 1000)
    points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(points):
        reader.receive_data(data[start:end])
    assert reader.header is None or reader.error is None


@given(
    st.sampled_from(["v1", "v2"]),
    st.tuples(st.ip_addresses(v=4).map(str), st.integers(0, 65535)),
    st.tuples(st.ip_addresses(v=4).map(str), st.integers(0, 65535)),
    st.binary(max_size=40),
    st.lists(st.integers(1, 80), max_size=3),
)
def test_a_header_cut_anywhere_reads_the_same(
    version: str, source: tuple[str, int], destination: tuple[str, int], rest: bytes, cuts: list[int]
) -> None:
    data = (proxy_wire.v1 if version == "v1" else proxy_wire.v2)(source, destination)
    stream = data + rest
    reader = ProxyHeaderReader(0.0, 5.0, 10)
    points = sorted({min(cut, len(stream)) for cut in cuts} | {0, len(stream)})
    after = b""
    for start, end in itertools.pairwise(points):
        out = reader.receive_data(stream[start:end])
        after += out or b""
    assert reader.header == ProxyHeader(1 if version == "v1" else 2, source, destination)
    assert after == rest


@given(st.ip_addresses(v=6), st.ip_addresses(v=6))
def test_v1_and_v2_agree_on_ipv6(source: object, destination: object) -> None:
    addresses = ((str(source), 5060), (str(destination), 443))
    assert parsed(proxy_wire.v1(*addresses))[0].source == parsed(proxy_wire.v2(*addresses))[0].source


# ------------------------------------------------------------------ the policy


def test_policy_trusts_networks_and_single_addresses() -> None:
    policy = ProxyPolicy(trusted=["10.0.0.0/8", "::1", "192.0.2.1"], proxy_protocol=True)
    assert policy.trusts("10.200.3.4")
    assert policy.trusts("192.0.2.1")
    assert policy.trusts("::1")
    assert policy.trusts("::ffff:10.1.2.3")  # an IPv4-mapped peer of a dual-stack socket
    assert not policy.trusts("192.0.2.2")
    assert not policy.trusts("11.0.0.1")
    assert not policy.trusts("proxy.example.net")
    assert not policy.trusts("")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trusted": "10.0.0.0/8"}, "networks such as"),
        ({"trusted": ["10.0.0.0/33"]}, "not an IP network"),
        ({"trusted": ["10.0.0.1/8"]}, "not an IP network"),  # host bits set
        ({"trusted": [], "proxy_protocol": True}, "name the proxies"),
        ({"trusted": [], "forwarded": "forwarded"}, "name the proxies"),
        ({"trusted": ["::1"], "forwarded": "x-real-ip"}, "'forwarded' or 'x-forwarded-for'"),
        ({"trusted": ["::1"], "proxy_protocol": 1}, "True or False"),
        ({"trusted": ["::1"], "header_timeout": 0}, "positive"),
        ({"trusted": ["::1"], "header_timeout": float("nan")}, "positive"),
    ],
)
def test_policy_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProxyPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_remembers_a_bounded_number_of_verdicts() -> None:
    policy = ProxyPolicy(trusted=["10.0.0.0/8"], proxy_protocol=True)
    for n in range(10_000):  # more peers than it remembers: its memory is cleared, never wrong
        host = f"10.{n >> 8 & 255}.{n & 255}.1" if n % 2 else f"192.0.{n >> 8 & 255}.{n & 255}"
        assert policy.trusts(host) is bool(n % 2)
    assert len(policy._verdicts) <= 4096
    assert policy == ProxyPolicy(trusted=["10.0.0.0/8"], proxy_protocol=True)  # not part of equality
