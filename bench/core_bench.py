"""Core benchmark: sansio_wss's sans-IO server against websockets' and wsproto's cores, in thread CPU time."""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import hashlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import version as pkg_version
from typing import Any, NoReturn, Protocol, TypeVar, cast

import sip_payloads as sp
import websockets.frames
from websockets.frames import Opcode
from websockets.http11 import Request as WsRequest
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol
from websockets.typing import Origin, Subprotocol
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, RejectConnection, Request, TextMessage

import sansio_wss
import sansio_wss._reader
from sansio_wss import Config, InvalidSipMessage, Opened, ServerConnection, SipMessageReceived, State

# ---------------------------------------------------------------------------- setup

Timing = tuple[float, float]
"""(wall seconds, thread CPU seconds) of one timed run; the tables use the CPU time."""
RecvResult = tuple[Timing, int, int]
"""(timing, messages delivered, payload bytes or characters delivered)."""
RecvFn = Callable[[Sequence[bytes]], RecvResult]
SendFn = Callable[[str, bytes, int], Timing]
HandshakeFn = Callable[[Sequence[bytes]], tuple[Timing, list[bytes]]]
C = TypeVar("C")

CONTENDERS = ("ours", "ours-pure", "websockets+decode", "wsproto")
HS_CONTENDERS = ("ours", "websockets", "wsproto")
SECTIONS = ("receive", "send", "handshake", "memory")
NOW = 0.0
ORIGIN = sp.ORIGIN
ORIGIN_B = ORIGIN.encode()
REQUEST = sp.chrome_upgrade_request()
BAD_ORIGIN_REQUEST = REQUEST.replace(b"Origin: " + ORIGIN_B, b"Origin: https://evil.example.net")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# One Config (and one origins/subprotocols list for websockets) shared by every
# connection, as a server shares them; the memory figures therefore exclude them.
CONFIG = Config(allowed_origins=frozenset({ORIGIN}))
WS_ORIGINS = [Origin(ORIGIN)]
WS_SUBPROTOCOLS = [Subprotocol("sip")]

# Targets from the performance issue.
TARGET_RECV_REGISTER = 1.25
TARGET_RECV_INVITE = 1.0
TARGET_SEND = 1.2
TARGET_HANDSHAKE = 0.5
TARGET_IDLE_BYTES = 4000


class VerificationError(RuntimeError):
    """A contender produced the wrong output: the benchmark refuses to time it."""


def fail(what: str) -> NoReturn:
    """Stop the benchmark: a contender's output is wrong."""
    raise VerificationError(what)


def check(condition: bool, what: str) -> None:
    """Fail loudly when `condition` is false (`what` is built eagerly: keep it cheap)."""
    if not condition:
        fail(what)


class _TextFrame(Protocol):
    """What the timed websockets loop reads of each event (all events are text Frames with bytes
    data after the handshake; `verify_receive` checks exactly that before anything is timed)."""

    opcode: Opcode
    data: bytes


def _start() -> Timing:
    return time.perf_counter(), time.thread_time()


def _stop(t0: Timing) -> Timing:
    return time.perf_counter() - t0[0], time.thread_time() - t0[1]


# ------------------------------------------------------------------ open connections


def ours_open() -> ServerConnection:
    """Our server connection after the Chrome upgrade, events and bytes drained."""
    conn = ServerConnection(now=NOW, config=CONFIG)
    conn.receive_data(REQUEST, NOW)
    events = conn.events()
    out = conn.data_to_send()
    check(conn.state is State.OPEN, f"ours: state {conn.state} after the upgrade")
    if len(events) != 1 or not isinstance(events[0], Opened):
        fail(f"ours: handshake events {[type(e).__name__ for e in events]}")
    check(out.startswith(b"HTTP/1.1 101 "), f"ours: handshake reply {out[:40]!r}")
    return conn


def ws_open() -> ServerProtocol:
    """websockets' sans-IO server after the upgrade (deflate not offered by us), output drained."""
    proto = ServerProtocol(origins=WS_ORIGINS, subprotocols=WS_SUBPROTOCOLS)
    proto.receive_data(REQUEST)
    (request,) = proto.events_received()
    if not isinstance(request, WsRequest):
        fail(f"websockets: handshake event {type(request).__name__}")
    proto.send_response(proto.accept(request))
    out = proto.data_to_send()
    check(proto.state is WsState.OPEN, f"websockets: state {proto.state}")
    check(out[0].startswith(b"HTTP/1.1 101 "), f"websockets: handshake reply {out[:1]!r}")
    return proto


def wsproto_open() -> WSConnection:
    """wsproto's server connection after the upgrade, accepted with `sip` and no extension."""
    conn = WSConnection(ConnectionType.SERVER)
    conn.receive_data(REQUEST)
    out = b""
    for event in conn.events():
        if not isinstance(event, Request):
            fail(f"wsproto: handshake event {type(event).__name__}")
        out = conn.send(AcceptConnection(subprotocol="sip"))
    check(conn.state is ConnectionState.OPEN, f"wsproto: state {conn.state}")
    check(out.startswith(b"HTTP/1.1 101 "), f"wsproto: handshake reply {out[:40]!r}")
    return conn


# -------------------------------------------------------------------------- receive


def recv_ours(chunks: Sequence[bytes]) -> RecvResult:
    """Feed each read, then drain events and bytes to send, as an adapter does after every read."""
    conn = ours_open()
    receive_data = conn.receive_data
    events = conn.events
    data_to_send = conn.data_to_send
    delivered = (SipMessageReceived, InvalidSipMessage)
    now = NOW
    n = total = 0
    t0 = _start()
    for chunk in chunks:
        receive_data(chunk, now)
        for event in events():
            if isinstance(event, delivered):
                n += 1
                total += len(event.message)
        data_to_send()
    return _stop(t0), n, total


def recv_websockets(chunks: Sequence[bytes]) -> RecvResult:
    """websockets' core plus `frame.data.decode()`: the UTF-8 check its I/O layers add for text."""
    proto = ws_open()
    receive_data = proto.receive_data
    events_received = cast("Callable[[], list[_TextFrame]]", proto.events_received)
    data_to_send = proto.data_to_send
    text = Opcode.TEXT
    n = total = 0
    t0 = _start()
    for chunk in chunks:
        receive_data(chunk)
        for frame in events_received():
            if frame.opcode is text:
                message = frame.data.decode()
                n += 1
                total += len(message)
        data_to_send()
    return _stop(t0), n, total


def recv_wsproto(chunks: Sequence[bytes]) -> RecvResult:
    """wsproto, joining the partial TextMessages of a frame that straddles reads into whole messages."""
    conn = wsproto_open()
    receive_data = conn.receive_data
    events = cast("Callable[[], Iterable[TextMessage]]", conn.events)
    parts: list[str] = []
    n = total = 0
    t0 = _start()
    for chunk in chunks:
        receive_data(chunk)
        for event in events():
            if event.message_finished:
                if parts:
                    parts.append(event.data)
                    message = "".join(parts)
                    parts = []
                else:
                    message = event.data
                n += 1
                total += len(message)
            else:
                parts.append(event.data)
    return _stop(t0), n, total


def recv_ours_pure(chunks: Sequence[bytes]) -> RecvResult:
    """Ours on the pure-Python unmasking path, as without the optional C helper."""
    saved = sansio_wss._reader.c_unmask
    sansio_wss._reader.c_unmask = None
    try:
        return recv_ours(chunks)
    finally:
        sansio_wss._reader.c_unmask = saved


RECV: dict[str, RecvFn] = {
    "ours": recv_ours,
    "ours-pure": recv_ours_pure,
    "websockets+decode": recv_websockets,
    "wsproto": recv_wsproto,
}


def verify_receive(label: str, chunks: Sequence[bytes], payload: str, count: int) -> dict[str, int]:
    """Check, untimed and with full type checks, that every contender delivers exactly `count`
    copies of `payload` and nothing else; returns our event counts by type."""
    payload_b = payload.encode()
    conn = ours_open()
    kinds: dict[str, int] = {}
    for chunk in chunks:
        conn.receive_data(chunk, NOW)
        for event in conn.events():
            kinds[type(event).__name__] = kinds.get(type(event).__name__, 0) + 1
            if not isinstance(event, (SipMessageReceived, InvalidSipMessage)):
                fail(f"ours {label}: unexpected {type(event).__name__}")
            if event.message != payload_b or event.binary:
                fail(f"ours {label}: wrong message")
        check(conn.data_to_send() == b"", f"ours {label}: unexpected output")
    check(conn.state is State.OPEN, f"ours {label}: state {conn.state}")
    check(sum(kinds.values()) == count, f"ours {label}: {kinds} for {count} frames")

    proto = ws_open()
    n = 0
    for chunk in chunks:
        proto.receive_data(chunk)
        for frame in proto.events_received():
            if not isinstance(frame, websockets.frames.Frame):
                fail(f"websockets {label}: unexpected {type(frame).__name__}")
            if frame.opcode is not Opcode.TEXT or not frame.fin or type(frame.data) is not bytes:
                fail(f"websockets {label}: {frame.opcode} fin={frame.fin} data {type(frame.data).__name__}")
            if bytes(frame.data).decode() != payload:
                fail(f"websockets {label}: wrong message")
            n += 1
        check(proto.data_to_send() == [], f"websockets {label}: unexpected output")
    check(proto.state is WsState.OPEN and n == count, f"websockets {label}: {n} of {count}")

    wsconn = wsproto_open()
    n = 0
    parts: list[str] = []
    for chunk in chunks:
        wsconn.receive_data(chunk)
        for wsevent in wsconn.events():
            if not isinstance(wsevent, TextMessage):
                fail(f"wsproto {label}: unexpected {type(wsevent).__name__}")
            parts.append(wsevent.data)
            if wsevent.message_finished:
                if "".join(parts) != payload:
                    fail(f"wsproto {label}: wrong message")
                parts = []
                n += 1
    check(wsconn.state is ConnectionState.OPEN and n == count, f"wsproto {label}: {n} of {count}")

    # The timed functions count the same messages and bytes (and are checked again after every run).
    for name, fn in RECV.items():
        _, got_n, got_total = fn(chunks)
        check(
            (got_n, got_total) == (count, count * len(payload)),
            f"{name} {label}: {got_n} messages, {got_total} bytes",
        )
    return kinds


# ----------------------------------------------------------------------------- send


def send_ours(_text: str, payload: bytes, n: int) -> Timing:
    conn = ours_open()
    send = conn.send
    data_to_send = conn.data_to_send
    now = NOW
    t0 = _start()
    for _ in range(n):
        send(payload, now)
        data_to_send()
    return _stop(t0)


def send_websockets(_text: str, payload: bytes, n: int) -> Timing:
    proto = ws_open()
    send_text = proto.send_text
    data_to_send = proto.data_to_send
    t0 = _start()
    for _ in range(n):
        send_text(payload)
        data_to_send()
    return _stop(t0)


def send_wsproto(text: str, _payload: bytes, n: int) -> Timing:
    conn = wsproto_open()
    send = conn.send
    t0 = _start()
    for _ in range(n):
        send(TextMessage(data=text))
    return _stop(t0)


SEND: dict[str, SendFn] = {"ours": send_ours, "websockets": send_websockets, "wsproto": send_wsproto}


def verify_send(label: str, text: str, payload: bytes) -> None:
    """Each contender's output for two sends is exactly two unmasked text frames of the payload."""
    want = sp.server_frame(payload) * 2
    conn = ours_open()
    conn.send(payload, NOW)
    conn.send(payload, NOW)
    check(conn.data_to_send() == want, f"ours send {label}: wrong frames")
    proto = ws_open()
    proto.send_text(payload)
    proto.send_text(payload)
    check(b"".join(proto.data_to_send()) == want, f"websockets send {label}: wrong frames")
    wsconn = wsproto_open()
    out = wsconn.send(TextMessage(data=text)) + wsconn.send(TextMessage(data=text))
    check(out == want, f"wsproto send {label}: wrong frames")


# ------------------------------------------------------------------------ handshake


def hs_ours(requests: Sequence[bytes]) -> tuple[Timing, list[bytes]]:
    config = CONFIG
    now = NOW
    outs: list[bytes] = []
    append = outs.append
    t0 = _start()
    for request in requests:
        conn = ServerConnection(now, config)
        conn.receive_data(request, now)
        conn.events()
        append(conn.data_to_send())
    return _stop(t0), outs


def hs_websockets(requests: Sequence[bytes]) -> tuple[Timing, list[bytes]]:
    origins = WS_ORIGINS
    subprotocols = WS_SUBPROTOCOLS
    outs: list[bytes] = []
    append = outs.append
    t0 = _start()
    for request in requests:
        proto = ServerProtocol(origins=origins, subprotocols=subprotocols)
        proto.receive_data(request)
        event = proto.events_received()[0]
        proto.send_response(proto.accept(cast(WsRequest, event)))
        append(b"".join(proto.data_to_send()))
    return _stop(t0), outs


def hs_wsproto(requests: Sequence[bytes]) -> tuple[Timing, list[bytes]]:
    """wsproto has no Origin check: the application does it, then accepts with `sip`."""
    origin = ORIGIN_B
    outs: list[bytes] = []
    append = outs.append
    t0 = _start()
    for request in requests:
        conn = WSConnection(ConnectionType.SERVER)
        conn.receive_data(request)
        for event in conn.events():
            if isinstance(event, Request):
                allowed = False
                for name, value in event.extra_headers:
                    if name == b"origin":
                        allowed = value == origin
                if allowed:
                    subprotocol = "sip" if "sip" in event.subprotocols else None
                    append(conn.send(AcceptConnection(subprotocol=subprotocol)))
                else:
                    append(conn.send(RejectConnection(status_code=403)))
    return _stop(t0), outs


HANDSHAKE: dict[str, HandshakeFn] = {"ours": hs_ours, "websockets": hs_websockets, "wsproto": hs_wsproto}


def make_requests(count: int) -> list[bytes]:
    """`count` Chrome upgrade requests, each with its own Sec-WebSocket-Key."""
    return [sp.chrome_upgrade_request(key=base64.b64encode(i.to_bytes(16, "big"))) for i in range(count)]


def check_101s(name: str, outs: list[bytes], count: int) -> None:
    check(len(outs) == count, f"{name} handshake: {len(outs)} replies for {count} requests")
    for out in outs:
        if not out.startswith(b"HTTP/1.1 101 "):
            fail(f"{name} handshake: {out[:40]!r}")


def verify_handshake(requests: Sequence[bytes]) -> None:
    """Every contender answers every request with a 101 carrying the right accept token,
    `sip`, and no extension; and answers a foreign Origin with a 403."""
    for name, fn in HANDSHAKE.items():
        _, outs = fn(requests)
        check_101s(name, outs, len(requests))
        for request, out in zip(requests, outs, strict=True):
            key = request.split(b"Sec-WebSocket-Key: ", 1)[1].split(b"\r\n", 1)[0]
            token = base64.b64encode(hashlib.sha1(key + GUID).digest())
            head = out.lower()
            check(b"sec-websocket-accept: " + token.lower() in head, f"{name} handshake: accept token")
            check(b"sec-websocket-protocol: sip\r\n" in head, f"{name} handshake: no sip subprotocol")
            check(b"sec-websocket-extensions" not in head, f"{name} handshake: extension negotiated")
        _, outs = fn([BAD_ORIGIN_REQUEST])
        check(len(outs) == 1 and outs[0].startswith(b"HTTP/1.1 403 "), f"{name}: foreign Origin got {outs!r}")


# --------------------------------------------------------------------------- memory


def traffic_ours(conn: ServerConnection, frame: bytes) -> None:
    conn.receive_data(frame, NOW)
    events = conn.events()
    event = events[0] if len(events) == 1 else None
    if not isinstance(event, SipMessageReceived):
        fail(f"ours memory: events {[type(e).__name__ for e in events]}")
    conn.send(event.message, NOW)
    conn.data_to_send()


def traffic_websockets(proto: ServerProtocol, frame: bytes) -> None:
    proto.receive_data(frame)
    events = proto.events_received()
    event = events[0] if len(events) == 1 else None
    if not isinstance(event, websockets.frames.Frame):
        fail(f"websockets memory: events {[type(e).__name__ for e in events]}")
    proto.send_text(event.data)
    proto.data_to_send()


def traffic_wsproto(conn: WSConnection, frame: bytes) -> None:
    conn.receive_data(frame)
    events = list(conn.events())
    event = events[0] if len(events) == 1 else None
    if not isinstance(event, TextMessage) or not event.message_finished:
        fail(f"wsproto memory: events {[type(e).__name__ for e in events]}")
    conn.send(TextMessage(data=event.data))


def mem_per_conn(
    opener: Callable[[], C], traffic: Callable[[C, bytes], None] | None, frame: bytes, n: int
) -> float:
    """Python heap retained per open connection (tracemalloc delta over `n` live connections)."""
    warm = opener()  # first-use caches (regexes, loggers) are not per-connection costs
    if traffic is not None:
        traffic(warm, frame)
    del warm
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        conns: list[C] = []
        for _ in range(n):
            conn = opener()
            if traffic is not None:
                traffic(conn, frame)
            conns.append(conn)
        del conn
        gc.collect()
        current = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per = (current - base - sys.getsizeof(conns)) / n
    del conns
    gc.collect()
    return per


def measure_memory(frame: bytes, n: int, passes: int) -> dict[str, dict[str, list[float]]]:
    def ours(traffic: bool) -> float:
        return mem_per_conn(ours_open, traffic_ours if traffic else None, frame, n)

    def ws(traffic: bool) -> float:
        return mem_per_conn(ws_open, traffic_websockets if traffic else None, frame, n)

    def wsp(traffic: bool) -> float:
        return mem_per_conn(wsproto_open, traffic_wsproto if traffic else None, frame, n)

    cases: list[tuple[str, Callable[[bool], float]]] = [("ours", ours), ("websockets", ws), ("wsproto", wsp)]
    out: dict[str, dict[str, list[float]]] = {name: {"idle": [], "after_rx_tx": []} for name, _ in cases}
    for p in range(passes):
        for name, fn in cases[::-1] if p % 2 else cases:
            out[name]["idle"].append(fn(False))
            out[name]["after_rx_tx"].append(fn(True))
    return out


# -------------------------------------------------------------------------- profile


def profile_ours(chunks: Sequence[bytes], top: int) -> dict[str, Any]:
    """cProfile of our receive path; own time per function, highest first.

    Reads the profiler's raw entries rather than `pstats`, which keys functions by
    (file, line, name) and so merges every dataclass's generated `<string>:2(__init__)`.
    """
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    recv_ours(chunks)
    profiler.disable()
    entries = [e for e in profiler.getstats() if "_lsprof.Profiler" not in str(e.code)]
    total = sum(e.inlinetime for e in entries)
    rows = []
    for entry in sorted(entries, key=lambda e: e.inlinetime, reverse=True)[:top]:
        code = entry.code
        if isinstance(code, str):
            func = code
        else:
            file = code.co_filename
            if "site-packages/" in file:
                where = file.split("site-packages/")[-1]
            elif "/sansio_wss/" in file:
                where = "sansio_wss/" + file.rsplit("/sansio_wss/", 1)[1]
            else:
                where = os.path.basename(file)
            func = f"{where}:{code.co_firstlineno}({getattr(code, 'co_qualname', code.co_name)})"
        rows.append(
            {
                "func": func,
                "ncalls": entry.callcount,
                "own_s": entry.inlinetime,
                "pct": 100.0 * entry.inlinetime / total if total else 0.0,
                "cum_s": entry.totaltime,
            }
        )
    return {"total_s": total, "rows": rows}


# -------------------------------------------------------------------------- harness


def source_digest() -> str:
    """SHA-256 (12 hex digits) of the imported sansio_wss sources: which core was measured."""
    folder = os.path.dirname(sansio_wss.__file__ or "")
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)) if folder else ():
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:12]


def env_info() -> dict[str, Any]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.strip()
                    break
    except OSError:
        pass
    mask = vars(websockets.frames)["apply_mask"]  # the C one when websockets.speedups loaded
    speedups_importable = importlib.util.find_spec("websockets.speedups") is not None
    return {
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "ncpu": os.cpu_count(),
        "sansio_wss": f"{sansio_wss.__version__} from {os.path.dirname(sansio_wss.__file__ or '?')}",
        "sansio_wss_digest": source_digest(),
        "websockets": pkg_version("websockets"),
        "websockets_apply_mask": f"{mask.__module__}.{mask.__name__}",
        "websockets_c_speedups": speedups_importable and "speedups" in (mask.__module__ or ""),
        "wsproto": pkg_version("wsproto"),
        "h11": pkg_version("h11"),
        "loadavg_start": loadavg(),
    }


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def rate_cell(timings: Sequence[Timing], n: int) -> tuple[str, float]:
    rates = [n / t[1] for t in timings]
    return f"{fmt_rate(med(rates))} [{fmt_rate(min(rates))}\u2013{fmt_rate(max(rates))}]", med(rates)


def speedup(ours: Sequence[Timing], other: Sequence[Timing]) -> float:
    """Median over repetitions of other's CPU time ÷ ours: how many times faster we are."""
    return med([b[1] / a[1] for a, b in zip(ours, other, strict=True)])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="3 reps x 3,000 messages (under 2 minutes)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma list of " + ",".join(SECTIONS))
    ap.add_argument("--profile", action="store_true", help="cProfile our receive path (REGISTER, 16 KiB)")
    ap.add_argument("--json", metavar="PATH", help="write the raw results here")
    ap.add_argument("--repeat", type=int, help="repetitions (default 7, quick 3)")
    ap.add_argument("--msgs", type=int, help="messages per run (default 10,000, quick 3,000)")
    ap.add_argument("--handshakes", type=int, help="handshakes per run (default 2,000, quick 1,000)")
    ap.add_argument("--conns", type=int, default=1000, help="connections for the memory figures")
    ap.add_argument("--read-size", type=int, default=16 * 1024, help="bytes per read (default 16 KiB)")
    args = ap.parse_args(argv)
    args.repeat = args.repeat or (3 if args.quick else 7)
    args.msgs = args.msgs or (3000 if args.quick else 10_000)
    args.handshakes = args.handshakes or (1000 if args.quick else 2000)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown or not only:
        ap.error(f"--only: unknown section(s) {unknown}; choose from {','.join(SECTIONS)}")
    args.only = only
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    env = env_info()
    n_msgs: int = args.msgs
    reps: int = args.repeat
    only: list[str] = args.only

    # Inputs, built and verified before anything is timed.
    inputs: dict[str, dict[str, Any]] = {}
    kinds: dict[str, dict[str, int]] = {}
    for name, gen in sp.PAYLOADS.items():
        text = gen()
        payload = text.encode()
        stream, frames = sp.masked_stream(payload, n_msgs, seed=len(payload))
        chunks = [stream[i : i + args.read_size] for i in range(0, len(stream), args.read_size)]
        inputs[name] = {"text": text, "payload": payload, "reads": {"16k": chunks, "1frame": frames}}
        if "receive" in only:
            for mode, src in (("16k", chunks), ("1frame", frames)):
                kinds[f"{name} {mode}"] = verify_receive(f"{name} {mode}", src, text, n_msgs)
        if "send" in only:
            verify_send(name, text, payload)
    requests = make_requests(args.handshakes)
    if "handshake" in only:
        verify_handshake(requests)
    log(f"inputs built and verified in {time.perf_counter() - started:.1f} s; {reps} reps x {n_msgs:,} msgs")

    res: dict[str, Any] = {
        "env": env,
        "args": vars(args),
        "our_event_kinds": kinds,
        "recv16k": {},
        "recv1frame": {},
        "send": {},
        "handshake": {},
        "memory": {},
        "profile": None,
        "loadavg": [],
    }
    for rep in range(reps):
        order = list(CONTENDERS)[::-1] if rep % 2 else list(CONTENDERS)
        for name, inp in inputs.items():
            if "receive" in only:
                for mode in ("16k", "1frame"):
                    src = inp["reads"][mode]
                    row = res[f"recv{mode}"].setdefault(name, {})
                    for contender in order:
                        gc.collect()
                        timing, got_n, got_total = RECV[contender](src)
                        check(
                            (got_n, got_total) == (n_msgs, n_msgs * len(inp["text"])),
                            f"{contender} {name} {mode}: {got_n} messages, {got_total} bytes in a timed run",
                        )
                        row.setdefault(contender, []).append(timing)
            if "send" in only:
                row = res["send"].setdefault(name, {})
                for contender in HS_CONTENDERS[::-1] if rep % 2 else HS_CONTENDERS:
                    gc.collect()
                    row.setdefault(contender, []).append(SEND[contender](inp["text"], inp["payload"], n_msgs))
        if "handshake" in only:
            for contender in HS_CONTENDERS[::-1] if rep % 2 else HS_CONTENDERS:
                gc.collect()
                timing, outs = HANDSHAKE[contender](requests)
                check_101s(contender, outs, len(requests))
                del outs
                res["handshake"].setdefault(contender, []).append(timing)
        res["loadavg"].append(loadavg())
        log(
            f"rep {rep + 1}/{reps} done at {time.perf_counter() - started:.1f} s, "
            f"loadavg {res['loadavg'][-1]}"
        )

    if "memory" in only:
        frame = inputs["WebRTC-INVITE-4500B"]["reads"]["1frame"][0]
        res["memory"] = measure_memory(frame, args.conns, passes=2)
        log(f"memory done at {time.perf_counter() - started:.1f} s")
    if args.profile:
        res["profile"] = profile_ours(inputs["REGISTER-600B"]["reads"]["16k"], top=15)
    res["elapsed_s"] = time.perf_counter() - started
    env["loadavg_end"] = loadavg()

    print(render(res, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
        log(f"raw results written to {args.json}")
    return 0


# --------------------------------------------------------------------------- report


def render(res: dict[str, Any], args: argparse.Namespace) -> str:
    lines: list[str] = []
    w = lines.append
    env = res["env"]
    n_msgs: int = args.msgs
    w("# sansio_wss core benchmark")
    w("")
    w(f"- Python {env['python']} ({env['implementation']}), {env['platform']}")
    w(
        f"- CPU: `{env['cpu']}`, {env['ncpu']} CPUs; load average {env['loadavg_start']} at start, "
        f"{env['loadavg_end']} at end"
    )
    w(
        f"- sansio_wss {env['sansio_wss']} (sources sha256 {env['sansio_wss_digest']}); "
        f"websockets {env['websockets']} (apply_mask: "
        f"`{env['websockets_apply_mask']}`, C speedups loaded: {env['websockets_c_speedups']}); "
        f"wsproto {env['wsproto']} (h11 {env['h11']})"
    )
    inflation = [
        t[0] / t[1]
        for key in ("recv16k", "recv1frame", "send")
        for row in res[key].values()
        for timings in row.values()
        for t in timings
        if t[1] > 0
    ] + [t[0] / t[1] for timings in res["handshake"].values() for t in timings if t[1] > 0]
    mode = "quick" if args.quick else "full"
    w(
        f"- Mode {mode}: {args.repeat} interleaved repetitions (contender order reversed every other one), "
        f"{n_msgs:,} messages per run, {args.handshakes:,} handshakes per run; thread CPU time "
        f"(`time.thread_time`); median [min\u2013max]; ratios are medians of per-repetition ratios."
    )
    if inflation:
        w(f"- Wall ÷ CPU time over all runs: median {med(inflation):.2f}, max {max(inflation):.2f}.")
    if res["our_event_kinds"]:
        kinds = sorted({k for d in res["our_event_kinds"].values() for k in d})
        w(f"- Our events delivered on receive (all counted as messages): {', '.join(kinds)}.")

    def recv_table(key: str, title: str) -> None:
        if not res[key]:
            return
        w("")
        w(f"## {title} ({n_msgs:,} client-masked text frames; messages per CPU-second [min\u2013max])")
        w("")
        w(
            "| payload | ours (C unmask) | ours (pure Python) | websockets+decode | wsproto | ours µs/msg "
            "| ours ÷ websockets+decode | pure ÷ websockets+decode | ours ÷ wsproto |"
        )
        w("|---|---|---|---|---|---|---|---|---|")
        for name, row in res[key].items():
            cells = [rate_cell(row[c], n_msgs)[0] for c in CONTENDERS]
            us = 1e6 / rate_cell(row["ours"], n_msgs)[1]
            r1 = speedup(row["ours"], row["websockets+decode"])
            r3 = speedup(row["ours-pure"], row["websockets+decode"])
            r2 = speedup(row["ours"], row["wsproto"])
            w(f"| {name} | " + " | ".join(cells) + f" | {us:.2f} | {r1:.2f}x | {r3:.2f}x | {r2:.2f}x |")

    recv_table("recv16k", f"Server receive, {args.read_size // 1024} KiB reads")
    recv_table("recv1frame", "Server receive, one frame per read")

    if res["send"]:
        w("")
        w(f"## Server send ({n_msgs:,} text messages; messages per CPU-second [min\u2013max])")
        w("")
        w("| payload | ours | websockets | wsproto | ours µs/msg | ours ÷ websockets | ours ÷ wsproto |")
        w("|---|---|---|---|---|---|---|")
        for name, row in res["send"].items():
            cells = [rate_cell(row[c], n_msgs)[0] for c in HS_CONTENDERS]
            us = 1e6 / rate_cell(row["ours"], n_msgs)[1]
            r1 = speedup(row["ours"], row["websockets"])
            r2 = speedup(row["ours"], row["wsproto"])
            w(f"| {name} | " + " | ".join(cells) + f" | {us:.2f} | {r1:.2f}x | {r2:.2f}x |")

    hs = res["handshake"]
    if hs:
        w("")
        w(
            f"## Handshake (Chrome upgrade request, {len(REQUEST)} B, Origin checked, `sip`, "
            f"deflate declined → 101; {args.handshakes:,} per run, a new connection object each)"
        )
        w("")
        w(
            "| contender | µs per handshake [min\u2013max] | handshakes per CPU-second "
            "| time ÷ websockets time |"
        )
        w("|---|---|---|---|")
        for contender in HS_CONTENDERS:
            per_hs = [t[1] / args.handshakes * 1e6 for t in hs[contender]]
            ratio = med([a[1] / b[1] for a, b in zip(hs[contender], hs["websockets"], strict=True)])
            w(
                f"| {contender} | {med(per_hs):.1f} [{min(per_hs):.1f}\u2013{max(per_hs):.1f}] | "
                f"{rate_cell(hs[contender], args.handshakes)[0]} | {ratio:.2f} |"
            )

    mem = res["memory"]
    if mem:
        w("")
        w(
            f"## Memory: Python heap retained per open server connection (tracemalloc, {args.conns:,} "
            f"connections, median of 2 passes)"
        )
        w("")
        w("| contender | idle after the handshake | after receiving one 4,500 B frame and sending a reply |")
        w("|---|---|---|")
        for contender, d in mem.items():
            w(f"| {contender} | {med(d['idle']):,.0f} B | {med(d['after_rx_tx']):,.0f} B |")

    targets: list[tuple[str, str, str, bool]] = []
    for contender, mode in (("ours-pure", "pure Python"), ("ours", "with the C unmask")):
        for payload, ratio_goal, what in (
            ("REGISTER-600B", TARGET_RECV_REGISTER, "600 B REGISTER"),
            ("INVITE-1300B", TARGET_RECV_INVITE, "1,300 B INVITE"),
        ):
            if payload in res["recv16k"]:
                row = res["recv16k"][payload]
                r = speedup(row[contender], row["websockets+decode"])
                targets.append(
                    (
                        f"receive, {what}, 16 KiB reads, {mode}: ours ÷ websockets+decode",
                        f"{r:.2f}x",
                        f"≥ {ratio_goal:.2f}x",
                        r >= ratio_goal,
                    )
                )
    if "REGISTER-600B" in res["send"]:
        row = res["send"]["REGISTER-600B"]
        r = speedup(row["ours"], row["websockets"])
        targets.append(
            (
                "send, 600 B REGISTER: ours ÷ websockets",
                f"{r:.2f}x",
                f"≥ {TARGET_SEND:.2f}x",
                r >= TARGET_SEND,
            )
        )
    if hs:
        r = med([a[1] / b[1] for a, b in zip(hs["ours"], hs["websockets"], strict=True)])
        targets.append(
            (
                "handshake: ours time ÷ websockets time",
                f"{r:.2f}x",
                f"≤ {TARGET_HANDSHAKE:.2f}x",
                r <= TARGET_HANDSHAKE,
            )
        )
    if mem:
        b = med(mem["ours"]["idle"])
        targets.append(
            (
                "idle memory per connection (ours)",
                f"{b:,.0f} B",
                f"≤ {TARGET_IDLE_BYTES:,} B",
                b <= TARGET_IDLE_BYTES,
            )
        )
    if targets:
        w("")
        w("## Targets")
        w("")
        w("| target | measured | goal | result |")
        w("|---|---|---|---|")
        for label, measured, goal, ok in targets:
            w(f"| {label} | {measured} | {goal} | {verdict(ok)} |")

    prof = res["profile"]
    if prof:
        w("")
        w(
            f"## cProfile: our receive path, 600 B REGISTER, {args.read_size // 1024} KiB reads, {n_msgs:,} "
            f"frames (top {len(prof['rows'])} by own time; total {prof['total_s']:.3f} s under the profiler, "
            f"which inflates it: read the shares)"
        )
        w("")
        w("| function | calls | own s | own % | cum s |")
        w("|---|---|---|---|---|")
        for r in prof["rows"]:
            w(f"| `{r['func']}` | {r['ncalls']:,} | {r['own_s']:.4f} | {r['pct']:.1f} | {r['cum_s']:.4f} |")

    w("")
    w(f"_Elapsed: {res['elapsed_s']:.0f} s; load average per repetition: {', '.join(res['loadavg'])}._")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
