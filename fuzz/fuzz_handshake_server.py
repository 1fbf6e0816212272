"""Fuzz the server's opening handshake: any bytes, any read boundaries, varied Config and accept/reject."""

from __future__ import annotations

import atheris
from _deflate_oracle import agreement_of, allowed_answer, candidates, generate, honoured
from _oracle import Watcher, check, split, transport_closed
from _samples import CHROME_REQUEST

from sansio_wss import Config, HandshakeRequest, Opened, ServerConnection, State, TransportAction

ORIGINS = (None, frozenset({"https://app.example.com"}), frozenset({"null", "https://other.example"}))
RESOURCES = (None, frozenset({"/ws"}), frozenset({"/", "/sip"}))
CHUNKS = (1, 2, 4, 16, 1 << 16)
SIZES = (256, 512, 1024, 16384)
PLAIN_REQUEST = CHROME_REQUEST.replace(
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", b""
)


def config_from(fdp: atheris.FuzzedDataProvider) -> Config:
    """A Config with the server-side knobs chosen by the fuzzer; flags bit 3: permessage-deflate,
    with a window of 9 + (bits 4-6) % 7."""
    flags = fdp.ConsumeIntInRange(0, 255)
    return Config(
        deflate=bool(flags & 8),
        deflate_window_bits=9 + (flags >> 4 & 7) % 7,
        require_origin=bool(flags & 1),
        auto_accept=bool(flags & 2),
        allowed_origins=ORIGINS[fdp.ConsumeIntInRange(0, len(ORIGINS) - 1)],
        resources=RESOURCES[fdp.ConsumeIntInRange(0, len(RESOURCES) - 1)],
        max_msg_chunks=CHUNKS[fdp.ConsumeIntInRange(0, len(CHUNKS) - 1)],
        max_handshake_size=SIZES[fdp.ConsumeIntInRange(0, len(SIZES) - 1)],
        handshake_timeout=None if flags & 4 else 10.0,
    )


def run(data: bytes) -> Watcher:
    """Feed `data` to a server; returns the watcher for the seed tests.

    Layout: integers from the end (Config, the verdict for a HandshakeRequest,
    the last action, read boundaries), the request bytes from the front; or, when bit 7 of the
    Config flags is set, Chrome's request with `Sec-WebSocket-Extensions` lines made by
    `_deflate_oracle.generate` from the rest.
    """
    fdp = atheris.FuzzedDataProvider(data)
    flags = data[-1] if data else 0
    config = config_from(fdp)
    verdict = fdp.ConsumeIntInRange(0, 255)  # 0..127 accept, else reject with 400 + verdict - 128
    ending = fdp.ConsumeIntInRange(0, 3)
    cuts = [fdp.ConsumeIntInRange(1, 1024) for _ in range(fdp.ConsumeIntInRange(0, 7))]
    if flags & 128:
        lines = "".join(f"Sec-WebSocket-Extensions: {value}\r\n" for value in generate(fdp))
        payload = PLAIN_REQUEST[:-2] + lines.encode("utf-8", "surrogatepass") + b"\r\n"
    else:
        payload = fdp.ConsumeBytes(fdp.remaining_bytes())

    now = 1000.0
    conn = ServerConnection(now, config)
    watch = Watcher(conn, server=True)
    watch.step()
    for chunk in split(payload, cuts):
        now += 0.25
        watch.feed(chunk, now)
        events, _ = watch.step()
        for event in events:
            if not isinstance(event, HandshakeRequest):
                continue
            check(not config.auto_accept, "HandshakeRequest with auto_accept on")
            check(conn.request is event, "request property")
            if verdict < 128:
                conn.accept(now)
                watch.step()
                check(conn.state is State.OPEN, "accept() did not open")
            else:
                status = 400 + verdict - 128
                conn.reject(status, now)
                watch.step()
                closed = watch.closed
                check(closed is not None and closed.status == status, "reject() did not close with status")
    if watch.opened is not None:
        extensions(watch.opened, config)
    if ending == 1:
        conn.receive_eof(now)
    elif ending == 2:
        timer = conn.get_timer()
        conn.handle_timer(now + 20.0 if timer is None else timer)
    elif ending == 3:
        conn.transport_failed(now, "fuzz")
    watch.step()
    if ending:
        check(watch.closed is not None or conn.state is State.OPEN or timer_free(conn), "still connecting")
    if watch.closed is not None and conn.transport_action is TransportAction.HALF_CLOSE:
        conn.handle_timer(now + 1000.0)
        watch.step()
        check(transport_closed(conn), "lingering does not end at close_timeout")
    return watch


def extensions(opened: Opened, config: Config) -> None:
    """The 101 takes the first offer we can honour (none when deflate is off), and answers it as
    RFC 7692 allows."""
    offers = [value for name, value in opened.headers if name.lower() == "sec-websocket-extensions"]
    offer = honoured(offers) if config.deflate else None
    loose = candidates(offers) if config.deflate else None
    lines = opened.response.split(b"\r\n")[1:]
    fields = [line.partition(b":") for line in lines]
    answers = [v.strip(b" \t").decode() for n, _, v in fields if n.lower() == b"sec-websocket-extensions"]
    check(answers == ([opened.extensions] if opened.extensions else []), "Opened.extensions is not the 101's")
    if loose is not None:  # a malformed list: declining is fine, an answer must suit some reading
        if answers:
            answer = agreement_of(answers)
            window = config.deflate_window_bits
            fits = answer is not None and any(allowed_answer(o, answer, window) is None for o in loose)
            check(fits, lambda: f"answered {answers!r} to the malformed {offers!r}")
        return
    if offer is None:
        check(not answers, lambda: f"answered {answers!r} to {offers!r} (deflate {config.deflate})")
        return
    answer = agreement_of(answers)
    check(answer is not None, lambda: f"offer {offers!r} taken as {offer}, answered {answers!r}")
    assert answer is not None
    why = allowed_answer(offer, answer, config.deflate_window_bits)
    check(
        why is None,
        lambda: f"{why}: offer {offers!r}, answer {answers!r}, window {config.deflate_window_bits}",
    )


def timer_free(conn: ServerConnection) -> bool:
    """A connection with no handshake deadline may wait forever for its request."""
    return conn.config.handshake_timeout is None


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the OSS-Fuzz entry point's name)
    """The atheris entry point."""
    run(data)


if __name__ == "__main__":
    from _engine import fuzz

    fuzz(TestOneInput)
