"""HEPv3 for the tests: a decoder written from the HEP spec (rev. 37), never the encoder run
backwards, and HEP collectors on loopback (UDP and TCP) to receive packets."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import selectors
import socket
import struct
import threading
import time

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


def ends(packet: bytes) -> tuple[tuple[str, int], tuple[str, int]]:
    """The packet's source and destination (IP, port): chunks 3 or 5, 7; 4 or 6, 8."""
    got = fields(packet)
    source = got.get(3, got.get(5, b""))
    destination = got.get(4, got.get(6, b""))
    return (
        (str(ipaddress.ip_address(source)), number(got[7])),
        (str(ipaddress.ip_address(destination)), number(got[8])),
    )


def parts(packet: bytes) -> dict[str, str]:
    """The last value of each key of a JSON connection event (chunk 15)."""
    return dict(json.loads(fields(packet)[15].decode(), object_pairs_hook=list))


class UdpCollector:
    """A HEP collector on a UDP socket: one datagram, one packet."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3.0)
        self.destination = f"udp:127.0.0.1:{self.sock.getsockname()[1]}"

    def packets(self, count: int) -> list[bytes]:
        return [self.sock.recv(65535) for _ in range(count)]

    def close(self) -> None:
        self.sock.close()


class TcpCollector:
    """A HEP collector on a TCP listener, for any number of senders: packets cut out of each
    stream by their length field, kept in the order they arrive."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.destination = f"tcp:127.0.0.1:{self.listener.getsockname()[1]}"
        self.received: list[bytes] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, name="test TCP collector")
        self._thread.start()

    def _read(self) -> None:
        buffers: dict[socket.socket, bytes] = {}
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            while not self._stop:
                for key, _ in selector.select(0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self.listener:
                        with contextlib.suppress(BlockingIOError):
                            conn, _ = sock.accept()
                            selector.register(conn, selectors.EVENT_READ)
                            buffers[conn] = b""
                        continue
                    chunk = b""
                    with contextlib.suppress(OSError):
                        chunk = sock.recv(65536)
                    if not chunk:
                        selector.unregister(sock)
                        sock.close()
                        del buffers[sock]
                        continue
                    buffers[sock] = self._cut(buffers[sock] + chunk)
        for sock in buffers:
            sock.close()

    def _cut(self, buffer: bytes) -> bytes:
        while len(buffer) >= 6 and len(buffer) >= int.from_bytes(buffer[4:6], "big"):
            size = int.from_bytes(buffer[4:6], "big")
            assert buffer[:4] == b"HEP3" and size >= 6
            self.received.append(buffer[:size])
            buffer = buffer[size:]
        return buffer

    def packets(self, count: int) -> list[bytes]:
        deadline = time.monotonic() + 3.0
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.received) >= count, self.received
        return self.received[:count]

    def close(self) -> None:
        self._stop = True
        self._thread.join(10.0)
        self.listener.close()
