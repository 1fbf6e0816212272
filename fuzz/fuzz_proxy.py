"""Fuzz the PROXY header reader, valid headers built here, `forwarded_client` and a server behind proxies."""

from __future__ import annotations

import ipaddress
import struct

import atheris
from _oracle import Watcher, check, split
from _proxy_oracle import SIGNATURE, V2_LIMIT, Expected, crc32c, expect, ip_text, ips_in, trusted
from _samples import CHROME_REQUEST

from sansio_wss import Config, HandshakeRequest, Opened, ServerConnection
from sansio_wss.events import Headers
from sansio_wss.forwarded import forwarded_client
from sansio_wss.proxy import ProxyHeader, ProxyHeaderError, ProxyHeaderReader, ProxyPolicy, parse_proxy_header

KNOWN: frozenset[str] = frozenset()
"""Findings not fixed yet (tests/fuzz_replay/test_fuzz_findings.py): the oracle's verdicts that name
one are not enforced. Remove a name once the library is fixed."""

Address = tuple[str, int]
Said = tuple[int, Address | None, Address | None]
"""A header's version, source and destination."""
Outcome = tuple[ProxyHeader, int] | str | None
"""`parse_proxy_header`'s result, or the ProxyHeaderError's text."""

NETWORKS = ("10.0.0.0/8", "192.0.2.0/24", "::1", "2001:db8::/32", "127.0.0.1", "0.0.0.0/0", "fe80::/10")
PEERS = (
    "10.0.0.1",
    "192.0.2.7",
    "::1",
    "::ffff:10.1.2.3",
    "2001:db8::5",
    "198.51.100.9",
    "fe80::1%eth0",
    "127.0.0.1",
    "not-an-ip",
    "2001:db8:0:0::5",
)
NAMES = ("X-Forwarded-For", "Forwarded", "x-forwarded-for", "FORWARDED", "X-Real-IP", "Forwarded-For")
NODES = ("unknown", "_hidden", "_", "", "[", "]", "[::1", "::1]", ":", ":80", '"', "\\", "%25")
PARAMS = ("for", "FOR", "by", "proto", "host", "For")


# ------------------------------------------------------------------- the reader and the parser


def parse(data: bytes) -> Outcome:
    """`parse_proxy_header`, which raises only ProxyHeaderError and returns a well-typed header."""
    try:
        found = parse_proxy_header(data)
    except ProxyHeaderError as exc:
        check(isinstance(exc.detail, str) and bool(exc.detail), "ProxyHeaderError without a detail")
        return str(exc)
    if found is None:
        return None
    header, length = found
    check(isinstance(header, ProxyHeader) and type(length) is int, lambda: f"returned {found!r}")
    check(0 < length <= len(data), lambda: f"length {length} of {len(data)} bytes")
    check(header.version in (1, 2), lambda: f"version {header.version}")
    addresses = (header.source, header.destination)
    check(all(a is None or canonical(a) for a in addresses), lambda: f"addresses {addresses!r}")
    check((header.source is None) == (header.destination is None), "one address without the other")
    tlvs = header.tlvs
    ok = all(type(kind) is int and 0 <= kind <= 255 and type(value) is bytes for kind, value in tlvs)
    check(ok, lambda: f"TLVs {tlvs!r}")
    return found


def canonical(address: object) -> bool:
    """(IP as sansio_wss writes it, `_proxy_oracle.ip_text`, port 0..65535)."""
    if not isinstance(address, tuple) or len(address) != 2:
        return False
    host, port = address
    if type(host) is not str or type(port) is not int or not 0 <= port <= 65535 or "%" in host:
        return False
    try:
        return ip_text(ipaddress.ip_address(host)) == host
    except ValueError:
        return False


def agrees(data: bytes, outcome: Outcome, expected: Expected) -> None:
    """The library's outcome is one the specification allows (the oracle's verdict)."""
    kind = expected.kind
    if expected.finding in KNOWN:
        return

    def what() -> str:
        return f"{data[:160]!r}: {outcome!r}, expected {expected}"

    if kind == "invalid":
        check(isinstance(outcome, str), what)
    elif kind == "incomplete":
        check(outcome is None, what)
    elif kind == "pending":
        check(outcome is None or isinstance(outcome, str), what)
    elif kind == "accepted":
        check(isinstance(outcome, tuple) and outcome[1] == expected.length, what)
        assert isinstance(outcome, tuple)
        check(outcome[0].source is None and outcome[0].destination is None, what)
    elif kind == "open":
        if isinstance(outcome, tuple):
            check(outcome[1] == expected.length, what)
        else:
            check(isinstance(outcome, str) or len(data) < expected.length, what)
    elif isinstance(outcome, tuple):
        header, length = outcome
        got = (header.version, header.source, header.destination, header.tlvs)
        check(got == expected.header and length == expected.length, what)
    else:
        check(kind == "lenient" and isinstance(outcome, str), what)


def same(one: Outcome, other: Outcome) -> bool:
    """The same outcome: both waits, both errors (whatever the text), or the same header and length."""
    return (isinstance(one, str) and isinstance(other, str)) or one == other


def reader_check(payload: bytes, cuts: list[int], max_reads: int, late: int, timeout: float) -> Outcome:
    """`payload` in reads of `cuts` through three readers: one with room for every read, one with
    `max_reads`, one that the timer fails before read `late`; each ends as the one-shot parse says."""
    whole = parse(payload)
    agrees(payload, whole, expect(payload))
    chunks = split(payload, cuts) or [b""]
    prefixes = [parse(b"".join(chunks[: i + 1])) for i in range(len(chunks))]
    first = next((i for i, outcome in enumerate(prefixes) if outcome is not None), None)
    if first is not None:  # what a prefix settles, the whole says too: no header grows out of an error
        check(same(prefixes[first], whole), lambda: f"prefix {prefixes[first]!r}, whole {whole!r}")
    roomy = ProxyHeaderReader(100.0, timeout, len(chunks) + 1)
    final(roomy, whole, payload, feed(roomy, chunks, prefixes, len(chunks) + 1, None, timeout))
    fired = roomy.handle_timer(100.0 + timeout)
    check(fired == (whole is None), lambda: f"handle_timer {fired} after {whole!r}")
    stays_failed(roomy)

    tight = ProxyHeaderReader(100.0, timeout, max_reads)
    rest = feed(tight, chunks, prefixes, max_reads, None, timeout)
    if first is not None and first < max_reads:
        final(tight, whole, payload, rest)
    elif len(chunks) >= max_reads:
        check(tight.error is not None and tight.header is None, "read past max_reads")
    stays_failed(tight)

    timed = ProxyHeaderReader(100.0, timeout, len(chunks) + 1)
    rest = feed(timed, chunks, prefixes, len(chunks) + 1, late, timeout)
    if first is not None and first < late:
        final(timed, whole, payload, rest)
    elif late < len(chunks):
        check(timed.error is not None and timed.header is None, "the timer did not fail the reader")
    stays_failed(timed)
    return whole


def feed(
    reader: ProxyHeaderReader,
    chunks: list[bytes],
    prefixes: list[Outcome],
    max_reads: int,
    late: int | None,
    timeout: float,
) -> bytes | None:
    """Feed the reads, the timer going off before read `late`; check each answer against the parse
    of the bytes so far; return the bytes after the header, once there is one."""
    rest: bytes | None = None
    for index, chunk in enumerate(chunks):
        done = reader.header is not None or reader.error is not None
        deadline = reader.get_timer()
        check((deadline is None) == done, "a timer after the header or error, or none before")
        check(deadline is None or deadline == 100.0 + timeout, "the deadline moved")
        if index == late:
            check(not reader.handle_timer(100.0 + timeout / 2), "late before the deadline")
            fired = reader.handle_timer(100.0 + timeout)
            check(fired != done, "handle_timer fired when done, or not when late")
        error, header = reader.error, reader.header
        answer = reader.receive_data(chunk)
        if error is not None:
            check(answer is None and reader.error == error and reader.header is None, "a failure undone")
        elif header is not None:
            check(answer == chunk and reader.header is header, "bytes after the header changed")
            rest = (rest or b"") + chunk
        elif answer is not None:
            found = prefixes[index]
            check(isinstance(found, tuple) and reader.header == found[0], "a header the parse does not give")
            assert isinstance(found, tuple)
            check(answer == b"".join(chunks[: index + 1])[found[1] :], "the bytes after the header")
            rest = answer
        elif reader.error is not None:
            check(isinstance(prefixes[index], str) or index + 1 >= max_reads, "failed on a viable prefix")
        else:
            check(prefixes[index] is None and reader.header is None, "waits on what the parse settles")
    return rest


def final(reader: ProxyHeaderReader, whole: Outcome, payload: bytes, rest: bytes | None) -> None:
    """The reader ends where the one-shot parse of everything is."""
    if isinstance(whole, tuple):
        check(reader.header == whole[0] and reader.error is None, lambda: f"{reader.error!r} vs {whole!r}")
        check(rest is not None and len(rest) + whole[1] == len(payload), "rest + header != all bytes")
        check(rest == payload[whole[1] :], "rest is not what follows the header")
    elif isinstance(whole, str):
        check(reader.error is not None and reader.header is None, lambda: f"not failed: {whole}")
    else:
        check(reader.error is None and reader.header is None, lambda: f"{reader.error!r} on a prefix")


def stays_failed(reader: ProxyHeaderReader) -> None:
    if reader.error is None:
        return
    error = reader.error
    check(reader.receive_data(b"PROXY UNKNOWN\r\n") is None, "a failed reader read a header")
    check(reader.receive_data(SIGNATURE + b"\x20\x00\x00\x00") is None, "a failed reader read a header")
    check(not reader.handle_timer(1e18) and reader.get_timer() is None, "a failed reader has a timer")
    check(reader.error == error and reader.header is None, "a failed reader changed")


def raw(fdp: atheris.FuzzedDataProvider) -> None:
    """Any bytes in any reads."""
    max_reads = fdp.ConsumeIntInRange(1, 8)
    late = fdp.ConsumeIntInRange(0, 9)
    cuts = [fdp.ConsumeIntInRange(1, 128) for _ in range(fdp.ConsumeIntInRange(0, 7))]
    reader_check(fdp.ConsumeBytes(fdp.remaining_bytes()), cuts, max_reads, late, 5.0)


# ------------------------------------------------------------------- valid headers built here


def address(fdp: atheris.FuzzedDataProvider, version: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address: a special one, any, or (IPv6) one with a run of zero groups."""
    bits = 32 if version == 4 else 128
    pick = fdp.ConsumeIntInRange(0, 3)
    if pick == 0:
        value = (0, 1, 2**bits - 1, 0xFFFF0A000001)[fdp.ConsumeIntInRange(0, 3)] % 2**bits
    else:
        value = fdp.ConsumeIntInRange(0, 2**bits - 1)
    if version == 6 and pick == 1:
        start = fdp.ConsumeIntInRange(0, 7)
        run = fdp.ConsumeIntInRange(1, 8 - start)
        value &= ~(((1 << 16 * run) - 1) << 16 * (8 - start - run)) & (2**128 - 1)
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def v6_text(value: ipaddress.IPv4Address | ipaddress.IPv6Address, style: int) -> str:
    """An IPv6 address the ways section 2.1 allows: compressed, exploded, upper case, `::` anywhere
    zeroes are, groups with heading zeroes, a dotted tail (an IPv4 address as ipaddress writes it)."""
    if value.version == 4:
        return str(value)
    groups = [f"{group:x}" for group in struct.unpack("!8H", value.packed)]
    if style == 1:
        return value.exploded
    if style == 2:
        return str(value).upper()
    if style == 3:
        return ":".join(groups)
    if style == 12:  # the last 32 bits dotted, as inet_ntop writes an IPv4-mapped address
        return ":".join(groups[:6]) + ":" + ".".join(str(byte) for byte in value.packed[12:])
    if 4 <= style < 12:  # `::` over the zero run starting at group style - 4, if there is one
        start = style - 4
        end = start
        while end < 8 and groups[end] == "0":
            end += 1
        if end > start:
            return ":".join(groups[:start]) + "::" + ":".join(groups[end:])
    return str(value)


def build_v1(fdp: atheris.FuzzedDataProvider) -> tuple[bytes, Said]:
    family = fdp.ConsumeIntInRange(0, 2)
    if family == 2:
        tail = b""
        if fdp.ConsumeBool():
            text = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 91))
            tail = b" " + bytes(byte for byte in text if 0x20 <= byte < 0x7F)
        return b"PROXY UNKNOWN" + tail + b"\r\n", (1, None, None)
    version = 4 if family == 0 else 6
    src, dst = address(fdp, version), address(fdp, version)
    ports = fdp.ConsumeIntInRange(0, 65535), fdp.ConsumeIntInRange(0, 65535)
    if version == 4:
        texts = str(src), str(dst)
    else:
        texts = v6_text(src, fdp.ConsumeIntInRange(0, 12)), v6_text(dst, fdp.ConsumeIntInRange(0, 12))
    line = f"PROXY TCP{version} {texts[0]} {texts[1]} {ports[0]} {ports[1]}\r\n".encode("ascii")
    if len(line) > 107:  # two long dotted forms: over the limit of section 2.1
        line = f"PROXY TCP6 {src} {dst} {ports[0]} {ports[1]}\r\n".encode("ascii")
    return line, (1, (ip_text(src), ports[0]), (ip_text(dst), ports[1]))


Tlv = tuple[tuple[tuple[int, bytes], ...], int, list[tuple[int, int]]]
"""The TLVs built, where the CRC32C's value is (-1: none), the byte ranges a flip keeps the structure of."""
FAMILIES = (0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32)
TLV_TYPES = (0x01, 0x02, 0x04, 0x05, 0x20, 0x30, 0xE0, 0x00, 0xFF)


def build_v2(fdp: atheris.FuzzedDataProvider) -> tuple[bytes, Said, Tlv]:
    """A v2 header; what it says; (where the CRC32C TLV's value is, or -1, and the ranges of bytes a
    CRC32C covers without changing the header's structure)."""
    command = fdp.ConsumeIntInRange(0, 1)
    family = FAMILIES[fdp.ConsumeIntInRange(0, len(FAMILIES) - 1)]
    source = destination = None
    if family in (0x11, 0x12, 0x21, 0x22):
        version = 4 if family >> 4 == 1 else 6
        src, dst = address(fdp, version), address(fdp, version)
        ports = fdp.ConsumeIntInRange(0, 65535), fdp.ConsumeIntInRange(0, 65535)
        block = src.packed + dst.packed + struct.pack("!HH", *ports)
        if command == 1 and family in (0x11, 0x21):
            source, destination = (ip_text(src), ports[0]), (ip_text(dst), ports[1])
    elif family in (0x31, 0x32):
        block = fdp.ConsumeBytes(108).ljust(108, b"\x00") + fdp.ConsumeBytes(108).ljust(108, b"\x00")
    else:
        block = b""
    stable = [(16, 16 + len(block))]  # bytes whose change keeps the structure
    tlvs: list[tuple[int, bytes]] = []
    crc_at = fdp.ConsumeIntInRange(-1, 4)
    count = fdp.ConsumeIntInRange(0, 4)
    crc_value = -1
    for index in range(count + 1):
        if index == crc_at:
            crc_value = 16 + len(block) + 3
            block += bytes((0x03, 0, 4)) + bytes(4)
            tlvs.append((0x03, b""))
            continue
        if index == count:
            break
        kind = TLV_TYPES[fdp.ConsumeIntInRange(0, len(TLV_TYPES) - 1)]
        room = V2_LIMIT - len(block) - 3 - 7
        value = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, max(0, min(room, 300))))
        if fdp.ConsumeIntInRange(0, 15) == 0 and room > 2000:
            value = value * (2000 // max(1, len(value)))
        stable.append((16 + len(block) + 3, 16 + len(block) + 3 + len(value)))
        block += bytes((kind,)) + struct.pack("!H", len(value)) + value
        tlvs.append((kind, value))
    header = SIGNATURE + bytes((0x20 | command, family)) + struct.pack("!H", len(block)) + block
    if crc_value >= 0:
        checksum = crc32c(header)  # over the header with the checksum zeroed, as 2.2.3 says
        header = header[:crc_value] + struct.pack("!I", checksum) + header[crc_value + 4 :]
        tlvs = [(kind, header[crc_value : crc_value + 4] if kind == 0x03 else value) for kind, value in tlvs]
        stable.append((crc_value, crc_value + 4))
    said = (2, source, destination)
    return header, said, (tuple(tlvs), crc_value, stable)


def valid(fdp: atheris.FuzzedDataProvider) -> None:
    """A valid header parses to exactly what was built, every prefix waits, and one flipped byte
    gives a header, a wait or an error (and an error when the CRC32C covers it)."""
    crc_value, stable = -1, [(0, 0)]
    tlvs: tuple[tuple[int, bytes], ...] = ()
    if fdp.ConsumeBool():
        header, said = build_v1(fdp)
    else:
        header, said, (tlvs, crc_value, stable) = build_v2(fdp)
    trailer = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    data = header + trailer
    found = parse(data)
    want = (*said, tlvs)
    check(isinstance(found, tuple), lambda: f"a valid header refused: {data!r}: {found!r}")
    assert isinstance(found, tuple)
    got = (found[0].version, found[0].source, found[0].destination, found[0].tlvs)
    check(got == want and found[1] == len(header), lambda: f"{data!r}: {got!r} != {want!r}")
    agrees(data, found, expect(data))
    step = 1 if len(header) <= 120 else max(1, len(header) // 40)
    sizes = {*range(0, min(len(header), 20)), *range(0, len(header), step), len(header) - 1}
    refused = [size for size in sorted(sizes) if parse(header[:size]) is not None]
    check(not refused, lambda: f"prefixes of {refused} bytes of {header!r} refused")
    cuts = [fdp.ConsumeIntInRange(1, 64) for _ in range(fdp.ConsumeIntInRange(0, 5))]
    reader_check(data, cuts, fdp.ConsumeIntInRange(1, 8), fdp.ConsumeIntInRange(0, 9), 3.0)
    where = fdp.ConsumeIntInRange(0, len(header) - 1)
    flipped = bytearray(data)
    flipped[where] ^= fdp.ConsumeIntInRange(1, 255)
    outcome = reader_check(bytes(flipped), cuts, 8, 9, 3.0)
    if crc_value >= 0 and any(start <= where < end for start, end in stable):
        check(isinstance(outcome, str), lambda: f"CRC32C missed byte {where}: {bytes(flipped)!r}")


# ------------------------------------------------------------------- forwarding headers


def policy_from(fdp: atheris.FuzzedDataProvider) -> tuple[ProxyPolicy, list[str]]:
    chosen = fdp.ConsumeIntInRange(1, 2 ** len(NETWORKS) - 1)
    networks = [network for bit, network in enumerate(NETWORKS) if chosen >> bit & 1]
    header = (None, "forwarded", "x-forwarded-for")[fdp.ConsumeIntInRange(0, 2)]
    return ProxyPolicy(trusted=networks, forwarded=header), networks


def node(fdp: atheris.FuzzedDataProvider) -> str:
    """One hop: an address in one of the forms the headers use, or something like one."""
    pick = fdp.ConsumeIntInRange(0, 9)
    if pick == 0:
        return NODES[fdp.ConsumeIntInRange(0, len(NODES) - 1)]
    if pick == 1:
        text: str = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 24))
        return text
    if pick == 2:
        return PEERS[fdp.ConsumeIntInRange(0, len(PEERS) - 1)]
    version = 4 if pick < 6 else 6
    host = address(fdp, version)
    text = str(host) if version == 4 else v6_text(host, fdp.ConsumeIntInRange(0, 12))
    port = ("", ":0", ":5060", ":65535", ":65536", ":_p", ":080", ":")[fdp.ConsumeIntInRange(0, 7)]
    if version == 6 and (port or fdp.ConsumeBool()):
        text = f"[{text}]"
    return text + port


def element(fdp: atheris.FuzzedDataProvider) -> str:
    """One `Forwarded` element: `for=` (quoted or not) among other pairs."""
    pairs = []
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        key = PARAMS[fdp.ConsumeIntInRange(0, len(PARAMS) - 1)]
        value = node(fdp)
        quote = fdp.ConsumeIntInRange(0, 3)
        if quote == 1:
            value = f'"{value}"'
        elif quote == 2:
            value = '"' + "".join("\\" + char for char in value) + '"'
        pairs.append(f"{key}={value}")
    return ";".join(pairs)


def field_value(fdp: atheris.FuzzedDataProvider, name: str) -> str:
    if fdp.ConsumeIntInRange(0, 7) == 0:
        text: str = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 120))
        return text
    parts = [
        element(fdp) if name.lower() == "forwarded" else node(fdp) for _ in range(fdp.ConsumeIntInRange(0, 5))
    ]
    return ("," if fdp.ConsumeBool() else ", ").join(parts)


def fields(fdp: atheris.FuzzedDataProvider) -> Headers:
    found = []
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        name = NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]
        found.append((name, field_value(fdp, name)))
    return tuple(found)


def peer_from(fdp: atheris.FuzzedDataProvider) -> Address:
    if fdp.ConsumeIntInRange(0, 3) == 0:
        return node(fdp), fdp.ConsumeIntInRange(0, 65535)
    return PEERS[fdp.ConsumeIntInRange(0, len(PEERS) - 1)], fdp.ConsumeIntInRange(0, 65535)


def client_of(headers: Headers, peer: Address, policy: ProxyPolicy, networks: list[str]) -> None:
    """`forwarded_client`: None or an address named in the header it reads, never the peer, None for
    an untrusted peer; other headers change nothing, nor (X-Forwarded-For) how the list is cut."""
    result = forwarded_client(headers, peer, policy)
    name = policy.forwarded

    def what() -> str:
        return f"{headers!r} from {peer!r} via {networks} ({name}): {result!r}"

    check(result is None or canonical(result), what)
    check(result != peer, what)
    if name is None or not trusted(peer[0], networks):
        check(result is None, what)
    mine = tuple((field, value) for field, value in headers if field.lower() == name)
    if result is not None:
        check(result[0] in ips_in(" ".join(value for _, value in mine)), what)
    check(forwarded_client(mine, peer, policy) == result, lambda: f"other fields matter: {what()}")
    if name == "x-forwarded-for" and mine:
        joined = ((mine[0][0], ",".join(value for _, value in mine)),)
        check(forwarded_client(joined, peer, policy) == result, lambda: f"one field differs: {what()}")


def forwarded(fdp: atheris.FuzzedDataProvider) -> None:
    policy, networks = policy_from(fdp)
    client_of(fields(fdp), peer_from(fdp), policy, networks)


def server(fdp: atheris.FuzzedDataProvider) -> None:
    """An upgrade request with forwarding fields to a server behind trusted proxies."""
    policy, networks = policy_from(fdp)
    peer, local = peer_from(fdp), ("192.0.2.1", 443)
    via = peer_from(fdp) if fdp.ConsumeIntInRange(0, 3) == 0 else None  # as after a PROXY header
    auto = fdp.ConsumeBool()
    cuts = [fdp.ConsumeIntInRange(1, 512) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    lines = b""
    for name, value in fields(fdp):
        lines += f"{name}: {value}\r\n".encode("utf-8", "surrogatepass")
    if fdp.ConsumeIntInRange(0, 7) == 0:
        lines += fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
    at = CHROME_REQUEST.index(b"Sec-WebSocket-Key")
    request = CHROME_REQUEST[:at] + lines + CHROME_REQUEST[at:]
    conn = ServerConnection(1000.0, Config(auto_accept=auto), proxy=policy)
    conn.set_addresses(peer, local, proxy=via)
    watch = Watcher(conn, server=True)
    watch.step()
    named = ips_in(lines.decode("latin-1")) | ips_in(lines.decode("utf-8", "replace"))
    parsed: Headers | None = None
    for chunk in split(request, cuts):
        watch.feed(chunk, 1000.5)
        events, _ = watch.step()
        for event in events:
            if isinstance(event, (HandshakeRequest, Opened)) and parsed is None:
                parsed = event.headers
            if isinstance(event, HandshakeRequest):
                conn.accept(1000.5)
                watch.step()
        addresses(conn, parsed, (peer, local, via), named, (policy, networks))


def addresses(
    conn: ServerConnection,
    parsed: Headers | None,
    given: tuple[Address, Address, Address | None],
    named: set[str],
    policies: tuple[ProxyPolicy, list[str]],
) -> None:
    """The server's remote address is the socket's peer, or the client its trusted proxy named."""
    peer, local, via = given
    policy, networks = policies
    remote = conn.remote_address

    def what() -> str:
        return f"{parsed!r} from {peer} via {via}, {policy}: {remote} {conn.proxy_address}"

    check(conn.local_address == local, what)
    if remote == peer:
        check(conn.proxy_address == via, what)
        return
    check(policy.forwarded is not None and trusted(peer[0], networks), what)
    check(remote is not None and remote[0] in named and canonical(remote), what)
    check(conn.proxy_address == (via or peer), what)
    check(parsed is not None and forwarded_client(parsed, peer, policy) == remote, what)


def run(data: bytes) -> None:
    """The first byte chooses: raw bytes to the reader, a valid header, forwarding fields alone, or a
    server; the rest is the FuzzedDataProvider's."""
    if not data:
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    (raw, valid, forwarded, server)[data[0] & 3](fdp)


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the OSS-Fuzz entry point's name)
    """The atheris entry point."""
    run(data)


if __name__ == "__main__":
    from _engine import fuzz

    fuzz(TestOneInput)
