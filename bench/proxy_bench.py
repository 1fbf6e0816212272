"""Behind a proxy: what a plain listener's connection set-up costs with a PROXY header (v1, v2) or
X-Forwarded-For, in thread CPU time, beside websockets' and wsproto's sans-IO handshakes on the
same upgrade requests (which read no proxy information at all)."""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence

from core_bench import CONFIG, check, check_101s, hs_websockets, hs_wsproto, make_requests

from sansio_wss import ProxyPolicy, ServerConnection
from sansio_wss.adapters._driver import Driver

SOCKET_PEER = ("10.0.0.5", 51234)  # the load balancer
LISTENER = ("10.0.0.9", 8080)
CLIENT = ("203.0.113.9", 40404)
VIP = ("198.51.100.1", 443)
V1 = b"PROXY TCP4 203.0.113.9 198.51.100.1 40404 443\r\n"
_V2_BODY = (
    bytes((203, 0, 113, 9, 198, 51, 100, 1))
    + (40404).to_bytes(2, "big")
    + (443).to_bytes(2, "big")
    + b"\x02\x00\x0fsip.example.com"  # authority (SNI), as HAProxy sends it
    + b"\x05\x00\x0bconnection1"  # unique id
)
V2 = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + len(_V2_BODY).to_bytes(2, "big") + _V2_BODY
XFF = b"X-Forwarded-For: 198.51.100.200, 203.0.113.9\r\n"
TRUSTED = ["10.0.0.0/8"]
Run = Callable[[Sequence[bytes]], float]
"""Sets up one connection per request (PROXY header, upgrade, 101 out); returns thread CPU seconds."""


def ours(policy: ProxyPolicy | None, header: bytes = b"", forwarded: bool = False) -> Run:
    def run(requests: Sequence[bytes]) -> float:
        if forwarded:
            requests = [r.replace(b"\r\n\r\n", b"\r\n" + XFF[:-2] + b"\r\n\r\n", 1) for r in requests]
        inputs = [header + request for request in requests]
        outs = []
        start = time.thread_time()
        for data in inputs:
            driver = Driver(None, ServerConnection(0.0, CONFIG, proxy=policy), 0.0, proxy=policy)
            driver.set_addresses(SOCKET_PEER, LISTENER, 0.0)
            driver.receive(data, 0.0)
            driver.events()
            outs.append(driver.data_to_send())
            if policy is not None:
                check(driver.remote[0] == CLIENT[0], f"the client is {driver.remote}, not {CLIENT}")
        took = time.thread_time() - start
        check_101s("ours", outs, len(requests))
        return took

    return run


def core_only(requests: Sequence[bytes]) -> float:
    """The core alone, as core_bench measures its handshake (no driver, no addresses)."""
    outs = []
    start = time.thread_time()
    for request in requests:
        conn = ServerConnection(0.0, CONFIG)
        conn.receive_data(request, 0.0)
        conn.events()
        outs.append(conn.data_to_send())
    took = time.thread_time() - start
    check_101s("core", outs, len(requests))
    return took


def websockets_handshake(requests: Sequence[bytes]) -> float:
    timing, outs = hs_websockets(requests)
    check_101s("websockets", outs, len(requests))
    return timing[1]


def wsproto_handshake(requests: Sequence[bytes]) -> float:
    timing, outs = hs_wsproto(requests)
    check_101s("wsproto", outs, len(requests))
    return timing[1]


def memory(policy: ProxyPolicy | None, header: bytes, n: int = 2_000) -> float:
    """Python heap per open plain connection (driver and core), after its PROXY header and upgrade."""
    request = make_requests(1)[0]
    kept = []
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        driver = Driver(None, ServerConnection(0.0, CONFIG, proxy=policy), 0.0, proxy=policy)
        driver.set_addresses(SOCKET_PEER, LISTENER, 0.0)
        driver.receive(header + request, 0.0)
        driver.events()
        driver.data_to_send()
        kept.append(driver)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / n


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer connections and repetitions")
    args = parser.parse_args(argv)
    n, reps = (1_000, 3) if args.quick else (5_000, 7)
    pp = ProxyPolicy(trusted=TRUSTED, proxy_protocol=True)
    xff = ProxyPolicy(trusted=TRUSTED, forwarded="x-forwarded-for")
    contenders: dict[str, Run] = {
        "ours, core alone": core_only,
        "ours, plain driver": ours(None),
        "ours, PROXY v1": ours(pp, V1),
        "ours, PROXY v2 (2 TLVs)": ours(pp, V2),
        "ours, X-Forwarded-For (2 hops)": ours(xff, forwarded=True),
        "websockets 17.4 (no proxy info)": websockets_handshake,
        "wsproto 1.2 (no proxy info)": wsproto_handshake,
    }
    requests = make_requests(n)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(reps):  # interleaved: a noisy neighbour hits every contender alike
        for name, run in contenders.items():
            times[name].append(run(requests) / n)
    base = statistics.median(times["ours, plain driver"])
    ws = statistics.median(times["websockets 17.4 (no proxy info)"])
    wsp = statistics.median(times["wsproto 1.2 (no proxy info)"])
    print(f"connection set-up (PROXY header + Chrome upgrade -> 101), medians of {reps} x {n}, thread CPU")
    print(f"| {'contender':<34} | µs per connection | ÷ plain driver | ÷ websockets | ÷ wsproto |")
    print(f"| {'-' * 34} | ---: | ---: | ---: | ---: |")
    for name in contenders:
        value = statistics.median(times[name])
        ratios = " | ".join(f"{value / other:.2f}x" for other in (base, ws, wsp))
        print(f"| {name:<34} | {value * 1e6:.1f} | {ratios} |")
    heap = {label: memory(policy, header) for label, policy, header in (
        ("plain", None, b""), ("PROXY v2", pp, V2)
    )}  # fmt: skip
    print(f"Python heap per open plain connection: {heap['plain']:.0f} B; with its PROXY v2 header kept: "
          f"{heap['PROXY v2']:.0f} B")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
