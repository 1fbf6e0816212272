"""The test page in headless Chromium: it registers through `serve --app registrar` and gets its
own MESSAGE back, over the browser's own WebSocket, for each adapter.

The page is read through the DevTools protocol in real time (not `--dump-dom` with virtual
time, which runs the page's timers ahead while its WebSocket waits for the server)."""

from __future__ import annotations

import asyncio
import itertools
import json
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest
import websockets
from adapter_suite.adapter_helpers import certs
from proxies.real_proxies import nginx
from serve_helpers import served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--ignore-certificate-errors",
    "--remote-debugging-port=0",
)
READ = "document.getElementById('result').textContent + '\\n' + document.getElementById('log').textContent"
LIMIT = 30.0


def page_result(url: str) -> str:
    """The page's result line and log once its script has finished (or LIMIT has passed)."""
    assert CHROMIUM is not None, "chromium is not installed: `make chromium` installs Debian's"
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        browser = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert browser.stderr is not None
            devtools = ""
            while not devtools:
                line = browser.stderr.readline()
                assert line, "chromium exited before it listened for DevTools"
                found = re.search(r"DevTools listening on ws://([^/]+)/", line)
                devtools = found.group(1) if found else ""
            return asyncio.run(asyncio.wait_for(_read_page(devtools), LIMIT))
        finally:
            browser.kill()
            browser.communicate()


async def _read_page(devtools: str) -> str:
    target = ""
    while not target:  # the page's target appears once it starts loading
        with urllib.request.urlopen(f"http://{devtools}/json/list", timeout=LIMIT) as listing:
            pages = [t for t in json.load(listing) if t["type"] == "page" and t["url"].startswith("https:")]
        target = pages[0]["webSocketDebuggerUrl"] if pages else ""
        await asyncio.sleep(0.05)
    async with websockets.connect(target, max_size=None) as cdp:
        for number in itertools.count(1):
            call = {"expression": READ, "returnByValue": True}
            await cdp.send(json.dumps({"id": number, "method": "Runtime.evaluate", "params": call}))
            while (reply := json.loads(await cdp.recv())).get("id") != number:
                pass
            text = str(reply.get("result", {}).get("result", {}).get("value", ""))
            if text.startswith(("PASS", "FAIL")):
                return text
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


DEFLATED = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
"""What we answer Chromium's offer (`permessage-deflate; client_max_window_bits`) with."""


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
@pytest.mark.parametrize("adapter", ["asyncio", "trio", "sync"])
def test_the_page_registers_and_gets_its_message_back(adapter: str, deflate: bool) -> None:
    with served("--adapter", adapter, "--app", "registrar", *(["--deflate"] if deflate else [])) as server:
        started = time.monotonic()
        text = page_result(f"https://127.0.0.1:{server.port}/")
    assert text.startswith("PASS: registered as sip:page-"), text
    for line in (
        f"open, subprotocol sip, extensions '{DEFLATED if deflate else ''}'",
        "<<< SIP/2.0 200 OK",
        ">>> MESSAGE sip:page-",
        "<<< MESSAGE sip:",
        "our MESSAGE came back: hello ",
    ):
        assert line in text, text
    assert time.monotonic() - started < LIMIT


@pytest.mark.parametrize("adapter", ["asyncio", "trio", "sync"])
def test_the_page_through_nginx(adapter: str, tmp_path: pathlib.Path) -> None:
    """Chromium loads the page from nginx over TLS; nginx proxies the page and the WebSocket to a
    plain `serve` listener that believes nginx's X-Forwarded-For (the README's configuration)."""
    listen = "ws://127.0.0.1:{port}?forwarded=x-forwarded-for"
    with served("--adapter", adapter, "--trusted-proxy", "127.0.0.1", listen=listen) as server:
        assert server.banner[0].startswith(
            f"listening on ws://127.0.0.1:{server.port}/ (x-forwarded-for from"
        )
        with nginx(tmp_path, server.port, certs().server) as front:
            text = page_result(f"https://localhost:{front.port}/")
        code, out, _ = server.stop()
    assert text.startswith("PASS: registered as sip:page-"), text
    assert "our MESSAGE came back: hello " in text, text
    assert code == 0 and "'accepted': 1," in out  # the WebSocket (the page and favicon are plain GETs)
