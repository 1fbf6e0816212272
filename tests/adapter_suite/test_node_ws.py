"""Interop with Node's `ws` package (installed by `make test` into .node/): its client against our
asyncio server, our asyncio client against its server."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil

from adapter_helpers import OK, REGISTER, certs, client_domain, server_domain

from sansio_wss import SipMessageReceived
from sansio_wss.adapters import asyncio as wss

HERE = pathlib.Path(__file__).resolve().parent
NODE_MODULES = HERE.parents[1] / ".node" / "node_modules"


def _node_env() -> dict[str, str]:
    assert shutil.which("node"), "node is not installed"
    assert (NODE_MODULES / "ws").is_dir(), "Node's ws is missing: run `make node-ws`"
    return {**os.environ, "NODE_PATH": str(NODE_MODULES)}


async def _node(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "node", str(HERE / "ws_peer.js"), *args, env=_node_env(), stdout=asyncio.subprocess.PIPE
    )


def test_node_client_against_our_server() -> None:
    async def main() -> None:
        seen: list[object] = []

        async def handler(conn: wss.Connection) -> None:
            async for message in conn:
                seen.append(message)
                await conn.send(OK)

        async with await wss.serve(handler, [("127.0.0.1", 0)], tls=[server_domain()]) as server:
            port = server.addresses[0][1]
            node = await _node("client", f"wss://localhost:{port}/ws", certs().ca, REGISTER.decode(), "3")
            out, _ = await node.communicate()
        lines = out.decode().splitlines()
        assert len(lines) == 4, lines
        assert all(line.startswith('reply text "SIP/2.0 200 OK') for line in lines[:3]), lines
        assert lines[3] == "closed 1000", lines
        assert seen == [SipMessageReceived(REGISTER, False)] * 3

    asyncio.run(asyncio.wait_for(main(), 30))


def test_our_client_against_node_server() -> None:
    async def main() -> None:
        node = await _node("server", certs().server, OK.decode())
        assert node.stdout is not None
        first = (await node.stdout.readline()).decode().split()
        assert first[0] == "port", first
        try:
            conn = await wss.connect(f"wss://localhost:{first[1]}/", tls=client_domain())
            for _ in range(3):
                await conn.send(REGISTER)
                assert await conn.recv() == SipMessageReceived(OK, False)
            await conn.close()
            assert conn.closed is not None and conn.closed.clean
            got = [(await node.stdout.readline()).decode().strip() for _ in range(4)]
            assert got[:3] == [got[0]] * 3 and got[0].startswith("got text "), got
            assert got[3] == "closed 1000", got
        finally:
            node.kill()
            await node.wait()

    asyncio.run(asyncio.wait_for(main(), 30))
