"""A HEPv3 decoder written from the HEP spec (rev. 37) for the tests: never the encoder run backwards."""

from __future__ import annotations

import struct

Chunk = tuple[int, int, bytes]  # vendor, type, payload


def decode(packet: bytes) -> list[Chunk]:
    """HEP spec rev. 37: "HEP3", a 16-bit total length (header included), then chunks of a
    16-bit vendor, a 16-bit type and a 16-bit length (these 6 bytes included), all big-endian."""
    assert packet[:4] == b"HEP3"
    assert int.from_bytes(packet[4:6], "big") == len(packet)
    chunks: list[Chunk] = []
    offset = 6
    while offset < len(packet):
        vendor, kind, length = struct.unpack_from("!HHH", packet, offset)
        assert length >= 6 and offset + length <= len(packet)
        chunks.append((vendor, kind, packet[offset + 6 : offset + length]))
        offset += length
    assert offset == len(packet)
    return chunks


def number(value: bytes) -> int:
    return int.from_bytes(value, "big")


def fields(packet: bytes) -> dict[int, bytes]:
    chunks = decode(packet)
    assert all(vendor == 0 for vendor, _, _ in chunks)
    found = {kind: value for _, kind, value in chunks}
    assert len(found) == len(chunks), "a chunk type repeats"
    return found
