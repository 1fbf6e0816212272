"""HEPv3 packets (HOMER's capture encapsulation), laid out as OpenSIPS's `proto_hep` lays them out.

Pure encoding: the caller gives addresses, the wall-clock time and the payload; nothing here
reads a clock or touches a socket. `net_payload()` renders the key/value parts of a connection
event the two ways OpenSIPS does (HOMER5: the values joined with `:`; JSON: cJSON's layout).
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "IP_PROTO_WS",
    "PROTO_NET",
    "PROTO_SIP",
    "HepFlow",
    "HepPacket",
    "PayloadFormat",
    "net_payload",
]

PROTO_SIP = 0x01
"""HEP protocol type of a SIP message."""
PROTO_NET = 0x59
"""HEP protocol type OpenSIPS gives its transport ("net") events: not in the HEP spec."""
IP_PROTO_WS = 50
"""The IP protocol id OpenSIPS writes for WS and WSS (IPPROTO_ESP, a marker, not the truth)."""

_MAX = 65535  # the length field is 16 bits, header included
_FAMILY = {4: 2, 6: 10}  # AF_INET and AF_INET6 as Linux numbers them, whatever the platform


class PayloadFormat(str, enum.Enum):
    """How `net_payload()` renders an event's parts (OpenSIPS `proto_hep` `homer5_on`)."""

    HOMER5 = "homer5"
    """The values only, joined with `:` (OpenSIPS's default, `homer5_on=1`)."""
    JSON = "json"
    """A JSON object laid out as cJSON prints it, keys in order, repeated keys kept (`homer5_on=0`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HepPacket:
    """One HEPv3 packet. `encode()` writes the chunks in OpenSIPS's order: family, IP protocol,
    ports, time, protocol type, capture id, addresses, [auth key], payload, [extra correlation],
    [correlation id]."""

    source: tuple[str, int]
    """(IP, port) the packet's payload came from (for a connection event, the remote peer)."""
    destination: tuple[str, int]
    """(IP, port) it went to; the same IP version as `source`."""
    time: float
    """Wall-clock seconds since the epoch (split into seconds and microseconds)."""
    proto_type: int
    """`PROTO_SIP`, `PROTO_NET`, or another HEP protocol type (0-255)."""
    payload: bytes
    capture_id: int = 1
    """The capture agent's id (OpenSIPS `hep_capture_id`, default 1)."""
    ip_proto: int = IP_PROTO_WS
    """IP protocol id chunk (OpenSIPS: 50 for WS/WSS)."""
    correlation_id: str | None = None
    """Ties every packet of one connection together (chunk 0x0011)."""
    extra_correlation: str | None = None
    """JSON correlation chunk 101, which OpenSIPS's tracer gives SIP messages: `{"net":"<id>"}`."""
    auth_key: bytes | None = None
    """Authentication key chunk (0x000e), for collectors that want one."""

    def encode(self) -> bytes:
        """The packet's bytes. Raises ValueError for values a chunk cannot hold, and for a
        packet over 65,535 bytes (the caller may cut the payload and try again)."""
        flow = HepFlow(
            source=self.source,
            destination=self.destination,
            proto_type=self.proto_type,
            capture_id=self.capture_id,
            ip_proto=self.ip_proto,
            correlation_id=self.correlation_id,
            extra_correlation=self.extra_correlation,
            auth_key=self.auth_key,
        )
        return flow.encode(self.time, self.payload)


class HepFlow:
    """What every packet of one direction of one connection shares, laid out once as bytes:
    `encode(time, payload)` then only adds the time and the payload (`HepPacket`'s layout)."""

    __slots__ = ("_after", "_before", "_tail")

    def __init__(
        self,
        *,
        source: tuple[str, int],
        destination: tuple[str, int],
        proto_type: int,
        capture_id: int = 1,
        ip_proto: int = IP_PROTO_WS,
        correlation_id: str | None = None,
        extra_correlation: str | None = None,
        auth_key: bytes | None = None,
    ) -> None:
        """Raises ValueError for values a chunk cannot hold (see `HepPacket`'s fields)."""
        src_version, src_packed = _address(source[0])
        dst_version, dst_packed = _address(destination[0])
        if src_version != dst_version:
            raise ValueError("source and destination must be the same IP version")
        if not 0 <= proto_type <= 255 or not 0 <= ip_proto <= 255:
            raise ValueError("proto_type and ip_proto are 8-bit")
        if not 0 <= capture_id <= 0xFFFFFFFF:
            raise ValueError("capture_id is 32-bit")
        v6 = src_version == 6
        self._before = b"".join((
            _chunk(1, struct.pack("!B", _FAMILY[src_version])),
            _chunk(2, struct.pack("!B", ip_proto)),
            _chunk(7, struct.pack("!H", source[1])),
            _chunk(8, struct.pack("!H", destination[1])),
        ))  # fmt: skip
        after = [
            _chunk(11, struct.pack("!B", proto_type)),
            _chunk(12, struct.pack("!I", capture_id)),
            _chunk(5 if v6 else 3, src_packed),
            _chunk(6 if v6 else 4, dst_packed),
        ]
        if auth_key is not None:
            after.append(_chunk(14, auth_key))
        self._after = b"".join(after)
        tail = []
        if extra_correlation is not None:
            tail.append(_chunk(101, extra_correlation.encode()))
        if correlation_id is not None:
            tail.append(_chunk(17, correlation_id.encode()))
        self._tail = b"".join(tail)

    def encode(self, time: float, payload: bytes) -> bytes:
        """One packet at wall-clock `time` (seconds since the epoch) carrying `payload`; ValueError
        for a time before the epoch or a packet over 65,535 bytes."""
        if not 0 <= time < 1 << 32:  # NaN fails too
            raise ValueError("time is seconds since the epoch")
        seconds = int(time)
        micros = min(round((time - seconds) * 1e6), 999_999)
        size = 32 + len(self._before) + len(self._after) + len(payload) + len(self._tail)
        if size > _MAX:
            raise ValueError(f"a HEP packet holds at most {_MAX} bytes, this one {size}")
        return b"".join((
            _pack_head(b"HEP3", size),
            self._before,
            _pack_time(0, 9, 10, seconds, 0, 10, 10, micros),
            self._after,
            _pack_chunk_head(0, 15, 6 + len(payload)),
            payload,
            self._tail,
        ))  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _address(ip: str) -> tuple[int, bytes]:
    """(IP version, packed address): a server sees the same few addresses again and again."""
    address = ipaddress.ip_address(ip)
    return address.version, address.packed


_pack_head = struct.Struct("!4sH").pack
_pack_time = struct.Struct("!HHHIHHHI").pack
_pack_chunk_head = struct.Struct("!HHH").pack


def net_payload(parts: Sequence[tuple[str, str]], format: PayloadFormat) -> bytes:
    """A connection event's payload from its (key, value) parts, in order (keys may repeat).
    Text that is not Unicode (a lone surrogate) is written escaped, `\\udcff`: never an error."""
    if format is PayloadFormat.HOMER5:
        return ":".join(value for _, value in parts).encode("utf-8", "backslashreplace")
    fields = ",\n".join(f"\t{_json_string(key)}:\t{_json_string(value)}" for key, value in parts)
    return ("{\n" + fields + "\n}").encode("utf-8", "backslashreplace")


def _chunk(kind: int, payload: bytes) -> bytes:
    if len(payload) > _MAX - 6:
        raise ValueError(f"a HEP chunk holds at most {_MAX - 6} bytes")
    return struct.pack("!HHH", 0, kind, 6 + len(payload)) + payload


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_string(text: str) -> str:
    """A JSON string as cJSON writes it: the two-character escapes, other control characters
    as \\u00XX, everything else (non-ASCII too) as it is."""
    out = []
    for char in text:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
