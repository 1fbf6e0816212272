"""The blocking adapter's harness: its server in a thread, our client as plain calls."""

from __future__ import annotations

import contextlib
import functools
import itertools
import queue
import threading
import time
from collections.abc import Callable, Sequence

from adapter_helpers import REGISTER, client_domain
from harness import (
    BURST,
    CLOSE_ME,
    FLOOD,
    FLOOD_ME,
    LATE,
    LIMIT,
    RAISE_ME,
    TLS,
    Exchange,
    Harness,
    Message,
    Running,
    _Dialling,
    _join,
    _record,
    _Serving,
    _thread,
    _uri,
)

from sansio_wss import (
    Config,
    ConnectionClosedError,
)
from sansio_wss.adapters import sync as wss_sync


class SyncHarness(Harness):
    name = "sync"
    logger = "sansio_wss.adapters.sync"

    def _start(self, asked: _Serving, ready: queue.Queue[Running | BaseException]) -> Callable[[], None]:
        holder: list[Running] = []

        def handler(conn: wss_sync.Connection) -> None:
            """The suite's server handler for the blocking adapter (see `Mode`)."""
            running = holder[0]
            try:
                if asked.mode in ("flood", "burst"):
                    running.flood_started.append(time.monotonic())
                    for _ in itertools.repeat(None) if asked.mode == "flood" else range(BURST):
                        conn.send(FLOOD)
                    return  # the adapter closes the connection
                if asked.mode == "late":
                    time.sleep(LATE)
                for message in conn:
                    running.seen.append(message)
                    if RAISE_ME in message.message:
                        raise RuntimeError("the handler fails, as asked")
                    if FLOOD_ME in message.message:
                        running.flood_started.append(time.monotonic())
                        while True:
                            conn.send(FLOOD)
                    conn.send(message.message)
                    if CLOSE_ME in message.message:
                        conn.close()
            except ConnectionClosedError:
                pass
            assert conn.wait_closed(LIMIT)
            _record(running, conn.closed)

        try:
            server = wss_sync.serve(handler, asked.listeners, tls=asked.tls, config=asked.config)
        except BaseException as exc:
            ready.put(exc)
            return lambda: None
        holder.append(Running(server.addresses))

        def run() -> None:
            with server:  # closed once more on the way out: nothing more happens
                ready.put(holder[0])
                server.serve_forever()

        thread = _thread(run, "harness sync server")

        def stop() -> None:
            server.close()
            _join(thread)

        return stop

    def _exchange(self, messages: Sequence[bytes], asked: _Dialling) -> Exchange:
        local = (asked.host, 0)
        with wss_sync.connect(
            asked.uri, config=asked.config, tls=asked.tls, local_address=local, timeout=LIMIT
        ) as conn:
            assert conn.opened is not None
            time.sleep(asked.idle)
            replies: list[Message] = []
            with contextlib.suppress(ConnectionClosedError):
                for message in messages:
                    conn.send(message)
                    replies.append(conn.recv(timeout=LIMIT))
                if asked.close:
                    conn.close()
                while True:
                    replies.append(conn.recv(timeout=LIMIT))
            assert conn.wait_closed(LIMIT)
            raised: list[Exception] = []
            for call in (conn.recv, functools.partial(conn.send, REGISTER)):
                try:
                    call()
                except Exception as exc:
                    raised.append(exc)
        assert conn.closed is not None
        return Exchange(replies, conn.closed, conn.opened, conn.local_address, conn.remote_address, raised)

    def send_together(self, port: int, batches: Sequence[Sequence[bytes]]) -> list[Message]:
        uri = _uri("127.0.0.1", port)
        with wss_sync.connect(uri, tls=client_domain(), timeout=LIMIT) as conn:

            def send(batch: Sequence[bytes]) -> None:
                for message in batch:
                    conn.send(message)

            senders = [threading.Thread(target=send, args=(batch,)) for batch in batches]
            for thread in senders:
                thread.start()
            for thread in senders:
                _join(thread)
            time.sleep(LATE)
            return [conn.recv(timeout=LIMIT) for batch in batches for _ in batch]

    def connect_error(self, uri: str, *, config: Config | None = None, tls: TLS = None) -> Exception:
        try:
            conn = wss_sync.connect(uri, config=config, tls=tls, timeout=LIMIT)
        except Exception as exc:
            return exc
        conn.close()
        raise AssertionError("connect succeeded")
