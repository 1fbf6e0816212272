"""The client under test for the suite's fuzzingserver: our asyncio client, echoing every message.

    client.py --url wss://127.0.0.1:PORT --agent NAME [--deflate-window-bits N]

It offers permessage-deflate (groups 12 and 13), with a window of 2**N (12, the default). The
usual loop: `/getCaseCount`, then `/runCase?case=i&agent=A` for each case (echo every
message until the suite closes), then `/updateReports?agent=A`. One line per case tells how
the connection ended, as our core saw it. The suite's certificate is not verified.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from sansio_wss import Config, ConnectFailed, ConnectionClosedError
from sansio_wss.adapters.asyncio import Connection, connect

__all__ = ["main"]

ORIGIN = "https://autobahn.test"
CONFIG = Config(
    origin=ORIGIN,
    max_message_size=16 << 20,  # group 9 sends messages of 16 MiB
    max_msg_chunks=1 << 16,  # Config's highest: the suite writes frames in many small pieces
    ping_interval=None,  # no keepalive Pings in the suite's wire logs
    send_timeout=60.0,
    close_timeout=10.0,
    deflate=True,  # permessage-deflate, groups 12 and 13
)

# Without `binary=` (a core from before issue #5's patch), send() picks the frame type by
# content, so a binary message of UTF-8 bytes would go back as text.
_KEEPS_TYPE = "binary" in inspect.signature(Connection.send).parameters


def _tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _open(url: str, config: Config) -> Connection:
    return await connect(url, config=config, tls=_tls())


async def _echo(conn: Connection) -> int:
    """Send back every message as it came (text as text); the number echoed."""
    echoed = 0
    send: Callable[..., Awaitable[None]] = conn.send
    async for message in conn:
        try:
            if _KEEPS_TYPE:
                await send(message.message, binary=message.binary)
            elif message.binary:
                await send(message.message)
            else:
                await send(message.message.decode("utf-8"))
        except ConnectionClosedError:
            break
        echoed += 1
    await conn.wait_closed()
    return echoed


async def _case_count(url: str, config: Config) -> int:
    conn = await _open(f"{url}/getCaseCount", config)
    message = await conn.recv()
    await conn.wait_closed()
    return int(message.message)


async def _run_case(url: str, agent: str, case: int, timeout: float, config: Config) -> str:
    try:
        conn = await asyncio.wait_for(_open(f"{url}/runCase?case={case}&agent={agent}", config), timeout)
    except (ConnectFailed, OSError, asyncio.TimeoutError) as exc:
        return f"connect failed: {type(exc).__name__}: {exc}"
    try:
        echoed = await asyncio.wait_for(_echo(conn), timeout)
    except asyncio.TimeoutError:
        return f"timed out after {timeout:.0f} s"
    closed = conn.closed
    if closed is None:
        return f"echoed {echoed}, not closed"
    return (
        f"echoed {echoed}; closed code={closed.code} clean={closed.clean} "
        f"cause={closed.cause.value} detail={closed.detail!r}"
    )


async def _main(url: str, agent: str, timeout: float, config: Config) -> int:
    started = time.monotonic()
    count = await _case_count(url, config)
    print(f"{count} cases, agent {agent!r}", flush=True)
    quoted = quote(agent)
    for case in range(1, count + 1):
        began = time.monotonic()
        outcome = await _run_case(url, quoted, case, timeout, config)
        print(f"case {case}: {time.monotonic() - began:.2f} s, {outcome}", flush=True)
    conn = await _open(f"{url}/updateReports?agent={quoted}", config)
    await conn.wait_closed()
    print(f"done in {time.monotonic() - started:.1f} s", flush=True)
    return 0


def main() -> int:
    """Run every case the fuzzingserver offers; 0 when the loop ran to its end."""
    parser = argparse.ArgumentParser(description="Our asyncio client under the suite's fuzzingserver.")
    parser.add_argument("--url", required=True, help="wss://127.0.0.1:PORT of the fuzzingserver")
    parser.add_argument("--agent", required=True, help="our name in the reports")
    # Above the suite's own limit (480 s for its slowest permessage-deflate cases).
    parser.add_argument("--case-timeout", type=float, default=600.0, metavar="SECONDS")
    parser.add_argument("--deflate-window-bits", type=int, default=CONFIG.deflate_window_bits, metavar="N")
    args = parser.parse_args()
    config = dataclasses.replace(CONFIG, deflate_window_bits=args.deflate_window_bits)
    return asyncio.run(_main(args.url.rstrip("/"), args.agent, args.case_timeout, config))


if __name__ == "__main__":
    sys.exit(main())
