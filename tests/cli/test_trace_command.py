"""`serve --trace` and the `trace` command end to end: a real HEP collector receives what a
`serve` process traces, and `trace on|off` switches it while it runs (one process or workers)."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from hep_wire import TcpCollector, UdpCollector, fields, number
from serve_helpers import ADAPTERS, LIMIT, OPTIONS, client, served

from sansio_wss.cli.tracing import ControlServer, wss_trace


def trace(control: pathlib.Path, *mode: str) -> tuple[int, str]:
    """`python -m sansio_wss trace [mode] --control PATH`: (exit status, what it printed)."""
    done = subprocess.run(
        [sys.executable, "-m", "sansio_wss", "trace", *mode, "--control", str(control)],
        capture_output=True,
        text=True,
        timeout=LIMIT,
        cwd="/tmp",
        check=False,
    )
    return done.returncode, done.stdout.strip()


def exchange(port: int, count: int = 1) -> None:
    async def main() -> None:
        async with client(port) as ws:
            for _ in range(count):
                await ws.send(OPTIONS)
                assert await ws.recv() == OPTIONS

    asyncio.run(asyncio.wait_for(main(), LIMIT))


def events(packets: list[bytes]) -> list[str]:
    """Each packet as `SIP` or its JSON event name."""
    found = []
    for packet in packets:
        got = fields(packet)
        if number(got[11]) == 1:
            found.append("SIP")
        else:
            found.append(dict(json.loads(got[15], object_pairs_hook=list))["Event"])
    return found


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_serve_traces_to_a_udp_collector_and_trace_switches_it(adapter: str, tmp_path: pathlib.Path) -> None:
    collector = UdpCollector()
    control = tmp_path / "control.sock"
    args = ("--app", "echo", "--adapter", adapter, "--trace", collector.destination, "--trace-format", "json")
    try:
        with served(*args, "--capture-id", "42", "--control", str(control)) as server:
            assert server.banner[2] == (
                f"tracing: HEP to {collector.destination} (json, capture id 42), on; "
                f"switch with: python -m sansio_wss trace on|off --control {control}"
            )
            assert oct(control.stat().st_mode & 0o777) == "0o600"
            assert trace(control) == (0, '{"WSS tracing": "on"}')
            exchange(server.port, 2)
            packets = collector.packets(6)
            assert events(packets) == ["ACCEPTED", "SIP", "SIP", "SIP", "SIP", "CLOSED"]
            assert {number(fields(p)[12]) for p in packets} == {42}

            assert trace(control, "off") == (0, '"OK"')
            assert trace(control) == (0, '{"WSS tracing": "off"}')
            exchange(server.port)
            assert trace(control, "ON") == (0, '"OK"')
            exchange(server.port)
            assert events(collector.packets(4)) == ["ACCEPTED", "SIP", "SIP", "CLOSED"]

            code, out = trace(control, "maybe")
            assert code == 2
            assert json.loads(out) == {
                "code": 500,
                "message": "Bad parameter value",
                "data": "trace_mode should be 'on' or 'off'",
            }
            server.process.send_signal(signal.SIGUSR2)  # what the control does, by hand
            time.sleep(0.3)
            assert trace(control) == (0, '{"WSS tracing": "off"}')
            code, out, err = server.stop()
        assert (code, err) == (0, "")
        assert out.splitlines()[-1] == (
            "tracing: TraceStats(on=False, connections=2, filtered=0, packets=10, lost=0) "
            "CollectorStats(sent=10, lost=0, pending=0, connected=True, reconnects=0)"
        )
        assert not control.exists()
        assert trace(control)[0] == 3  # nobody answers any more
    finally:
        collector.close()


def test_workers_are_switched_together_and_trace_to_tcp(tmp_path: pathlib.Path) -> None:
    collector = TcpCollector()
    control = tmp_path / "control.sock"
    args = ("--app", "echo", "--workers", "2", "--trace", collector.destination, "--trace-format", "json")
    try:
        with served(*args, "--trace-off", "--control", str(control)) as server:
            assert server.banner[2].startswith(
                f"tracing: HEP to {collector.destination} (json, capture id 1), off"
            )
            assert trace(control) == (0, '{"WSS tracing": "off"}')
            exchange(server.port)
            assert trace(control, "on") == (0, '"OK"')
            time.sleep(0.3)  # the workers get SIGUSR1
            for _ in range(6):  # over SO_REUSEPORT the kernel spreads them over both workers
                exchange(server.port)
            sessions: dict[bytes, list[bytes]] = {}
            for packet in collector.packets(24):
                sessions.setdefault(fields(packet)[17], []).append(packet)
            assert [events(packets) for packets in sessions.values()] == [
                ["ACCEPTED", "SIP", "SIP", "CLOSED"]
            ] * 6
            assert trace(control) == (0, '{"WSS tracing": "on"}')
            code, out, err = server.stop()
        assert (code, err) == (0, "")
        traced = [line for line in out.splitlines() if "tracing: TraceStats" in line]
        assert len(traced) == 2 and all("on=True" in line and "lost=0" in line for line in traced)
        assert sum(int(line.split("packets=")[1].split(",")[0]) for line in traced) == 24
    finally:
        collector.close()


def test_a_second_serve_cannot_take_a_live_control_socket(tmp_path: pathlib.Path) -> None:
    control = tmp_path / "control.sock"
    collector = UdpCollector()
    try:
        with served("--app", "echo", "--trace", collector.destination, "--control", str(control)):
            done = subprocess.run(
                [sys.executable, "-m", "sansio_wss", "serve", "--listen", "wss://127.0.0.1:0", "--trace",
                 collector.destination, "--control", str(control)],
                capture_output=True, text=True, timeout=LIMIT, cwd="/tmp", check=False,
            )  # fmt: skip
            assert done.returncode == 1 and "Traceback" not in done.stderr  # (port 0 used to crash it)
            assert f"another serve already answers trace commands on {control}" in done.stderr
    finally:
        collector.close()


def test_a_collector_name_that_does_not_resolve_is_an_error_not_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sansio_wss", "serve", "--listen", "wss://127.0.0.1:0",
         "--trace", "udp:no-such-host.invalid:9060", "--control", "/tmp/unused-control.sock"],
        capture_output=True, text=True, timeout=LIMIT, cwd="/tmp", check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--trace: cannot resolve the HEP destination 'udp:no-such-host.invalid:9060'" in done.stderr


def test_a_stale_control_socket_is_taken_over(tmp_path: pathlib.Path) -> None:
    import socket  # noqa: PLC0415

    control = tmp_path / "control.sock"
    with socket.socket(socket.AF_UNIX) as left:
        left.bind(str(control))  # bound, never listening: what a killed serve leaves
    state = [True]
    with ControlServer(str(control), lambda: state[0], lambda on: state.__setitem__(0, on)):
        assert trace(control, "off") == (0, '"OK"')
    assert state == [False] and not control.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("--trace", "udp:127.0.0.1"),
        ("--trace", "http://127.0.0.1:9060"),
        ("--trace", "udp:::1:9060"),
        ("--trace", "udp:127.0.0.1:0"),
        ("--trace", "tcp:127.0.0.1:65536"),
        ("--trace", "udp:127.0.0.1:9060", "--capture-id", "-1"),
        ("--trace-off",),
        ("--control", "/tmp/x.sock"),
    ],
)
def test_bad_trace_arguments_exit_2(args: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sansio_wss", "serve", *args],
        capture_output=True, text=True, timeout=LIMIT, cwd="/tmp", check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        ({"jsonrpc": "2.0", "method": "wss_trace", "id": 7}, {"result": {"WSS tracing": "on"}, "id": 7}),
        ({"jsonrpc": "2.0", "method": "wss:trace", "params": ["off"], "id": 1}, {"result": "OK", "id": 1}),
        ({"jsonrpc": "2.0", "method": "wss_trace", "params": {"trace_mode": 1}, "id": 1},
         {"error": {"code": -32602, "message": "Invalid params"}, "id": 1}),
        ({"jsonrpc": "2.0", "method": "wss_trace", "params": ["on", "off"], "id": 1},
         {"error": {"code": -32602, "message": "Invalid params"}, "id": 1}),
        ({"jsonrpc": "2.0", "method": "tls_trace", "id": 2},
         {"error": {"code": -32601, "message": "Method not found"}, "id": 2}),
        ({"method": "wss_trace"}, {"error": {"code": -32600, "message": "Invalid Request"}, "id": None}),
        ([1, 2], {"error": {"code": -32600, "message": "Invalid Request"}, "id": None}),
    ],
)  # fmt: skip
def test_wss_trace_answers_as_opensips_mi(request_: object, reply: dict[str, object]) -> None:
    switched: list[bool] = []
    assert wss_trace(request_, lambda: True, switched.append) == {"jsonrpc": "2.0", **reply}
    assert switched == ([False] if reply.get("result") == "OK" else [])


def test_garbage_on_the_control_socket_gets_a_parse_error(tmp_path: pathlib.Path) -> None:
    import socket  # noqa: PLC0415

    control = tmp_path / "control.sock"
    with ControlServer(str(control), lambda: True, lambda on: None):
        for garbage in (b"{not json\n", b"\xff\xfe\n", b"x" * 10_000):
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(LIMIT)
                conn.connect(str(control))
                conn.sendall(garbage)
                conn.shutdown(socket.SHUT_WR)
                answer = json.loads(conn.makefile("rb").readline())
            assert answer["error"]["code"] == -32700
    assert os.path.exists(control) is False
