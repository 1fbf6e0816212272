"""The PROXY protocol (HAProxy's, versions 1 and 2) and the proxies a listener trusts.

A load balancer that passes TCP through (HAProxy, nginx's stream module, cloud L4 balancers)
sends one PROXY header before the first byte of its client, TLS or HTTP: the client's address
and the one it connected to. Only a listener configured for it reads one, and only from the
addresses it trusts (the specification forbids guessing whether a header is there).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import ConfigError
from .table import Address, ip_text

__all__ = [
    "ForwardedHeader",
    "ProxyHeader",
    "ProxyHeaderError",
    "ProxyHeaderReader",
    "ProxyPolicy",
    "crc32c",
    "parse_proxy_header",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ForwardedHeader = str
"""`forwarded` (RFC 7239's `Forwarded`) or `x-forwarded-for`."""

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107  # the longest version 1 line, CRLF included
V2_MAX_LENGTH = 4096  # what we read of a version 2 header after its 16 fixed bytes
PP2_TYPE_CRC32C = 0x03
_V1_PREFIX = b"PROXY "
_FAMILIES = {0x00: 0, 0x11: 12, 0x12: 12, 0x21: 36, 0x22: 36, 0x31: 216, 0x32: 216}
"""Version 2 family and transport bytes the specification defines, with their address size."""
_FORWARDED_HEADERS = ("forwarded", "x-forwarded-for")
_VERDICTS = 4096  # peers whose trust `ProxyPolicy.trusts` remembers, at most
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
"""A dotted quad as version 1 writes it (no heading zeroes): already in canonical form."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyPolicy:
    """What one listener believes of the proxies in front of it.

    `trusted` networks (or single addresses, as strings) are the proxies; nothing is believed
    from any other peer. With `proxy_protocol`, every connection must come from a trusted proxy
    and start with a PROXY header (version 1 or 2) within `header_timeout` seconds; with
    `forwarded`, the upgrade request's `Forwarded` or `X-Forwarded-For` names the client when
    the peer is trusted. Name the header your proxy writes: the other one passes through from
    the client, unchecked.
    """

    trusted: Iterable[str | Network]
    """The proxies: networks or addresses (`"10.0.0.0/8"`, `"::1"`), kept as a frozenset of
    networks."""

    proxy_protocol: bool = False
    """Require a PROXY header on every connection (from trusted peers only)."""

    forwarded: ForwardedHeader | None = None
    """`forwarded` or `x-forwarded-for`: the header whose hops to believe; None believes none."""

    header_timeout: float = 5.0
    """Seconds from accept for the whole PROXY header (the specification asks for at least 3)."""

    _networks: frozenset[Network] = field(init=False, repr=False, compare=False)
    _verdicts: dict[str, bool] = field(init=False, repr=False, compare=False)
    """`trusts()` answers by peer address: a listener's peers are mostly its few proxies."""

    def __post_init__(self) -> None:
        given: object = self.trusted
        if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
            raise ConfigError(f"trusted: networks such as ['10.0.0.0/8', '::1'], not {given!r}")
        networks = []
        for item in given:
            try:
                networks.append(ipaddress.ip_network(item))
            except (TypeError, ValueError):
                raise ConfigError(f"trusted: {item!r} is not an IP network or address") from None
        object.__setattr__(self, "trusted", frozenset(networks))
        object.__setattr__(self, "_networks", frozenset(networks))
        object.__setattr__(self, "_verdicts", {})
        if self.forwarded is not None and self.forwarded not in _FORWARDED_HEADERS:
            raise ConfigError(f"forwarded: 'forwarded' or 'x-forwarded-for', not {self.forwarded!r}")
        if not isinstance(self.proxy_protocol, bool):
            raise ConfigError("proxy_protocol: True or False")
        if not networks and (self.proxy_protocol or self.forwarded is not None):
            raise ConfigError("trusted: name the proxies (a listener that trusts none can believe nothing)")
        timeout = self.header_timeout
        number = not isinstance(timeout, bool) and isinstance(timeout, (int, float))
        if not number or not math.isfinite(timeout) or timeout <= 0:
            raise ConfigError(f"header_timeout: a positive number of seconds, not {timeout!r}")

    def trusts(self, host: str) -> bool:
        """Whether the peer at IP `host` is one of the trusted proxies (an IPv4-mapped IPv6
        address counts as its IPv4 address; a name or a malformed address is never trusted)."""
        verdicts = self._verdicts
        verdict = verdicts.get(host)
        if verdict is None:
            if len(verdicts) >= _VERDICTS:
                verdicts.clear()
            verdict = verdicts[host] = self._trusts(host)
        return verdict

    def _trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A PROXY header as read. `source` and `destination` are None when it names no TCP
    addresses (version 2 LOCAL, a proxy's own health check; version 1 UNKNOWN; a family or
    transport other than TCP over IPv4 or IPv6): the socket's addresses then stand."""

    version: int
    source: Address | None
    destination: Address | None
    tlvs: tuple[tuple[int, bytes], ...] = ()
    """Version 2 type-length-values in order (ALPN 0x01, authority 0x02, unique id 0x05, ...)."""

    def tlv(self, kind: int) -> bytes | None:
        """The value of the first TLV of type `kind`, or None."""
        return next((value for found, value in self.tlvs if found == kind), None)


class ProxyHeaderError(ValueError):
    """`parse_proxy_header`: the bytes are not, and cannot become, a valid PROXY header."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ProxyHeaderReader:
    """Sans-IO: the PROXY header at the start of one connection from a trusted proxy.

    Feed it what the socket reads: once the header is complete, `receive_data` returns the
    bytes that follow it (TLS or HTTP, maybe none). When the header is malformed, spans more
    than `max_reads` reads, or is late (`handle_timer`), `error` says why, and the connection
    is to be closed without a reply.
    """

    __slots__ = ("_buf", "_deadline", "_max_reads", "_reads", "error", "header")

    def __init__(self, now: float, timeout: float, max_reads: int) -> None:
        self._buf = b""
        self._deadline: float | None = now + timeout
        self._max_reads = max_reads
        self._reads = 0
        self.header: ProxyHeader | None = None
        """The header, once read."""
        self.error: str | None = None
        """Why the connection is refused, once it is."""

    def receive_data(self, data: bytes) -> bytes | None:
        """One read's bytes: what follows the header once it is read; None while it is
        incomplete, or once it failed."""
        if self.header is not None:
            return data
        if self.error is not None:
            return None
        self._reads += 1
        buf = self._buf + data
        try:
            found = parse_proxy_header(buf)
        except ProxyHeaderError as exc:
            self._fail(str(exc))
            return None
        if found is None:
            if self._reads >= self._max_reads:
                self._fail(f"PROXY header incomplete after {self._reads} reads (max_msg_chunks)")
            else:
                self._buf = buf
            return None
        self.header, length = found
        self._buf = b""
        self._deadline = None
        return buf[length:]

    def get_timer(self) -> float | None:
        """When the header is late, until it is read (or failed)."""
        return self._deadline

    def handle_timer(self, now: float) -> bool:
        """Fail once the header is late: True when it did now (`error` says so)."""
        if self._deadline is not None and now >= self._deadline:
            self._fail("no PROXY header within header_timeout")
            return True
        return False

    def _fail(self, detail: str) -> None:
        self.error = detail
        self._buf = b""
        self._deadline = None


def parse_proxy_header(data: bytes) -> tuple[ProxyHeader, int] | None:
    """The PROXY header at the start of `data` and its length in bytes; None while `data` may
    still become one. Raises ProxyHeaderError when it cannot: anything else (TLS, HTTP) at the
    start, a malformed or oversized header, or a version 2 checksum that does not match."""
    if data[:1] == b"\r":
        if not V2_SIGNATURE.startswith(data[:12]):
            raise ProxyHeaderError("not a PROXY header")
        return _parse_v2(data) if len(data) >= 16 else None
    if not _V1_PREFIX.startswith(data[:6]):
        raise ProxyHeaderError(f"not a PROXY header (starts {data[:6]!r})")
    return _parse_v1(data)


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX or b"\n" in data[:V1_MAX] or b"\r" in data[: min(len(data), V1_MAX) - 1]:
            raise ProxyHeaderError("PROXY v1 line without CRLF in its first 107 bytes")
        return None
    line = data[:end]
    if not line.isascii() or b"\r" in line or b"\n" in line:
        raise ProxyHeaderError("PROXY v1 line: not one line of US-ASCII")
    words = line.decode("ascii").split(" ")
    if words[1:2] == ["UNKNOWN"]:
        return ProxyHeader(1, None, None), end + 2
    if len(words) != 6 or words[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"PROXY v1 line: malformed {line[:V1_MAX]!r}")
    version = 4 if words[1] == "TCP4" else 6
    source, destination = _v1_address(words[2], version), _v1_address(words[3], version)
    ports = (_v1_port(words[4]), _v1_port(words[5]))
    return ProxyHeader(1, (source, ports[0]), (destination, ports[1])), end + 2


def _v1_address(text: str, version: int) -> str:
    if version == 4 and _IPV4.fullmatch(text):
        return text
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyHeaderError(f"PROXY v1 line: {text!r} is not an IP address") from None
    # A dotted IPv4 tail in TCP6 is what inet_ntop writes for an IPv4-mapped client (HAProxy
    # on a dual-stack bind sends it): taken, as HAProxy's own reader takes it.
    if address.version != version or "%" in text:
        raise ProxyHeaderError(f"PROXY v1 line: {text!r} is not a TCP{version} address")
    return ip_text(address)


def _v1_port(text: str) -> int:
    if not text.isdigit() or (text[0] == "0" and text != "0") or int(text) > 65535:
        raise ProxyHeaderError(f"PROXY v1 line: {text!r} is not a port")
    return int(text)


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != 2:
        raise ProxyHeaderError(f"PROXY v2 header: version {version}")
    if command > 1:
        raise ProxyHeaderError(f"PROXY v2 header: unknown command {command}")
    family = data[13]
    if family not in _FAMILIES:
        raise ProxyHeaderError(f"PROXY v2 header: unknown family and transport 0x{family:02x}")
    length = int.from_bytes(data[14:16], "big")
    if length > V2_MAX_LENGTH:
        raise ProxyHeaderError(f"PROXY v2 header: {length} bytes, over our {V2_MAX_LENGTH}")
    if len(data) < 16 + length:
        return None
    block = data[16 : 16 + length]
    size = _FAMILIES[family]
    if length < size:
        if command == 0:  # LOCAL: the family is ignored, whatever the block holds (section 2.2)
            return ProxyHeader(2, None, None), 16 + length
        raise ProxyHeaderError(f"PROXY v2 header: {length} bytes, too short for its addresses")
    tlvs = _tlvs(block, size)
    for kind, at, end in tlvs:
        if kind == PP2_TYPE_CRC32C:
            _check_crc(data[: 16 + length], 16 + at, end - at)
    source = destination = None
    if command == 1 and family in (0x11, 0x21):  # PROXY over TCP: the client's addresses
        half = (size - 4) // 2
        ports = block[2 * half : 2 * half + 4]
        source = (_v2_address(block[:half]), int.from_bytes(ports[:2], "big"))
        destination = (_v2_address(block[half : 2 * half]), int.from_bytes(ports[2:], "big"))
    values = tuple((kind, block[at:end]) for kind, at, end in tlvs)
    return ProxyHeader(2, source, destination, values), 16 + length


def _v2_address(packed: bytes) -> str:
    """A 4- or 16-byte address in network byte order, as canonical text."""
    if len(packed) == 4:
        return "%d.%d.%d.%d" % tuple(packed)  # noqa: UP031 (the fastest way here)
    return ip_text(ipaddress.IPv6Address(packed))


def _tlvs(block: bytes, at: int) -> list[tuple[int, int, int]]:
    """The TLVs after the addresses: (type, start, end) of each value in `block`."""
    found = []
    while at < len(block):
        if at + 3 > len(block):
            raise ProxyHeaderError("PROXY v2 header: a TLV cut short")
        end = at + 3 + int.from_bytes(block[at + 1 : at + 3], "big")
        if end > len(block):
            raise ProxyHeaderError("PROXY v2 header: a TLV longer than the header")
        found.append((block[at], at + 3, end))
        at = end
    return found


def _check_crc(header: bytes, at: int, size: int) -> None:
    """The specification's check: the CRC32C of the header with its own value zeroed."""
    if size != 4:
        raise ProxyHeaderError("PROXY v2 header: a CRC32C TLV is 4 bytes")
    zeroed = header[:at] + b"\x00\x00\x00\x00" + header[at + 4 :]
    if crc32c(zeroed) != int.from_bytes(header[at : at + 4], "big"):
        raise ProxyHeaderError("PROXY v2 header: CRC32C mismatch")


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, RFC 4960 appendix B) of `data`."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
