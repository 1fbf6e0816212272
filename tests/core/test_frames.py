"""Frame helpers: masking, encoding, close payloads and codes, the client's mask source."""

from __future__ import annotations

import os

import pytest

from sansio_wss._frames import (
    MaskSource,
    Violation,
    close_payload,
    encode,
    parse_close,
    sendable_close_code,
    unmask,
    unmask_from,
)


def _reference(payload: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 1300, 4500, 65536, 65537, 70001])
def test_unmask_matches_the_definition(size: int) -> None:
    payload, mask = os.urandom(size), os.urandom(4)
    assert unmask(payload, mask) == _reference(payload, mask)
    assert unmask(unmask(payload, mask), mask) == payload


def test_unmask_with_zero_and_full_masks() -> None:
    payload = b"\x00\xff" * 50
    assert unmask(payload, b"\x00\x00\x00\x00") == payload
    assert unmask(payload, b"\xff\xff\xff\xff") == bytes(255 - b for b in payload)


def test_encode_masked() -> None:
    frame = encode(1, b"abc", b"\x01\x02\x03\x04")
    assert frame == b"\x81\x83\x01\x02\x03\x04" + _reference(b"abc", b"\x01\x02\x03\x04")
    assert encode(2, b"", None, fin=False) == b"\x02\x00"


def test_mask_source_is_fresh() -> None:
    source = MaskSource()
    masks = {source.next() for _ in range(3000)}
    assert len(masks) > 2990 and all(len(m) == 4 for m in masks)


def test_close_codes() -> None:
    sendable = [c for c in range(0, 5001) if sendable_close_code(c)]
    assert sendable[:4] == [1000, 1001, 1002, 1003]
    assert 1004 not in sendable and 1005 not in sendable and 1006 not in sendable and 1015 not in sendable
    assert 1014 in sendable and 1016 not in sendable and 2999 not in sendable
    assert 3000 in sendable and 4999 in sendable and 5000 not in sendable


def test_close_payloads() -> None:
    assert close_payload(None, "") == b""
    assert close_payload(1000, "é") == b"\x03\xe8\xc3\xa9"
    assert parse_close(b"") == (1005, "")
    assert parse_close(b"\x0f\xa0ok") == (4000, "ok")
    for bad, code in ((b"\x03", 1002), (b"\x03\xed", 1002), (b"\x03\xe8\xff", 1007)):
        with pytest.raises(Violation) as info:
            parse_close(bad)
        assert info.value.code == code


def test_c_unmask_is_there_unless_refused_and_matches_the_reference() -> None:
    if os.environ.get("SANSIO_WSS_PURE"):
        assert unmask_from is None
        return
    assert unmask_from is not None, "the optional C helper was not built (no compiler?)"
    for size in (0, 1, 7, 8, 9, 125, 1300, 4500, 65536):
        payload, mask = os.urandom(size), os.urandom(4)
        buf = b"\x81\xfe" + mask + payload + b"trailing"
        assert unmask_from(buf, 6, 6 + size) == unmask(payload, mask)
    for start, stop in ((3, 4), (5, 4), (4, 100)):
        with pytest.raises(ValueError):
            unmask_from(b"x" * 20, start, stop)
