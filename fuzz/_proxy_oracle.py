"""What a PROXY header (v1 or v2) must parse to, read anew from HAProxy's proxy-protocol.txt (2.1, 2.2)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import struct
from dataclasses import dataclass

__all__ = ["SIGNATURE", "V2_LIMIT", "Expected", "crc32c", "expect", "ip_text", "ips_in", "trusted"]

SIGNATURE = bytes.fromhex("0d0a0d0a000d0a515549540a")  # section 2.2, the 12-byte block
V1_LIMIT = 107  # section 2.1: the CRLF must be found in the first 107 characters
V2_LIMIT = 4096  # not the spec's: sansio_wss documents it reads at most 4096 bytes after the 16 fixed
ADDRESS_SIZES = {0x00: 0, 0x11: 12, 0x12: 12, 0x21: 36, 0x22: 36, 0x31: 216, 0x32: 216}  # 2.2
CRC_TYPE = 0x03

Address = tuple[str, int]
Tlvs = tuple[tuple[int, bytes], ...]

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"  # no heading zeroes
_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_H16 = re.compile(r"[0-9A-Fa-f]{1,4}")
_PORT = r"(?:0|[1-9][0-9]{0,4})"
_TCP = re.compile(rf"PROXY (TCP4|TCP6) ([^ ]+) ([^ ]+) ({_PORT}) ({_PORT})")


@dataclass(frozen=True, slots=True)
class Expected:
    """What a receiver that follows the specification does with some bytes.

    `kind`: "header" (exactly `header` of `length` bytes), "invalid" (refused), "incomplete" (wait
    for more), "pending" (wait or refuse: an implementation may refuse a line early), "lenient" (the
    specification lets the receiver refuse or accept; accepted, it is `header`), "open" (refuse, or
    accept some header of `length` bytes: how to read it is not said), "accepted" (a header of `length`
    bytes without addresses, TLVs as may be). `finding` names a known
    deviation of sansio_wss the harness tolerates until it is fixed.
    """

    kind: str
    header: tuple[int, Address | None, Address | None, Tlvs] | None = None
    length: int = 0
    why: str = ""
    finding: str = ""


def ip_text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as sansio_wss writes it (`Address`): what ipaddress writes, except an IPv4-mapped
    IPv6 address, dotted (`::ffff:192.0.2.7`), as Python 3.13 and inet_ntop write it."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return "::ffff:" + ".".join(str(byte) for byte in address.packed[12:])
    return str(address)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli; RFC 4960 appendix B: reflected 0x1EDC6F41, i.e. 0x82F63B78), by nibbles."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        crc = (crc >> 4) ^ _NIBBLES[crc & 0x0F]
        crc = (crc >> 4) ^ _NIBBLES[crc & 0x0F]
    return crc ^ 0xFFFFFFFF


def _nibble(value: int) -> int:
    for _ in range(4):
        value = (value >> 1) ^ (0x82F63B78 if value & 1 else 0)
    return value


_NIBBLES = tuple(_nibble(value) for value in range(16))
assert crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C (RFC 3720 B.4's catalogue)


def expect(data: bytes) -> Expected:
    """The verdict on `data`, the first bytes a trusted proxy sent."""
    if data[:1] == b"\r":
        return _v2(data)
    return _v1(data)


def _v1(data: bytes) -> Expected:
    end = data.find(b"\r\n", 0, V1_LIMIT)
    if end < 0:
        if len(data) >= V1_LIMIT:
            return Expected("invalid", why="no CRLF in the first 107 bytes")
        if not b"PROXY ".startswith(data[:6]):
            return Expected("invalid", why="not PROXY")
        body = data[:-1] if data.endswith(b"\r") else data
        if b"PROXY UNKNOWN".startswith(body) or (
            body.startswith(b"PROXY UNKNOWN ") and body.isascii() and b"\r" not in body and b"\n" not in body
        ):
            return Expected("incomplete", why="a prefix of a valid UNKNOWN line")
        return Expected("pending", why="no CRLF yet")
    line, length = data[:end], end + 2
    if line == b"PROXY UNKNOWN" or line.startswith(b"PROXY UNKNOWN "):
        unknown = (1, None, None, ())
        # "the receiver must ignore anything presented before the CRLF", yet the line is US-ASCII
        plain = line.isascii() and b"\r" not in line and b"\n" not in line
        return Expected("header" if plain else "lenient", unknown, length, "UNKNOWN")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return Expected("invalid", why="not US-ASCII")
    match = _TCP.fullmatch(text)
    if match is None:
        return Expected("invalid", why="not the v1 grammar")
    family, src, dst, sport, dport = match.groups()
    decode = _v4 if family == "TCP4" else _v6
    source, destination = decode(src), decode(dst)
    if source is None or destination is None or int(sport) > 65535 or int(dport) > 65535:
        return Expected("invalid", why="an address or port out of the grammar")
    header = (1, (source, int(sport)), (destination, int(dport)), ())
    if "." in src + dst and family == "TCP6":
        # not "sets of 4 hexadecimal digits", but what inet_ntop writes for an IPv4-mapped client
        # and what HAProxy's reader (inet_pton) takes; sansio_wss takes it (commit ee451ea)
        return Expected("lenient", header, length, "TCP6 with a dotted IPv4 tail")
    return Expected("header", header, length, family)


def _v4(text: str) -> str | None:
    """Exactly 4 decimal integers 0..255 without heading zeroes, one dot between each."""
    if _V4.fullmatch(text) is None:
        return None
    value = 0
    for part in text.split("."):
        value = value << 8 | int(part)
    return str(ipaddress.IPv4Address(value))


def _v6(text: str) -> str | None:
    """Groups of 1..4 hex digits with colons, at most one `::`, 128 bits in all; the last 32 bits
    may be a dotted IPv4 address (RFC 4291 2.2, the third form)."""
    if text.count("::") > 1:
        return None
    head, colon, last = text.rpartition(":")
    if colon and "." in last:
        tail = _v4(last)
        if tail is None:
            return None
        packed = ipaddress.IPv4Address(tail).packed
        text = f"{head}:{packed[0] << 8 | packed[1]:x}:{packed[2] << 8 | packed[3]:x}"
    if "::" in text:
        head, tail = text.split("::")
        left, right = head.split(":") if head else [], tail.split(":") if tail else []
        if len(left) + len(right) > 7:
            return None
        groups = [*left, *["0"] * (8 - len(left) - len(right)), *right]
    else:
        groups = text.split(":")
    if len(groups) != 8 or not all(_H16.fullmatch(group) for group in groups):
        return None
    value = 0
    for group in groups:
        value = value << 16 | int(group, 16)
    return ip_text(ipaddress.IPv6Address(value))


def _v2(data: bytes) -> Expected:
    if len(data) < 16:
        if not SIGNATURE.startswith(data[:12]):
            return Expected("invalid", why="not the v2 signature")
        known = (len(data) < 13 or data[12] in (0x20, 0x21)) and (len(data) < 14 or data[13] in ADDRESS_SIZES)
        return Expected("incomplete" if known else "pending", why="fewer than 16 bytes")
    if data[:12] != SIGNATURE:
        return Expected("invalid", why="not the v2 signature")
    version, command, family = data[12] >> 4, data[12] & 0x0F, data[13]
    (length,) = struct.unpack_from("!H", data, 14)
    if version != 2 or command > 1:
        return Expected("invalid", why="version or command")
    if family not in ADDRESS_SIZES:  # "must be rejected", though LOCAL "ignores" the family
        return Expected("invalid" if command else "open", length=16 + length, why="family")
    if length > V2_LIMIT:
        return Expected("invalid", why="over sansio_wss's limit")
    size = ADDRESS_SIZES[family]
    if len(data) < 16 + length:
        return Expected("incomplete" if length >= size else "pending", why="shorter than its length")
    block = data[16 : 16 + length]
    if length < size:
        if command == 1:
            return Expected("invalid", why="too short for its addresses")
        # LOCAL: "the receiver must accept this connection as valid and must use the real connection
        # endpoints and discard the protocol block including the family which is ignored"
        return Expected("accepted", length=16 + length, why="LOCAL, family ignored", finding="local-family")
    tlvs = []
    at = size
    while at < length:
        if at + 3 > length:
            return Expected("invalid", why="a TLV cut short")
        kind, size_ = block[at], int.from_bytes(block[at + 1 : at + 3], "big")
        if at + 3 + size_ > length:
            return Expected("invalid", why="a TLV past the end")
        tlvs.append((kind, at + 3, size_))
        at += 3 + size_
    checks = [(at, size_) for kind, at, size_ in tlvs if kind == CRC_TYPE]
    for at, size_ in checks:
        if size_ != 4:
            return Expected("invalid", why="a CRC32C TLV not 4 bytes")
        start = 16 + at
        whole = data[: 16 + length]
        zeroed = whole[:start] + bytes(4) + whole[start + 4 :]
        if crc32c(zeroed) != int.from_bytes(whole[start : start + 4], "big"):
            if len(checks) == 1:
                return Expected("invalid", why="CRC32C mismatch")
            return Expected("open", length=16 + length, why="several CRC32C TLVs, one mismatched")
    source = destination = None
    if command == 1 and family in (0x11, 0x21):
        half = 4 if family == 0x11 else 16
        src, dst = block[:half], block[half : 2 * half]
        sport, dport = struct.unpack_from("!HH", block, 2 * half)
        source = (ip_text(ipaddress.ip_address(src)), sport)
        destination = (ip_text(ipaddress.ip_address(dst)), dport)
    values = tuple((kind, block[at : at + size_]) for kind, at, size_ in tlvs)
    header = (2, source, destination, values)
    if command == 1 and family not in (0x11, 0x21):  # "free to accept ... or to reject"
        return Expected("lenient", header, 16 + length, "PROXY, not TCP")
    return Expected("lenient" if len(checks) > 1 else "header", header, 16 + length, "v2")


def ips_in(text: str) -> set[str]:
    """Every IP address (canonical) written somewhere in `text`, alone or before `:port`, quoted-pair
    escapes and all: a superset of what any reading of a forwarding header can name."""
    found = set()
    for token in re.split(r"[\s,;=\"\[\]()<>]+", text.replace("\\", "")):
        for candidate in (token, token.rpartition(":")[0]):
            with contextlib.suppress(ValueError):
                found.add(ip_text(ipaddress.ip_address(candidate)))
    return found


def trusted(host: str, networks: list[str]) -> bool:
    """Whether `host` is in one of `networks`, an IPv4-mapped IPv6 address as its IPv4 address."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(network) for network in networks)
