"""Tracing benchmark: what HEP tracing costs per SIP message and per connection, in thread CPU time,
side by side with untraced connections and websockets' sans-IO core on the same messages."""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from collections.abc import Callable, Sequence

import sip_payloads as sp
from core_bench import check, ours_open, ws_open

from sansio_wss import Config, ServerConnection, State, TraceConfig, Tracer
from sansio_wss.adapters import HepCollector
from sansio_wss.hep import PayloadFormat

REMOTE = ("198.51.100.7", 50123)
LOCAL = ("192.0.2.10", 443)
REGISTER = sp.sip_register().encode()
OK = sp.sip_200_ok().encode()
FRAME = sp.client_frame(REGISTER, b"\x11\x22\x33\x44")
Run = Callable[[int], float]
"""Runs n message pairs (one REGISTER in, one 200 OK out); returns thread CPU seconds."""


def _null_sink(packet: bytes) -> None:
    pass


def ours(tracer: Tracer | None) -> Run:
    def run(n: int) -> float:
        conn = ours_open()
        if tracer is not None:
            tracer.attach(conn, remote=REMOTE, local=LOCAL, now=0.0, wall=time.time())
        receive, events, send, out = conn.receive_data, conn.events, conn.send, conn.data_to_send
        start = time.thread_time()
        for _ in range(n):
            receive(FRAME, 0.0)
            for event in events():
                send(OK, 0.0)
                del event
            out()
        took = time.thread_time() - start
        check(conn.state is State.OPEN, "ours: the connection did not stay open")
        return took

    return run


def websockets_core(n: int) -> float:
    proto = ws_open()
    receive, events, send = proto.receive_data, proto.events_received, proto.send_text
    out = proto.data_to_send
    start = time.thread_time()
    for _ in range(n):
        receive(FRAME)
        for event in events():
            send(OK)
            del event
        out()
    return time.thread_time() - start


def connections(tracer: Tracer | None) -> Run:
    """n connections: upgrade, one REGISTER, close by the client."""
    request = sp.chrome_upgrade_request()
    close = sp.client_frame(b"\x03\xe8", b"\x01\x02\x03\x04", opcode=8)
    config = Config(allowed_origins=frozenset({sp.ORIGIN}))

    def run(n: int) -> float:
        start = time.thread_time()
        for _ in range(n):
            conn = ServerConnection(0.0, config)
            if tracer is not None:
                tracer.attach(conn, remote=REMOTE, local=LOCAL, now=0.0, wall=1.8e9)
            conn.receive_data(request, 0.0)
            conn.receive_data(FRAME, 0.0)
            conn.send(OK, 0.0)
            conn.receive_data(close, 0.0)
            conn.events()
            conn.data_to_send()
        return time.thread_time() - start

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages and repetitions")
    args = parser.parse_args(argv)
    n, reps = (2_000, 3) if args.quick else (10_000, 7)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))  # never read: the kernel drops what overflows, as a busy collector would
    with HepCollector(f"udp:127.0.0.1:{sink.getsockname()[1]}") as collector:
        homer5 = Tracer(_null_sink)
        json = Tracer(_null_sink, TraceConfig(payload_format=PayloadFormat.JSON))
        udp = Tracer(collector)
        messages: dict[str, Run] = {
            "no tracer": ours(None),
            "tracer attached, switched off": ours(Tracer(_null_sink, on=False)),
            "on, HOMER5, packets dropped": ours(homer5),
            "on, JSON, packets dropped": ours(json),
            "on, HOMER5, UDP HepCollector": ours(udp),
            "websockets 17.4 core, no tracing": websockets_core,
        }
        setups: dict[str, Run] = {
            "no tracer": connections(None),
            "on, HOMER5, UDP": connections(Tracer(collector)),
        }
        times: dict[str, list[float]] = {name: [] for name in [*messages, *(f"conn {s}" for s in setups)]}
        for _ in range(reps):  # interleaved: a noisy neighbour hits every contender alike
            for name, run in messages.items():
                times[name].append(run(n) / n)
            for name, run in setups.items():
                times[f"conn {name}"].append(run(n // 10) / (n // 10))
        check(udp.stats.lost == 0 and collector.stats.sent > 0, "the UDP collector got nothing")
    sink.close()
    base = statistics.median(times["no tracer"])
    ws = statistics.median(times["websockets 17.4 core, no tracing"])
    sizes = f"{len(REGISTER)} B / {len(OK)} B"
    print(f"per REGISTER in + 200 OK out ({sizes}), medians of {reps} x {n}, thread CPU")
    print(f"| {'contender':<34} | µs per pair | ÷ no tracer | ÷ websockets |")
    print(f"| {'-' * 34} | ---: | ---: | ---: |")
    for name in messages:
        value = statistics.median(times[name])
        print(f"| {name:<34} | {value * 1e6:.2f} | {value / base:.2f}x | {value / ws:.2f}x |")
    plain, traced = (statistics.median(times[f"conn {s}"]) for s in setups)
    print(f"per connection (upgrade, REGISTER, 200 OK, close): {plain * 1e6:.1f} µs untraced, "
          f"{traced * 1e6:.1f} µs traced to UDP ({traced / plain:.2f}x; 4 packets)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
