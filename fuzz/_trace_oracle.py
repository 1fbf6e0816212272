"""The traced side of fuzz_connection: a tracer on the connection, an untraced twin driven alike,
and the oracle for the HEP packets (decoded from the spec, not with our encoder)."""

from __future__ import annotations

import ipaddress
import json
import struct

import atheris
from _oracle import Watcher, check

from sansio_wss import (
    ConnectionClosed,
    Event,
    Opened,
    SipMessageReceived,
)
from sansio_wss._connection import Connection
from sansio_wss._frames import MaskSource
from sansio_wss.hep import PayloadFormat
from sansio_wss.trace import ConnectionTrace, TlsDetails, TraceConfig, TracePeer, Tracer

WALL = 1_800_000_000.0
"""The wall-clock time at which a traced connection is created."""
ADDRESSES = {
    4: (("192.0.2.7", 50123), ("198.51.100.1", 443)),
    6: (("2001:db8::7", 50123), ("2001:db8::1", 443)),
}
TRACE_MODES = ("on", "off", "On", "OFFline", "onwards", "of", "", " on", "OFF", "tracing")


class FixedMasks(MaskSource):
    """Masks counted, not random: a traced client and its twin write the same bytes."""

    __slots__ = ("_count",)

    def __init__(self) -> None:
        super().__init__()
        self._count = 0

    def next(self) -> bytes:
        self._count += 1
        return (self._count * 0x9E3779B1 & 0xFFFFFFFF).to_bytes(4, "big")


def hep_chunks(packet: bytes) -> dict[int, bytes]:
    """A HEPv3 packet's chunks by type, read from the spec (rev. 37), not with our encoder."""
    check(packet[:4] == b"HEP3", lambda: f"not HEP3: {packet[:10]!r}")
    check(int.from_bytes(packet[4:6], "big") == len(packet), "HEP3 length is not the packet's")
    chunks: dict[int, bytes] = {}
    offset = 6
    while offset < len(packet):
        check(len(packet) - offset >= 6, "truncated HEP chunk header")
        vendor, kind, length = struct.unpack_from("!HHH", packet, offset)
        check(vendor == 0 and 6 <= length <= len(packet) - offset, f"bad chunk {vendor} {kind} {length}")
        check(kind not in chunks, f"chunk {kind} twice")
        chunks[kind] = packet[offset + 6 : offset + length]
        offset += length
    return chunks


class Tracing:
    """A Tracer on the connection, the packets its sink got, and the packets expected from the events."""

    def __init__(self, mode: int, fdp: atheris.FuzzedDataProvider, server: bool) -> None:
        self.fdp = fdp
        self.server = server
        self.dynamic = bool(mode & 128)  # switched and given TLS details at fuzzer-chosen points
        self.version = 6 if mode & 16 else 4
        self.remote, self.local = ADDRESSES[self.version]
        self.ends = [ipaddress.ip_address(ip).packed for ip, _ in (self.remote, self.local)]
        self.config = TraceConfig(
            payload_format=PayloadFormat.JSON if mode & 4 else PayloadFormat.HOMER5,
            sip_messages=bool(mode & 8),
            capture_id=mode,
        )
        self.verdict = (mode >> 5) & 3  # no filter, admit, keep out, raise
        self.packets: list[bytes] = []
        self.expected: list[tuple[str, bytes]] = []
        self.opened = False
        self.lost = 0
        self.trace: ConnectionTrace | None = None
        on = fdp.ConsumeBool() if self.dynamic else True
        self.tracer = Tracer(
            self.packets.append, self.config, filter=self.filter if self.verdict else None, on=on, seed=mode
        )

    def filter(self, peer: TracePeer) -> bool:
        check(peer.remote == self.remote and peer.local == self.local, "filter: wrong addresses")
        check(peer.outbound == (not self.server), "filter: wrong direction")
        if self.verdict == 3:
            raise RuntimeError("a filter that fails")
        return self.verdict == 1

    def attach(self, conn: Connection, now: float) -> None:
        self.tracer.attach(conn, remote=self.remote, local=self.local, now=now, wall=WALL)
        self.trace = conn.trace

    def switch(self) -> bool:
        """Between operations: switch tracing or report TLS details, or nothing; True: send a
        message too big for a HEP packet, or just small enough."""
        fdp = self.fdp
        action = fdp.ConsumeIntInRange(0, 7)
        if action == 4:
            return True
        if action < 2:
            self.tracer.on = bool(action)
        elif action == 2:
            index = fdp.ConsumeIntInRange(0, len(TRACE_MODES))
            mode = TRACE_MODES[index] if index < len(TRACE_MODES) else fdp.ConsumeUnicode(8)
            before = self.tracer.on
            try:
                self.tracer.set_mode(mode)
            except ValueError:
                check(self.tracer.on is before, "set_mode raised and switched")
                check(not mode.lower().startswith(("on", "off")), lambda: f"set_mode({mode!r}) refused")
            else:
                check(self.tracer.on is mode.lower().startswith("on"), lambda: f"set_mode({mode!r})")
        elif action == 3 and self.trace is not None:
            values = [fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40)) or None for _ in range(7)]
            self.trace.tls(
                TlsDetails(
                    version=values[0],
                    cipher=values[1],
                    client_subject=values[2],
                    client_issuer=values[3],
                    server_subject=values[4],
                    server_issuer=values[5],
                    domain=values[6],
                )
            )
        return False

    def sent(self, message: bytes | str) -> None:
        payload = message.encode() if isinstance(message, str) else message
        if self.tracer.on and self.config.sip_messages and self.trace is not None:
            # HEP3 header, family, IP protocol, 2 ports, 2 times, proto type, capture id, 2 addresses
            size = 6 + 7 + 7 + 8 + 8 + 10 + 10 + 7 + 10 + 2 * (6 + len(self.ends[0]))
            ids = 6 + len(self.trace.correlation_id)
            size += (
                6 + len(payload) + ids + (ids + 10 if self.config.payload_format is PayloadFormat.JSON else 0)
            )
            if size > 65535:
                self.lost += 1
            else:
                self.expected.append(("out", payload))

    def events(self, events: list[Event]) -> None:
        """What the packets of these events are, in order, if tracing is on now."""
        on = self.tracer.on
        for event in events:
            if isinstance(event, Opened):
                self.opened = True
                if on:
                    self.expected.append(("setup", b""))
            elif isinstance(event, SipMessageReceived) and on and self.config.sip_messages:
                self.expected.append(("in", event.message))
            elif isinstance(event, ConnectionClosed):
                if on and not self.opened:
                    self.expected.append(("setup", b""))
                if on:
                    self.expected.append(("closed", b"CLOSED"))

    def verify(self) -> None:
        """Every packet decodes as HEPv3 of this connection; they are the ones the events call for."""
        ids = set()
        got: list[tuple[str, bytes]] = []
        for packet in self.packets:
            chunks = hep_chunks(packet)
            ids.add(chunks.get(17))
            got.append(self._packet(chunks))
        check(
            len(ids) <= 1 and all(i is not None and i.isdigit() for i in ids),
            lambda: f"correlation ids {ids}",
        )
        kinds = [kind for kind, _ in got]
        check(kinds.count("setup") <= 1 and kinds.count("closed") <= 1, lambda: f"packets {kinds}")
        check("closed" not in kinds or kinds[-1] == "closed", lambda: f"a packet after CLOSED: {kinds}")
        stats = self.tracer.stats
        lost = self.lost if self.verdict < 2 else 0
        check(stats.lost == lost and stats.packets == len(self.packets), lambda: f"{stats}, {lost} lost")
        check(stats.connections + stats.filtered <= 1, lambda: f"{stats}")
        expected = self.expected if self.verdict < 2 else []
        check(got == expected, lambda: f"packets {got!r}, expected {expected!r}")

    def _packet(self, chunks: dict[int, bytes]) -> tuple[str, bytes]:
        proto = chunks.get(11)
        check(proto in (b"\x01", b"\x59"), lambda: f"proto type {proto!r}")
        check(chunks.get(1) == (b"\x0a" if self.version == 6 else b"\x02"), "address family")
        check(int.from_bytes(chunks.get(12, b""), "big") == self.config.capture_id, "capture id")
        check(0 <= int.from_bytes(chunks.get(9, b""), "big") - WALL < 1e6, "packet time")
        check(int.from_bytes(chunks.get(10, b""), "big") < 1_000_000, "microseconds")
        source = (chunks.get(5 if self.version == 6 else 3), int.from_bytes(chunks.get(7, b""), "big"))
        ends = [(self.ends[0], self.remote[1]), (self.ends[1], self.local[1])]
        payload = chunks.get(15, b"")
        json_format = self.config.payload_format is PayloadFormat.JSON
        if proto == b"\x01":
            inbound = source == ends[0]
            check(inbound or source == ends[1], "SIP packet from neither end")
            if json_format:
                net = json.loads(chunks.get(101, b"null"))
                check(net == {"net": chunks.get(17, b"").decode()}, lambda: f"chunk 101 {net!r}")
            else:
                check(101 not in chunks, "chunk 101 in a HOMER5 packet")
            return ("in" if inbound else "out", payload)
        check(source == ends[0], "a connection event not from the remote end")
        check(101 not in chunks, "chunk 101 in a connection event")
        if json_format:
            pairs = json.loads(payload, object_pairs_hook=list)
            events = {value for key, value in pairs if key == "Event"}
            check(len(events) == 1, lambda: f"Event keys {events}")
            closed = events == {"CLOSED"}
        else:
            closed = payload.startswith(b"WSS:CLOSED:")
        if not closed:
            event = "ACCEPTED" if self.server else "CONNECTED"
            check(json_format or f":{event}:".encode() in payload, lambda: f"set-up packet {payload[:200]!r}")
            check(not json_format or events == {event}, lambda: f"set-up packet {payload[:200]!r}")
        return ("closed", b"CLOSED") if closed else ("setup", b"")


class TwinWatcher(Watcher):
    """The watcher of a traced connection, which drives an untraced twin alike and compares them."""

    def __init__(self, conn: Connection, server: bool, twin: Connection, tracing: Tracing) -> None:
        super().__init__(conn, server)
        self.twin = twin
        self.tracing = tracing

    def feed(self, data: bytes, now: float) -> None:
        super().feed(data, now)
        self.twin.receive_data(data, now)

    def step(self) -> tuple[list[Event], bytes]:
        new, out = super().step()
        self.tracing.events(new)
        twin, conn = self.twin, self.conn
        check(twin.events() == new, lambda: f"tracing changed the events: {new!r}")
        check(twin.data_to_send() == out, "tracing changed the bytes written")
        same = (twin.state, twin.transport_action, twin.get_timer()) == (
            conn.state,
            conn.transport_action,
            conn.get_timer(),
        )
        check(same, "tracing changed the state, the transport action or the timer")
        return new, out
