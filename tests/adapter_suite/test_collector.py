"""`HepCollector` with real collectors on loopback: delivery, collectors down, slow or gone, close()."""

from __future__ import annotations

import collections
import contextlib
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from adapter_helpers import has_ipv6, wait_for

from sansio_wss.adapters import _collector
from sansio_wss.adapters._collector import HepCollector


def packet(tag: str, size: int = 0) -> bytes:
    """A fake HEP3 packet: the collector never parses it, only its length field matters to our server."""
    payload = tag.encode().ljust(size, b".")
    return b"HEP3" + struct.pack("!H", 6 + len(payload)) + payload


def split(stream: bytearray) -> list[bytes]:
    """Takes every whole packet off the front of a HEP-over-TCP stream (delimited by the length field)."""
    packets = []
    while len(stream) >= 6:
        assert stream[:4] == b"HEP3", bytes(stream[:16])
        (length,) = struct.unpack_from("!H", stream, 4)
        if len(stream) < length:
            break
        packets.append(bytes(stream[:length]))
        del stream[:length]
    return packets


class TcpCollector:
    """A HEP collector on loopback: accepts every connection and, while `reading` is set, reads them."""

    def __init__(self, port: int = 0, *, reading: bool = True, host: str = "127.0.0.1") -> None:
        self.listener = socket.create_server((host, port), backlog=16)
        self.port: int = self.listener.getsockname()[1]
        self.packets: list[bytes] = []
        self.accepted = 0
        self.reading = threading.Event()
        if reading:
            self.reading.set()
        self._stop = threading.Event()
        self._connections: dict[socket.socket, bytearray] = {}
        self._thread = threading.Thread(target=self._serve, name="test HEP collector")
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            watching = False
            while not self._stop.is_set():
                if self.reading.is_set() and not watching:
                    for connection in self._connections:
                        selector.register(connection, selectors.EVENT_READ)
                    watching = True
                for key, _ in selector.select(0.01):
                    if key.fileobj is self.listener:
                        connection, _ = self.listener.accept()
                        self.accepted += 1
                        self._connections[connection] = bytearray()
                        if watching:
                            selector.register(connection, selectors.EVENT_READ)
                        continue
                    assert isinstance(key.fileobj, socket.socket)
                    connection = key.fileobj
                    data = connection.recv(1 << 20)
                    if data:
                        stream = self._connections[connection]
                        stream += data
                        self.packets += split(stream)
                    else:  # a partial packet at the end of a connection is the sender's loss
                        selector.unregister(connection)
                        connection.close()
                        del self._connections[connection]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self._connections:
            connection.close()
        self.listener.close()


@contextlib.contextmanager
def tcp_collector(port: int = 0, *, reading: bool = True) -> Iterator[TcpCollector]:
    server = TcpCollector(port, reading=reading)
    try:
        yield server
    finally:
        server.close()


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A loopback port nothing listens on (just released)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def consistent(collector: HepCollector, calls: int) -> bool:
    stats = collector.stats
    return stats.sent + stats.lost + stats.pending == calls


# -- destinations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "destination",
    [
        "",
        "udp",
        "udp:",
        "udp:127.0.0.1",
        "udp:127.0.0.1:",
        "sctp:127.0.0.1:9060",
        "UDP:127.0.0.1:9060",
        "hep:127.0.0.1:9060",
        "udp::9060",
        "udp:127.0.0.1:0",
        "udp:127.0.0.1:65536",
        "udp:127.0.0.1:x",
        "udp:127.0.0.1:+9",
        "udp:127.0.0.1: 9",
        "udp:127.0.0.1:\uff19\uff10\uff16\uff10",  # fullwidth digits
        "udp:::1:9060",
        "tcp:[::1]",
        "tcp:[not-ipv6]:9060",
        "tcp:[127.0.0.1]:9060",
        "tcp:host name:9060",
        "tcp:user@host:9060",
    ],
)
def test_bad_destination(destination: str) -> None:
    with pytest.raises(ValueError, match=r"HEP destination|IPv6|host"):
        HepCollector(destination)


def test_bad_max_pending() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_pending"):
            HepCollector("tcp:127.0.0.1:9060", max_pending=bad)  # type: ignore[arg-type]


def test_destination_and_first_stats() -> None:
    with HepCollector("udp:localhost:9060") as collector:
        assert collector.destination == ("udp", "localhost", 9060)
        assert collector.stats == _collector.CollectorStats(0, 0, 0, True, 0)
    assert not collector.stats.connected
    port = free_port()
    with HepCollector(f"tcp:127.0.0.1:{port}") as collector:
        assert collector.destination == ("tcp", "127.0.0.1", port)
        assert collector.stats.sent == collector.stats.lost == collector.stats.pending == 0


# -- UDP ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_udp_delivers_in_order(host: str) -> None:
    if host == "::1" and not has_ipv6():
        pytest.skip("no IPv6 loopback")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as server:
        server.bind((host, 0))
        server.settimeout(2.0)
        port = server.getsockname()[1]
        name = f"[{host}]" if ":" in host else host
        sent = [packet(f"udp {i}", 100 + i * 10) for i in range(50)]
        with HepCollector(f"udp:{name}:{port}") as collector:
            assert collector.destination == ("udp", host, port)
            for data in sent:
                collector(data)
            assert [server.recv(65_536) for _ in sent] == sent
            assert collector.stats == _collector.CollectorStats(50, 0, 0, True, 0)


def test_udp_to_a_closed_port_counts_losses() -> None:
    collector = HepCollector(f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}")
    calls = 0
    for i in range(20):
        collector(packet(f"lost {i}"))  # never raises: ECONNREFUSED from the last ICMP is a loss
        calls += 1
        time.sleep(0.001)
    stats = collector.stats
    assert stats.lost >= 1 and stats.sent + stats.lost == calls
    collector(None)  # type: ignore[arg-type]
    assert collector.stats.lost == stats.lost + 1
    collector.close()
    collector.close()
    collector(packet("after close"))
    assert collector.stats.lost == stats.lost + 2
    assert not collector.stats.connected


# -- TCP ----------------------------------------------------------------------------------------


def test_tcp_delivers_500_in_order() -> None:
    sent = [packet(f"tcp {i}", i * 7 % 3000) for i in range(500)]
    with tcp_collector() as server, HepCollector(f"tcp:127.0.0.1:{server.port}") as collector:
        for data in sent:
            collector(data)
        assert wait_for(lambda: len(server.packets) == len(sent), 5.0)
        assert server.packets == sent
        assert collector.stats == _collector.CollectorStats(500, 0, 0, True, 0)
        assert server.accepted == 1


def test_tcp_collector_down_then_up() -> None:
    port = free_port()
    with HepCollector(f"tcp:127.0.0.1:{port}", max_pending=100) as collector:
        early = [packet(f"early {i}") for i in range(1000)]
        start = time.perf_counter()
        for data in early:
            collector(data)
        elapsed = time.perf_counter() - start
        assert elapsed < 0.05, f"1,000 calls took {elapsed * 1000:.1f} ms with the collector down"
        stats = collector.stats
        assert (stats.sent, stats.lost, stats.pending, stats.connected) == (0, 900, 100, False)
        time.sleep(0.2)  # a few refused attempts: the backoff grows
        with tcp_collector(port) as server:
            assert wait_for(lambda: collector.stats.connected, 6.0)
            late = [packet(f"late {i}") for i in range(50)]
            for data in late:
                collector(data)
            assert wait_for(lambda: len(server.packets) == 150, 5.0)
            assert server.packets == early[:100] + late
            assert collector.stats == _collector.CollectorStats(150, 900, 0, True, 0)


def test_tcp_slow_collector_never_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_collector, "SEND_TIMEOUT", 0.3)
    big = [packet(f"big {i}", 60_000) for i in range(400)]
    with tcp_collector(reading=False) as server:
        collector = HepCollector(f"tcp:127.0.0.1:{server.port}", max_pending=50)
        calls, slowest = 0, 0.0
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            for data in big:
                start = time.perf_counter()
                collector(data)
                slowest = max(slowest, time.perf_counter() - start)
                calls += 1
            assert consistent(collector, calls)
            stats = collector.stats
            if stats.reconnects >= 1 and stats.lost > calls // 2:
                break
            time.sleep(0.05)
        stats = collector.stats
        assert stats.reconnects >= 1, stats  # the stalled connection was dropped, another opened
        assert stats.lost > 0 and stats.pending <= 50 and stats.sent + stats.lost + stats.pending == calls
        assert slowest < 0.1, f"a call took {slowest * 1000:.1f} ms"
        start = time.perf_counter()
        collector.close(timeout=0.1)
        assert time.perf_counter() - start < 1.0
        stats = collector.stats
        assert stats.pending == 0 and stats.sent + stats.lost == calls and not stats.connected


def test_tcp_close_flushes_and_is_idempotent() -> None:
    sent = [packet(f"flush {i}", 60_000) for i in range(300)]  # more than the kernel buffers hold
    with tcp_collector(reading=False) as server:
        collector = HepCollector(f"tcp:127.0.0.1:{server.port}")
        for data in sent:
            collector(data)
        assert wait_for(lambda: collector.stats.connected and collector.stats.sent > 0)
        assert collector.stats.pending > 0
        server.reading.set()
        collector.close(timeout=5.0)
        assert collector.stats == _collector.CollectorStats(300, 0, 0, False, 0)
        assert wait_for(lambda: len(server.packets) == 300, 5.0)
        assert server.packets == sent
        collector.close()
        collector(packet("after close"))
        assert collector.stats == _collector.CollectorStats(300, 1, 0, False, 0)


def test_tcp_close_drops_what_it_cannot_flush() -> None:
    collector = HepCollector(f"tcp:127.0.0.1:{free_port()}")
    for i in range(10):
        collector(packet(f"nowhere {i}"))
    collector(None)  # type: ignore[arg-type]
    start = time.perf_counter()
    collector.close(timeout=0.2)
    assert time.perf_counter() - start < 1.0
    assert collector.stats == _collector.CollectorStats(0, 11, 0, False, 0)


def test_tcp_collector_gone_then_back() -> None:
    with tcp_collector() as server:
        port = server.port
        collector = HepCollector(f"tcp:127.0.0.1:{port}")
        collector(packet("first"))
        assert wait_for(lambda: server.packets == [packet("first")])
    assert wait_for(lambda: not collector.stats.connected)  # the collector's end is seen while idle
    with tcp_collector(port) as server:
        assert wait_for(lambda: collector.stats.connected, 6.0)
        collector(packet("second"))
        assert wait_for(lambda: server.packets == [packet("second")])
        assert collector.stats == _collector.CollectorStats(2, 0, 0, True, 1)
    collector.close()


def test_tcp_thread_safety() -> None:
    threads, calls = 4, 500
    start = threading.Barrier(threads)
    with (
        tcp_collector() as server,
        HepCollector(f"tcp:127.0.0.1:{server.port}", max_pending=4096) as collector,
    ):

        def caller(t: int) -> None:
            start.wait()
            for i in range(calls):
                collector(packet(f"{t}/{i}", 200))

        workers = [threading.Thread(target=caller, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert wait_for(lambda: len(server.packets) >= threads * calls, 5.0)
        assert collector.stats == _collector.CollectorStats(threads * calls, 0, 0, True, 0)
        tags = [data[6:].rstrip(b".").decode() for data in server.packets]
        expected = [f"{t}/{i}" for t in range(threads) for i in range(calls)]
        assert collections.Counter(tags) == collections.Counter(expected)
        for t in range(threads):  # each thread's packets keep their order
            assert [tag for tag in tags if tag.startswith(f"{t}/")] == [f"{t}/{i}" for i in range(calls)]
