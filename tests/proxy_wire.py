"""PROXY protocol headers built byte by byte from HAProxy's specification (proxy-protocol.txt,
sections 2.1 and 2.2), independently of `sansio_wss.proxy`, for the tests."""

from __future__ import annotations

import ipaddress
import struct

SIGNATURE = bytes((0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A))
LOCAL, PROXY = 0x0, 0x1
UNSPEC, TCP4, UDP4, TCP6, UDP6, UNIX_STREAM, UNIX_DGRAM = 0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32
ALPN, AUTHORITY, CRC32C, NOOP, UNIQUE_ID, SSL = 0x01, 0x02, 0x03, 0x04, 0x05, 0x20


def v1(source: tuple[str, int] | None, destination: tuple[str, int] | None = None) -> bytes:
    """`PROXY TCP4|TCP6 src dst sport dport\\r\\n`, or `PROXY UNKNOWN\\r\\n` without addresses."""
    if source is None or destination is None:
        return b"PROXY UNKNOWN\r\n"
    family = "TCP6" if ":" in source[0] else "TCP4"
    line = f"PROXY {family} {source[0]} {destination[0]} {source[1]} {destination[1]}\r\n"
    return line.encode("ascii")


def tlv(kind: int, value: bytes) -> bytes:
    """One type-length-value: type byte, 16-bit big-endian length, value."""
    return bytes((kind,)) + struct.pack("!H", len(value)) + value


def v2(
    source: tuple[str, int] | None = None,
    destination: tuple[str, int] | None = None,
    *,
    command: int = PROXY,
    family: int | None = None,
    tlvs: bytes = b"",
    crc: bool = False,
    version: int = 2,
) -> bytes:
    """A version 2 header: signature, version and command, family and transport, length,
    addresses (network byte order), then `tlvs`; with `crc`, a CRC32C TLV computed as section
    2.2.3 says (over the header with the checksum zeroed)."""
    if source is not None and destination is not None:
        src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
        family = family if family is not None else (TCP4 if src.version == 4 else TCP6)
        addresses = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    else:
        family = UNSPEC if family is None else family
        addresses = b"\x00" * {UNIX_STREAM: 216, UNIX_DGRAM: 216}.get(family, 0)
    body = addresses + tlvs + (tlv(CRC32C, b"\x00\x00\x00\x00") if crc else b"")
    head = SIGNATURE + bytes(((version << 4) | command, family)) + struct.pack("!H", len(body))
    header = head + body
    if crc:
        checksum = crc32c(header)
        header = header[:-4] + struct.pack("!I", checksum)
    return header


def crc32c(data: bytes) -> int:
    """CRC-32C bit by bit (RFC 4960 appendix B's polynomial, reflected), slow and obvious."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF
