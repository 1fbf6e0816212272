"""Fuzz the client's opening handshake: any reply bytes, in any reads, to our request with a fixed key."""

from __future__ import annotations

import atheris
from _deflate_oracle import agreement_of, generate, keepable
from _oracle import Watcher, check, split, transport_closed
from _samples import CLIENT_ACCEPT, CLIENT_KEY, HOST, reply_101

from sansio_wss import Cause, ClientConnection, Config, Opened, State

CHUNKS = (1, 2, 4, 16, 1 << 16)
SIZES = (256, 512, 1024, 16384)
PORTS = (443, 8443)


def run(data: bytes) -> Watcher:
    """Feed `data` as the server's reply; returns the watcher for the seed tests.

    Layout: integers from the end (Config, the last action, read boundaries),
    the reply bytes from the front; flags bit 3: we offer permessage-deflate with a window of
    9 + (bits 4-6) % 7; bit 7: the reply is a valid 101 with `Sec-WebSocket-Extensions` lines
    made by `_deflate_oracle.generate` from the rest.
    """
    fdp = atheris.FuzzedDataProvider(data)
    flags = fdp.ConsumeIntInRange(0, 255)
    config = Config(
        deflate=bool(flags & 8),
        deflate_window_bits=9 + (flags >> 4 & 7) % 7,
        send_origin=bool(flags & 1),
        origin="https://app.example.com" if flags & 2 else None,
        handshake_timeout=None if flags & 4 else 10.0,
        max_msg_chunks=CHUNKS[fdp.ConsumeIntInRange(0, len(CHUNKS) - 1)],
        max_handshake_size=SIZES[fdp.ConsumeIntInRange(0, len(SIZES) - 1)],
    )
    port = PORTS[fdp.ConsumeIntInRange(0, len(PORTS) - 1)]
    ending = fdp.ConsumeIntInRange(0, 3)
    cuts = [fdp.ConsumeIntInRange(1, 1024) for _ in range(fdp.ConsumeIntInRange(0, 7))]
    answers: list[str] | None = None
    if flags & 128:
        answers = generate(fdp)
        extra = "".join(f"Sec-WebSocket-Extensions: {value}\r\n" for value in answers)
        payload = reply_101(extra=extra.encode("utf-8", "surrogatepass"))
    else:
        payload = fdp.ConsumeBytes(fdp.remaining_bytes())

    now = 50.0
    conn = ClientConnection(HOST, now, port=port, config=config, key=CLIENT_KEY)
    watch = Watcher(conn, server=False)
    _, request = watch.step()
    check(f"\r\nSec-WebSocket-Key: {CLIENT_KEY}\r\n".encode() in request, "our request lacks the key")
    check(request.endswith(b"\r\n\r\n") and conn.state is State.CONNECTING, "request queued at once")
    for chunk in split(payload, cuts):
        now += 0.25
        watch.feed(chunk, now)
        watch.step()
    if isinstance(watch.opened, Opened):
        lines = watch.opened.response.split(b"\r\n")[1:]
        fields = [line.partition(b":") for line in lines]
        accepts = [v.strip(b" \t") for name, _, v in fields if name.lower() == b"sec-websocket-accept"]
        check(accepts == [CLIENT_ACCEPT.encode()], lambda: f"opened on accept {accepts!r}")
        found = [
            v.strip(b" \t").decode("latin-1")
            for n, _, v in fields
            if n.lower() == b"sec-websocket-extensions"
        ]
        kept = keepable(found, config.deflate_window_bits) if config.deflate and found else None
        check(not found or kept is not None, lambda: f"opened on {found!r} (deflate {config.deflate})")
        agreed_text = watch.opened.extensions
        agreed = agreement_of([agreed_text]) if agreed_text else None
        same = (agreed and agreed.terms()) == (kept and kept.terms())
        check(same, lambda: f"Opened.extensions {agreed_text!r} for {found!r}")
    elif answers is not None and all(_printable(value) for value in answers):
        closed = watch.closed
        check(closed is not None, "a valid 101 neither opened nor failed")
        assert closed is not None
        kept = keepable(answers, config.deflate_window_bits) if config.deflate else None
        whole = closed.cause is not Cause.CHUNK_LIMIT and len(payload) <= config.max_handshake_size
        check(not whole or kept is None, lambda: f"failed on {answers!r}, which we keep as {kept}: {closed}")
        check(not whole or closed.cause is Cause.HANDSHAKE_FAILED, lambda: f"{answers!r}: {closed}")
    if ending == 1:
        conn.receive_eof(now)
    elif ending == 2:
        timer = conn.get_timer()
        conn.handle_timer(now + 20.0 if timer is None else timer)
    elif ending == 3:
        conn.transport_failed(now, "fuzz")
    watch.step()
    if watch.closed is not None and not transport_closed(conn):
        conn.handle_timer(now + 1000.0)
        watch.step()
        check(transport_closed(conn), "lingering does not end at close_timeout")
    return watch


def _printable(value: str) -> bool:
    """A header value the HTTP parser reads back unchanged (no CR, LF, controls, non-ASCII)."""
    return (
        value.isascii() and value.strip(" \t") == value and all(c == "\t" or " " <= c < "\x7f" for c in value)
    )


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the OSS-Fuzz entry point's name)
    """The atheris entry point."""
    run(data)


if __name__ == "__main__":
    from _engine import fuzz

    fuzz(TestOneInput)
