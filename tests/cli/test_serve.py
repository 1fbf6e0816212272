"""`python -m sansio_wss serve` end to end, in a subprocess, with the `websockets` library as client."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import re
import signal
import subprocess
import sys

import pytest
import websockets
from serve_helpers import ADAPTERS, LIMIT, OPTIONS, client, insecure, served


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_echo_page_and_a_clean_stop(adapter: str) -> None:
    with served("--adapter", adapter, "--app", "echo") as server:
        fingerprint, listening = server.banner
        assert re.fullmatch(
            r"certificate: generated, SHA-256 fingerprint ([0-9A-F]{2}:){31}[0-9A-F]{2}", fingerprint
        )
        assert listening == (
            f"listening on wss://127.0.0.1:{server.port}/ (adapter {adapter}, app echo); "
            f"test page https://127.0.0.1:{server.port}/"
        )

        async def exchange() -> tuple[int | None, str]:
            async with client(server.port) as ws:
                assert ws.subprotocol == "sip"
                for _ in range(3):
                    await ws.send(OPTIONS)
                    assert await ws.recv() == OPTIONS
                await ws.send(OPTIONS.encode())  # binary: echoed binary, though it is UTF-8
                assert await ws.recv() == OPTIONS.encode()
                code, out, err = await asyncio.to_thread(server.stop)  # while we are connected
                with contextlib.suppress(websockets.ConnectionClosed):
                    await ws.recv()
                assert (code, err) == (0, "")
                assert ws.close_code == 1001
                return ws.close_code, out

        page = http.client.HTTPSConnection("127.0.0.1", server.port, context=insecure(), timeout=LIMIT)
        page.request("GET", "/")
        response = page.getresponse()
        body = response.read()
        assert (response.status, response.getheader("Content-Type")) == (200, "text/html; charset=utf-8")
        assert b'new WebSocket(url, "sip")' in body
        _, out = asyncio.run(asyncio.wait_for(exchange(), LIMIT))
        lines = out.strip().splitlines()
        assert lines[0] == "stopping: closing every connection with 1001"
        assert lines[1].startswith("stopped: {'accepted': 1, 'connected': 0, 'open': 0, 'failed': {}")
        assert "'messages_in': 4, 'messages_out': 4" in lines[1]


@pytest.mark.parametrize(
    ("args", "origin", "status"),
    [
        (("--origin", "https://good.example"), "https://bad.example", 403),
        (("--resource", "/sip"), "https://app.example.com", 404),
    ],
    ids=["origin not allowed", "resource not served"],
)
def test_policy_options_reject(args: tuple[str, ...], origin: str, status: int) -> None:
    with served("--app", "echo", *args) as server:

        async def attempt() -> int:
            with pytest.raises(websockets.InvalidStatus) as caught:
                async with client(server.port, origin):
                    pass
            return caught.value.response.status_code

        assert asyncio.run(asyncio.wait_for(attempt(), LIMIT)) == status
        code, _, _ = server.stop(signal.SIGINT)
        assert code == 0


def test_bad_arguments_exit_2() -> None:
    for args in (
        ["--listen", "http://127.0.0.1:1"],
        ["--listen", "ws://127.0.0.1:1?proxy-protocol"],  # trusts no proxy
        ["--listen", "ws://127.0.0.1:1?forwarded=x-real-ip", "--trusted-proxy", "::1"],
        ["--listen", "ws://127.0.0.1:1?proxy", "--trusted-proxy", "::1"],
        ["--listen", "ws://127.0.0.1:1", "--trusted-proxy", "::1"],  # no listener uses it
        ["--listen", "ws://127.0.0.1:1?proxy-protocol", "--trusted-proxy", "10.0.0.1/8"],
        ["--cert", "x.pem"],
        ["--max-message-size", "0"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "sansio_wss", "serve", *args],
            cwd="/tmp",  # not the source tree, whose sansio_wss/ has no cli/
            check=False,
            capture_output=True,
            text=True,
            timeout=LIMIT,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert "error:" in done.stderr


def test_workers_share_the_port() -> None:
    with served("--app", "echo", "--workers", "2", "--adapter", "sync") as server:
        assert server.banner[1].endswith(
            "(adapter sync, app echo, 2 workers); test page " + server.banner[1].split()[-1]
        )

        async def connections() -> None:
            for _ in range(8):
                async with client(server.port) as ws:
                    await ws.send(OPTIONS)
                    assert await ws.recv() == OPTIONS

        asyncio.run(asyncio.wait_for(connections(), LIMIT))
        code, out, err = server.stop()
    assert (code, err) == (0, "")
    accepted = [int(n) for n in re.findall(r"worker \d stopped: \{'accepted': (\d+),", out)]
    assert len(accepted) == 2 and sum(accepted) == 8, out


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_probe_against_serve(adapter: str) -> None:
    """The two commands together: `probe` gets every OPTIONS answered by `serve`'s registrar
    (over permessage-deflate with the sync adapter, which both offer and accept)."""
    deflate = ["--deflate"] if adapter == "sync" else []
    with served("--adapter", adapter, *deflate) as server:
        done = subprocess.run(
            [
                sys.executable, "-m", "sansio_wss", "probe", f"wss://127.0.0.1:{server.port}/",
                "--insecure", "--count", "4", "--adapter", adapter, *deflate,
            ],
            cwd="/tmp",
            capture_output=True,
            text=True,
            timeout=LIMIT,
            check=False,
        )  # fmt: skip
        code, out, _ = server.stop()
    assert (done.returncode, done.stderr) == (0, ""), done.stdout
    assert done.stdout.count(": SIP/2.0 200 OK") == 4, done.stdout
    assert re.search(r"round trip min/median/max: [\d.]+/[\d.]+/[\d.]+ ms", done.stdout)
    assert code == 0 and "'messages_in': 4, 'messages_out': 4" in out
    agreed = "< Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_"
    assert (agreed in done.stdout) is bool(deflate), done.stdout


def test_ipv6_and_ipv4_listeners() -> None:
    with served("--listen", "wss://[::1]:0", "--adapter", "trio") as server:
        listening = [line for line in server.banner if line.startswith("listening")]
        assert listening == [
            f"listening on wss://127.0.0.1:{server.port}/ (adapter trio, app registrar); "
            f"test page https://127.0.0.1:{server.port}/"
        ]
        assert server.process.stdout is not None
        v6 = server.process.stdout.readline().strip()
        found = re.fullmatch(r"listening on wss://\[::1\]:(\d+)/ \(adapter trio, app registrar\); .*", v6)
        assert found, v6
        done = subprocess.run(
            [sys.executable, "-m", "sansio_wss", "probe", f"wss://[::1]:{found.group(1)}/", "--insecure"],
            cwd="/tmp",
            capture_output=True,
            text=True,
            timeout=LIMIT,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
