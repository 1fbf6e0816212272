"""`HepCollector`: ships HEPv3 packets to a HEP collector (HOMER, sipcapture) over UDP or TCP."""

from __future__ import annotations

import collections
import contextlib
import errno
import ipaddress
import logging
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

__all__ = ["CollectorStats", "HepCollector", "check_destination"]

_log = logging.getLogger("sansio_wss.adapters.collector")

CONNECT_TIMEOUT = 1.0
"""Seconds a TCP connection attempt may take."""
SEND_TIMEOUT = 2.0
"""Seconds a TCP connection may refuse every byte before it is dropped with the packet in flight."""
BACKOFF_MIN = 0.1
"""Seconds before the first reconnection attempt; doubles after each failure."""
BACKOFF_MAX = 5.0
"""The longest wait between two connection attempts."""
_CHUNK = 65_536  # bytes the TCP thread gathers from the queue for one send()


@dataclass(frozen=True, slots=True)
class CollectorStats:
    """A collector's counters, taken together at one moment."""

    sent: int
    """Packets fully written to the socket (for TCP, into the kernel's buffer: a connection that
    breaks later may still lose them, unseen)."""
    lost: int
    """Packets dropped: queue full, collector down or unreachable, send error, left over at close."""
    pending: int
    """Packets queued, not yet fully written (TCP; always 0 for UDP)."""
    connected: bool
    """TCP: a connection is up now. UDP: True from construction until `close()`."""
    reconnects: int
    """TCP connections opened after the first (always 0 for UDP)."""


def check_destination(destination: str) -> tuple[str, str, int]:
    """("udp" or "tcp", host, port) of a `HepCollector` destination, its name resolved; ValueError
    for anything `HepCollector` would refuse (for checking a command line before starting)."""
    transport, host, port, _, _ = _parse(destination)
    return transport, host, port


def _parse(destination: str) -> tuple[str, str, int, socket.AddressFamily, tuple[object, ...]]:
    """`"udp:HOST:PORT"` or `"tcp:HOST:PORT"` -> (transport, host, port, family, socket address)."""
    if not isinstance(destination, str):
        raise ValueError(f"HEP destination must be a string, not {type(destination).__name__}")
    transport, _, rest = destination.partition(":")
    host, _, port_text = rest.rpartition(":")
    if transport not in ("udp", "tcp") or not host:
        raise ValueError(f"HEP destination must be 'udp:HOST:PORT' or 'tcp:HOST:PORT', not {destination!r}")
    if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65_536):
        raise ValueError(f"HEP destination port must be 1-65535, not {port_text!r} in {destination!r}")
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"not an IPv6 address in brackets: {destination!r}") from None
    elif ":" in host:
        raise ValueError(f"an IPv6 HEP destination needs brackets, '[{host}]', in {destination!r}")
    elif not host.isascii() or any(c.isspace() or c in "[]/@" for c in host):
        raise ValueError(f"not a host name or address: {host!r} in {destination!r}")
    socktype = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    try:
        infos = socket.getaddrinfo(host, port, type=socktype)
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"cannot resolve the HEP destination {destination!r}: {exc}") from exc
    family, _, _, _, address = infos[0]
    return transport, host, port, family, tuple(address)


class HepCollector:
    """Ships HEPv3 packets, already encoded, to one HEP collector: the sink for a core `Tracer`.

    `destination` is `"udp:HOST:PORT"` or `"tcp:HOST:PORT"`: HOST an IPv4 address, an IPv6 address
    in brackets, or a name resolved once, here; anything else (a name that does not resolve too)
    raises `ValueError`. Calling the collector with a packet never blocks and never raises, from
    any thread: a collector that is down, unreachable or slow never slows SIP traffic down, and
    every packet that cannot be delivered is counted in `stats.lost`.

    UDP sends each packet at once on one non-blocking socket, connected so that an ICMP port
    unreachable surfaces (as a lost packet) on a later send. TCP queues up to `max_pending`
    packets for a daemon thread that owns the connection: it connects (1 s timeout), writes,
    drops a connection that takes no byte for 2 s together with the packet in flight, and
    reconnects after 0.1 s, doubling to 5 s while the collector stays away. A packet cut short
    by a broken connection is lost; the next connection starts at a packet boundary, as HEP
    over TCP is delimited only by each packet's length field.
    """

    __slots__ = (
        "__weakref__",
        "_address",
        "_closed",
        "_connected",
        "_deadline",
        "_destination",
        "_family",
        "_idle",
        "_in_flight",
        "_lock",
        "_lost",
        "_max_pending",
        "_queue",
        "_reconnects",
        "_sent",
        "_stopped",
        "_thread",
        "_udp",
        "_udp_sendto",
        "_wake_r",
        "_wake_w",
    )

    def __init__(self, destination: str, *, max_pending: int = 1024) -> None:
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be a positive int, not {max_pending!r}")
        transport, host, port, family, address = _parse(destination)
        self._destination = (transport, host, port)
        self._family = family
        self._address = address
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._sent = 0
        self._lost = 0
        self._in_flight = 0  # packets the TCP thread took from the queue, not yet sent nor lost
        self._reconnects = 0
        self._connected = False
        self._closed = False  # packets are no longer taken: close() was called, or the TCP thread ended
        self._stopped = False  # close() was called
        self._deadline: float | None = None  # when close() gives up flushing (monotonic)
        self._idle = False  # the TCP thread sleeps with nothing to write: __call__ must wake it
        self._queue: collections.deque[bytes] = collections.deque()
        self._udp: socket.socket | None = None
        self._udp_sendto = False  # the UDP socket could not be connected: address each packet
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        if transport == "udp":
            self._udp = socket.socket(family, socket.SOCK_DGRAM)
            self._udp.setblocking(False)
            try:
                self._udp.connect(address)
            except OSError as exc:  # no route now: sendto() each packet, in case one appears
                _log.warning("HEP collector %s:%s not reachable now: %s", host, port, exc)
                self._udp_sendto = True
            self._connected = True
        else:
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._thread = threading.Thread(
                target=self._run, name=f"HEP collector tcp:{host}:{port}", daemon=True
            )
            self._thread.start()

    @property
    def destination(self) -> tuple[str, str, int]:
        """("udp" or "tcp", host as written without brackets, port)."""
        return self._destination

    @property
    def stats(self) -> CollectorStats:
        """The counters, consistent with one another: every call is in exactly one of sent, lost, pending."""
        with self._lock:
            return CollectorStats(
                sent=self._sent,
                lost=self._lost,
                pending=len(self._queue) + self._in_flight,
                connected=self._connected,
                reconnects=self._reconnects,
            )

    def __repr__(self) -> str:
        transport, host, port = self._destination
        return f"<HepCollector {transport}:{host}:{port} {self.stats}>"

    def __call__(self, packet: bytes) -> None:
        """Hand one packet over: sent now (UDP) or queued (TCP), or counted lost. Never blocks or raises."""
        with self._lock:
            if self._closed:
                self._lost += 1
            elif self._udp is not None:
                try:
                    if self._udp_sendto:
                        self._udp.sendto(packet, self._address)
                    else:
                        self._udp.send(packet)
                except Exception:  # BlockingIOError, ECONNREFUSED after an ICMP, EMSGSIZE, not bytes
                    self._lost += 1
                else:
                    self._sent += 1
            elif len(self._queue) + self._in_flight >= self._max_pending or not isinstance(
                packet, (bytes, bytearray, memoryview)
            ):
                self._lost += 1
            else:
                self._queue.append(packet if type(packet) is bytes else bytes(packet))
                if self._idle:
                    self._idle = False
                    self._wake()

    def close(self, timeout: float = 1.0) -> None:
        """Stop: TCP tries for up to `timeout` seconds to write what is queued, then drops the rest
        (counted lost) and ends its thread. Leaves no thread or socket behind; a second call does nothing."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = self._closed = True
            self._connected = False
            if self._udp is not None:
                self._udp.close()
                return
            self._deadline = time.monotonic() + max(0.0, timeout)
            self._wake()
        assert self._thread is not None
        if self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            for wake in (self._wake_r, self._wake_w):
                if wake is not None:
                    wake.close()

    def __enter__(self) -> HepCollector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _wake(self) -> None:
        # under the lock; a full socketpair already holds a wake-up
        assert self._wake_w is not None
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # -- the TCP thread ----------------------------------------------------------------------
    #
    # The thread alone touches the TCP socket and the selector; it waits in one select() on the
    # connection and on the wake-up socketpair, with a timeout taken from whichever comes first:
    # the connect or send timeout, the next reconnection, the close deadline. Packets move from
    # the shared queue into a local bytearray (`out`) in chunks, `sizes` keeping their lengths so
    # that a partial send() can be turned into whole packets sent and a partial one in flight.
    # Every packet is counted exactly once: queued and in flight make `pending`, then each ends
    # in `sent` or `lost`. Nothing in here may block on anything but that select().

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        assert self._wake_r is not None
        selector.register(self._wake_r, selectors.EVENT_READ)
        sock: socket.socket | None = None
        connecting = False
        opened = 0  # connections opened so far
        backoff = BACKOFF_MIN
        retry_at = 0.0
        timer = 0.0  # the connect or send deadline
        out = bytearray()
        sizes: collections.deque[int] = collections.deque()
        head_done = 0  # bytes of the first packet in `out` already written

        def drop(now: float, *, head_lost: bool) -> None:
            nonlocal sock, connecting, retry_at, backoff, head_done
            if sock is not None:
                selector.unregister(sock)
                sock.close()
            sock, connecting = None, False
            retry_at, backoff = now + backoff, min(backoff * 2, BACKOFF_MAX)
            lost = 1 if sizes and (head_lost or head_done) else 0
            if lost:
                del out[: sizes.popleft() - head_done]
            head_done = 0
            with self._lock:
                self._connected = False
                self._lost += lost
                self._in_flight -= lost

        try:
            while True:
                now = time.monotonic()
                with self._lock:
                    deadline = self._deadline
                    if deadline is not None and (now >= deadline or not (self._queue or sizes)):
                        break
                    if sock is not None and not connecting and len(out) < _CHUNK:
                        if not sizes and self._queue:
                            timer = now + SEND_TIMEOUT  # the send timeout runs from the first packet on
                        while self._queue and len(out) < _CHUNK:
                            packet = self._queue.popleft()
                            out += packet
                            sizes.append(len(packet))
                            self._in_flight += 1
                    self._idle = not self._queue and not sizes
                if sock is None and deadline is not None and retry_at >= deadline:
                    break  # closing with the collector away until after the deadline: nothing to flush
                if sock is None and now >= retry_at:
                    sock = socket.socket(self._family, socket.SOCK_STREAM)
                    sock.setblocking(False)
                    code = sock.connect_ex(self._address)
                    if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                        sock.close()
                        sock = None
                        drop(now, head_lost=False)
                        continue
                    connecting, timer = True, now + CONNECT_TIMEOUT
                    selector.register(sock, selectors.EVENT_WRITE)
                elif sock is not None and not connecting:
                    events = selectors.EVENT_READ | (selectors.EVENT_WRITE if sizes else 0)
                    if selector.get_key(sock).events != events:
                        selector.modify(sock, events)
                if sock is None:
                    wait_until: float | None = retry_at
                elif connecting or sizes:
                    wait_until = timer
                else:
                    wait_until = None
                if deadline is not None:
                    wait_until = deadline if wait_until is None else min(wait_until, deadline)
                ready = selector.select(None if wait_until is None else max(0.0, wait_until - now))
                now = time.monotonic()
                readable = writable = False
                for key, mask in ready:
                    if key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    else:
                        readable |= bool(mask & selectors.EVENT_READ)
                        writable |= bool(mask & selectors.EVENT_WRITE)
                if sock is None:
                    continue
                if connecting:
                    if writable:
                        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if code:
                            drop(now, head_lost=False)
                            continue
                        connecting, timer, opened = False, now + SEND_TIMEOUT, opened + 1
                        selector.modify(sock, selectors.EVENT_READ)
                        with self._lock:
                            self._connected = True
                            self._reconnects = max(0, opened - 1)
                    elif now >= timer:
                        drop(now, head_lost=False)
                    continue
                if readable:  # a collector says nothing: this is its end, or noise to discard
                    try:
                        gone = not sock.recv(4096)
                    except BlockingIOError:
                        gone = False
                    except OSError:
                        gone = True
                    if gone:
                        drop(now, head_lost=False)
                        continue
                if writable and sizes:
                    try:
                        count = sock.send(out)
                    except (BlockingIOError, InterruptedError):
                        count = 0
                    except OSError:
                        drop(now, head_lost=False)
                        continue
                    if count:
                        del out[:count]
                        head_done += count
                        done = 0
                        while sizes and head_done >= sizes[0]:
                            head_done -= sizes.popleft()
                            done += 1
                        timer, backoff = now + SEND_TIMEOUT, BACKOFF_MIN
                        if done:
                            with self._lock:
                                self._sent += done
                                self._in_flight -= done
                elif sizes and now >= timer:
                    drop(now, head_lost=True)  # the collector stopped reading
        except Exception:  # a bug here must not take the SIP side down: count and stop
            _log.exception("HEP collector thread failed")
        finally:
            if sock is not None:
                sock.close()
            selector.close()
            with self._lock:
                self._closed = self._idle = True
                self._connected = False
                self._lost += len(self._queue) + self._in_flight
                self._in_flight = 0
                self._queue.clear()
