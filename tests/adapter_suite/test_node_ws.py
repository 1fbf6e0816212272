"""Interop with Node's `ws` package (installed by `make node-ws` into .node/), for each adapter:
its client against our server, our client against its server; each side closing first."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pathlib
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator

import pytest
from adapter_helpers import REGISTER, certs
from harness import ADAPTERS, CLOSE_ME, LIMIT, harness_for

from sansio_wss import Cause, Config, SipMessageReceived

HERE = pathlib.Path(__file__).resolve().parent
NODE_MODULES = HERE.parents[1] / ".node" / "node_modules"
ORIGIN = "https://app.example.com"

BINARY_SIP = (
    b"MESSAGE sip:bob@example.com SIP/2.0\r\nCSeq: 4 MESSAGE\r\nContent-Length: 3\r\n\r\n\xff\xfe\x00"
)
BIG = (
    b"MESSAGE sip:bob@example.com SIP/2.0\r\nCSeq: 5 MESSAGE\r\nContent-Length: 60000\r\n\r\n" + b"y" * 60_000
)
BYE = REGISTER.replace(b"CSeq: 1", b"CSeq: 6").replace(b"Content-Length", CLOSE_ME + b"\r\nContent-Length")
MESSAGES = [REGISTER.replace(b"CSeq: 1", b"CSeq: %d" % n) for n in (1, 2, 3)] + [BINARY_SIP, BIG]
"""Three REGISTERs (told apart by CSeq, to check order), a binary message and a 60 KB one."""
OUR_CLOSE = {"event": "close", "code": 1000, "reason": ""}
"""What Node reports of our Close frame, whoever closed first: our close() and our reply to the
peer's Close both carry 1000 and no reason (a reply need not echo the reason, RFC 6455 5.5.1)."""


def _binary(message: bytes) -> bool:
    """Whether `message` travels as a binary message: BINARY_SIP is not UTF-8, so our send()
    makes it one, and Node is told to; the rest is text."""
    return message == BINARY_SIP


def _received(message: bytes) -> SipMessageReceived:
    return SipMessageReceived(message, _binary(message))


def _message_event(message: bytes) -> dict[str, object]:
    return {"event": "message", "binary": _binary(message), "data": base64.b64encode(message).decode()}


class Node:
    """A running ws_peer.js: the JSON events it prints, one at a time, and commands to it."""

    def __init__(self, *args: str) -> None:
        assert shutil.which("node"), "node is not installed"
        assert (NODE_MODULES / "ws").is_dir(), "Node's ws is missing: run `make node-ws`"
        self.process = subprocess.Popen(
            ["node", str(HERE / "ws_peer.js"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="node ws_peer.js reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def event(self) -> dict[str, object]:
        """The next event; fails after LIMIT seconds, or if node exits first."""
        try:
            line = self._lines.get(timeout=LIMIT)
        except queue.Empty:
            raise AssertionError(f"no event from node in {LIMIT} s") from None
        assert line is not None, f"node exited with {self.process.wait(LIMIT)}"
        event: dict[str, object] = json.loads(line)
        return event

    def send(self, message: bytes) -> None:
        self._command({"send": base64.b64encode(message).decode(), "binary": _binary(message)})

    def close(self, code: int, reason: str) -> None:
        self._command({"close": code, "reason": reason})

    def _command(self, command: dict[str, object]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def exit_code(self) -> int:
        return self.process.wait(LIMIT)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(LIMIT)
        self._reader.join(LIMIT)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def node(*args: str) -> Iterator[Node]:
    peer = Node(*args)
    try:
        yield peer
    finally:
        peer.stop()


def node_client(
    port: int, protocols: str = "sip", origin: str = ORIGIN
) -> contextlib.AbstractContextManager[Node]:
    return node("client", f"wss://localhost:{port}/ws", certs().ca, protocols, origin)


# ---------------------------------------------------------------- Node's client, our server


@pytest.mark.parametrize("closer", ["node", "ours"])
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_node_client_against_our_server(adapter: str, closer: str) -> None:
    # Node offers permessage-deflate by default: we accept `sip` and no extension.
    messages = MESSAGES + ([BYE] if closer == "ours" else [])
    with harness_for(adapter).serve() as server, node_client(server.port) as peer:
        assert peer.event() == {"event": "open", "protocol": "sip", "extensions": ""}
        for message in messages:
            peer.send(message)
        for message in messages:
            assert peer.event() == _message_event(message)
        if closer == "node":
            peer.close(1000, "bye")
        assert peer.event() == OUR_CLOSE
        assert peer.exit_code() == 0
        closed = server.wait_closed()
        assert server.seen == [_received(message) for message in messages]
        assert (closed.code, closed.clean) == (1000, True), closed
        if closer == "node":
            assert (closed.cause, closed.reason) == (Cause.PEER_CLOSED, "bye"), closed
        else:
            assert closed.cause is Cause.LOCAL_CLOSED, closed


REJECTIONS = {
    "400-no-sip": (400, "", ORIGIN, None),
    "403-no-origin": (403, "sip", "", None),
    "403-bad-origin": (403, "sip", ORIGIN, Config(allowed_origins=frozenset({"https://phone.example.com"}))),
}
"""Node's client offering no subprotocol, sending no Origin, or one outside allowed_origins:
(the status our server answers, the protocols and Origin Node sends, the server's Config)."""


@pytest.mark.parametrize("case", list(REJECTIONS))
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_node_client_rejected(adapter: str, case: str) -> None:
    status, protocols, origin, config = REJECTIONS[case]
    with (
        harness_for(adapter).serve(config=config) as server,
        node_client(server.port, protocols, origin) as peer,
    ):
        assert peer.event() == {"event": "unexpected-response", "status": status}
        assert peer.exit_code() == 0
        assert server.seen == [] and server.closed == []


# ---------------------------------------------------------------- our client, Node's server


@pytest.mark.parametrize("closer", ["node", "ours"])
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_our_client_against_node_server(adapter: str, closer: str) -> None:
    messages = MESSAGES + ([BYE] if closer == "node" else [])
    with node("server", certs().server) as peer:
        listening = peer.event()
        assert listening["event"] == "listening", listening
        port = listening["port"]
        assert isinstance(port, int)
        result = harness_for(adapter).exchange(port, messages, close=closer == "ours")
        assert result.replies == [_received(message) for message in messages]
        closed = result.closed
        assert (closed.code, closed.clean) == (1000, True), closed
        if closer == "node":
            assert (closed.cause, closed.reason) == (Cause.PEER_CLOSED, "done"), closed
        else:
            assert closed.cause is Cause.LOCAL_CLOSED, closed
        assert peer.event() == {
            "event": "connection",
            "protocol": "sip",
            "offered": "sip",
            "origin": f"https://127.0.0.1:{port}",
            "extensions": "",
        }
        for message in messages:
            assert peer.event() == _message_event(message)
        assert peer.event() == OUR_CLOSE


# ---------------------------------------------------------------- permessage-deflate both ways

DEFLATE_MESSAGES = [
    *MESSAGES,
    REGISTER.replace(b"Content-Length: 0", b"X-Pad: " + b"ws " * 4000 + b"\r\nContent-Length: 0"),
]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_node_client_with_deflate_against_our_server(adapter: str) -> None:
    with harness_for(adapter).serve(config=Config(deflate=True)) as server, node_client(server.port) as peer:
        assert peer.event() == {"event": "open", "protocol": "sip", "extensions": "permessage-deflate"}
        for message in DEFLATE_MESSAGES:
            peer.send(message)
        for message in DEFLATE_MESSAGES:
            assert peer.event() == _message_event(message)
        peer.close(1000, "bye")
        assert peer.event() == OUR_CLOSE
        assert server.wait_closed().clean
        assert server.seen == [_received(message) for message in DEFLATE_MESSAGES]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_our_client_with_deflate_against_node_server(adapter: str) -> None:
    with node("server", certs().server, "deflate") as peer:
        port = peer.event()["port"]
        assert isinstance(port, int)
        result = harness_for(adapter).exchange(port, DEFLATE_MESSAGES, config=Config(deflate=True))
        assert result.opened.extensions.startswith("permessage-deflate")
        assert result.replies == [_received(message) for message in DEFLATE_MESSAGES]
        assert result.closed.clean
        assert peer.event()["extensions"] == "permessage-deflate"
