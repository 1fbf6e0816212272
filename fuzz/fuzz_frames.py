"""Fuzz the frame reader of open connections, both roles, and round-trip messages through encode and send."""

from __future__ import annotations

import atheris
from _oracle import OracleError, Watcher, check, split, valid_utf8
from _samples import CLIENT_KEY, HOST

from sansio_wss import (
    ClientConnection,
    Config,
    PingReceived,
    ServerConnection,
    State,
)
from sansio_wss import sip as sip_layer
from sansio_wss._frames import BINARY, CONTINUATION, PING, TEXT, encode

SIZES = (1, 125, 126, 200, 65535, 65536, 70000)
CHUNKS = (1, 2, 4, 64, 1 << 16)
REPEATS = (1, 1, 7, 70)  # 70 times a few KiB: past 64 KiB, the 64-bit length and the long unmask path


def open_pair(config: Config) -> tuple[Watcher, Watcher]:
    """Our client and our server, upgraded through a real handshake with each other."""
    client = Watcher(ClientConnection(HOST, 0.0, config=config, key=CLIENT_KEY), server=False)
    server = Watcher(ServerConnection(0.0, config), server=True)
    _, request = client.step()
    server.feed(request, 0.0)
    _, reply = server.step()
    client.feed(reply, 0.0)
    client.step()
    check(client.conn.state is State.OPEN and server.conn.state is State.OPEN, "handshake did not open")
    return client, server


def stream(fdp: atheris.FuzzedDataProvider, config: Config) -> Watcher:
    """Fuzzed post-upgrade bytes, in fuzzed reads, to one open endpoint."""
    to_server = fdp.ConsumeBool()
    cuts = [fdp.ConsumeIntInRange(1, 300) for _ in range(fdp.ConsumeIntInRange(0, 15))]
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    client, server = open_pair(config)
    watch = server if to_server else client
    now = 1.0
    for chunk in split(payload, cuts):
        now += 0.5
        watch.feed(chunk, now)
        events, _ = watch.step()
        pings = [e.payload for e in events if isinstance(e, PingReceived)]
        if pings and not watch.wire.close_sent:
            pongs = [p for op, p in watch.wire.frames if op == 0xA]
            check(pongs[-len(pings) :] == pings, "a Ping was not answered by its Pong")
    watch.conn.receive_eof(now)
    watch.step()
    return watch


def round_trip(fdp: atheris.FuzzedDataProvider) -> None:
    """A random message, fragmented and masked as the fuzzer says, reaches the server intact."""
    config = Config(max_msg_chunks=1 << 16, max_message_size=1 << 22)
    client, server = open_pair(config)
    fragments = fdp.ConsumeIntInRange(1, 8)
    as_text = fdp.ConsumeBool()
    ping_between = fdp.ConsumeBool()
    reads = [fdp.ConsumeIntInRange(1, 512) for _ in range(fdp.ConsumeIntInRange(0, 7))]
    masks = [fdp.ConsumeBytes(4).ljust(4, b"\0") for _ in range(fragments + 1)]
    cuts = sorted(fdp.ConsumeIntInRange(0, 4096) for _ in range(fragments - 1))
    repeat = REPEATS[fdp.ConsumeIntInRange(0, len(REPEATS) - 1)]
    message = fdp.ConsumeBytes(fdp.remaining_bytes()) * repeat

    opcode = TEXT if as_text else BINARY
    bounds = [0, *(min(c, len(message)) for c in cuts), len(message)]
    frames = []
    for i in range(fragments):
        part = message[bounds[i] : bounds[i + 1]]
        frames.append(encode(opcode if i == 0 else CONTINUATION, part, masks[i], fin=i == fragments - 1))
        if ping_between and i == 0:
            frames.append(encode(PING, b"between", masks[-1]))
    wire = b"".join(frames)
    for chunk in split(wire, reads):
        server.feed(chunk, 1.0)
    events, _ = server.step()
    if as_text and not valid_utf8(message):
        closed = server.closed
        check(closed is not None and closed.code == 1007, "invalid UTF-8 text not failed with 1007")
        return
    expected, reply = sip_layer.receive(message, not as_text)
    wanted = ([PingReceived(b"between")] if ping_between and fragments > 1 else []) + [expected]
    if ping_between and fragments == 1:
        wanted.append(PingReceived(b"between"))
    check(events == wanted, lambda: f"round trip gave {events!r}")
    sent = server.wire.frames
    if reply is not None:
        check((opcode, reply) in sent, "keepalive not answered in the same frame type")

    # And back: what one of our endpoints sends, the other receives unchanged.
    for sender, receiver in ((server, client), (client, server)):
        sender.conn.send(message, 2.0)
        _, data = sender.step()
        receiver.feed(data, 2.0)
        events, _ = receiver.step()
        binary = not sip_layer.is_text(message)
        if events != [sip_layer.receive(message, binary)[0]]:
            raise OracleError(f"send() round trip gave {events!r}")


def run(data: bytes) -> Watcher | None:
    """Pick a mode: raw bytes to an open endpoint with varied limits (returns its watcher) or a round trip."""
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeIntInRange(0, 3) == 3:
        round_trip(fdp)
        return None
    config = Config(
        max_message_size=SIZES[fdp.ConsumeIntInRange(0, len(SIZES) - 1)],
        max_msg_chunks=CHUNKS[fdp.ConsumeIntInRange(0, len(CHUNKS) - 1)],
    )
    return stream(fdp, config)


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the OSS-Fuzz entry point's name)
    """The atheris entry point."""
    run(data)


if __name__ == "__main__":
    from _engine import fuzz

    fuzz(TestOneInput)
