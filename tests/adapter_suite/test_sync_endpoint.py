"""The blocking adapter's endpoint beyond the shared suite: many threads at once, the bound on its
queue, and what `recv()`, `send()` and `listen()` do once it is closed."""

from __future__ import annotations

import collections
import threading
import time

import pytest
from adapter_helpers import OK, REGISTER, client_domain, server_domain, wait_for

from sansio_wss import ConnectionClosedError, SipMessageReceived
from sansio_wss.adapters import sync as wss


def request(n: int, size: int = 0) -> bytes:
    return b"MESSAGE sip:bob@example.com SIP/2.0\r\nCSeq: %d MESSAGE\r\nContent-Length: %d\r\n\r\n%s" % (
        n,
        size,
        b"x" * size,
    )


def echo(endpoint: wss.Endpoint) -> None:
    """Answer every message over the flow it came on, until the endpoint is closed."""
    for incoming in endpoint:
        endpoint.send(incoming.event.message.replace(b"MESSAGE sip:", b"ANSWER sip:"), incoming.flow.flow_id)


def test_many_threads_send_and_receive_through_one_endpoint() -> None:
    senders, per_sender = 8, 25
    with (
        wss.Endpoint(tls=[server_domain()]) as first,
        wss.Endpoint(tls=[server_domain()]) as second,
        wss.Endpoint(tls=[client_domain()]) as phone,
    ):
        ports = [first.listen("127.0.0.1", 0)[1], second.listen("127.0.0.1", 0)[1]]
        echoes = [threading.Thread(target=echo, args=(ep,)) for ep in (first, first, second, second)]
        answers: collections.Counter[bytes] = collections.Counter()
        lock = threading.Lock()

        def take() -> None:
            for _ in range(senders * per_sender // 2):
                incoming = phone.recv(timeout=5)
                with lock:
                    answers[incoming.event.message] += 1

        def send(sender: int) -> None:
            for i in range(per_sender):
                phone.send(request(sender * 1000 + i), ("127.0.0.1", ports[i % 2]))

        takers = [threading.Thread(target=take) for _ in range(2)]
        sending = [threading.Thread(target=send, args=(s,)) for s in range(senders)]
        for thread in echoes + takers + sending:
            thread.start()
        for thread in sending + takers:
            thread.join(10)
            assert not thread.is_alive()
        expected = {
            request(s * 1000 + i).replace(b"MESSAGE sip:", b"ANSWER sip:"): 1
            for s in range(senders)
            for i in range(per_sender)
        }
        assert answers == expected
        assert sorted(f.remote[1] for f in phone.flows) == sorted(ports)
        total = senders * per_sender
        assert (phone.stats.connected, phone.stats.messages_out, phone.stats.messages_in) == (2, total, total)
        assert first.stats.messages_in + second.stats.messages_in == total
        assert (first.stats.accepted, second.stats.accepted) == (1, 1)
        for endpoint in (first, second):
            endpoint.close()
        for thread in echoes:
            thread.join(5)
            assert not thread.is_alive()


def test_the_queue_holds_at_most_max_queue() -> None:
    """White box: the queue never grows past `max_queue`; a paused connection holds the rest of
    its last read, and reads on once the queue is half empty."""
    max_queue, count = 3, 60
    with (
        wss.Endpoint(tls=[server_domain()], max_queue=max_queue) as proxy,
        wss.Endpoint(tls=[client_domain()]) as phone,
    ):
        _, port = proxy.listen("127.0.0.1", 0)
        sender = threading.Thread(
            target=lambda: [phone.send(request(n, 20_000), ("127.0.0.1", port)) for n in range(count)]
        )
        sender.start()
        assert wait_for(lambda: len(proxy._incoming) == max_queue)
        time.sleep(0.1)
        assert len(proxy._incoming) == max_queue
        (held,) = proxy._held.values()  # the connection's: not read from meanwhile
        assert 1 <= len(held) <= 256 * 1024 // 20_000 + 1  # what one read carried, at most
        received = []
        for _ in range(count):
            received.append(proxy.recv(timeout=5).event.message)
            assert len(proxy._incoming) <= max_queue
        assert received == [request(n, 20_000) for n in range(count)]
        sender.join(5)
        assert proxy._held == {}


def test_after_close() -> None:
    with wss.Endpoint(tls=[server_domain()]) as proxy, wss.Endpoint(tls=[client_domain()]) as phone:
        _, port = proxy.listen("127.0.0.1", 0)
        iterated: list[bytes] = []
        reader = threading.Thread(target=lambda: iterated.extend(i.event.message for i in phone))
        reader.start()
        phone.send(REGISTER, ("127.0.0.1", port))
        phone.send(REGISTER, ("127.0.0.1", port))
        flow = proxy.recv().flow
        proxy.recv()
        proxy.send(OK, flow.flow_id)
        assert wait_for(lambda: iterated == [OK])
        proxy.close()
        proxy.close()  # again: nothing more happens
        phone.close(4000, "done")
        reader.join(5)
        assert not reader.is_alive() and iterated == [OK]
        for endpoint, code, reason in ((proxy, 1001, "going away"), (phone, 4000, "done")):
            with pytest.raises(ConnectionClosedError) as closed:
                endpoint.recv(timeout=1)
            assert (closed.value.code, closed.value.reason) == (code, reason)
            with pytest.raises(ConnectionClosedError):
                endpoint.send(REGISTER, ("127.0.0.1", port))
            with pytest.raises(ConnectionClosedError):
                endpoint.listen("127.0.0.1", 0)
            assert (endpoint.flows, endpoint.addresses, endpoint.stats.open) == ([], [], 0)


def test_messages_taken_after_close() -> None:
    """`close()` keeps what was received: `recv()` gives it, then raises."""
    with wss.Endpoint(tls=[server_domain()]) as proxy, wss.Endpoint(tls=[client_domain()]) as phone:
        _, port = proxy.listen("127.0.0.1", 0)
        for _ in range(3):
            phone.send(REGISTER, ("127.0.0.1", port))
        assert wait_for(lambda: proxy.stats.messages_in == 3)
        proxy.close()
        assert [proxy.recv(timeout=1).event for _ in range(3)] == [SipMessageReceived(REGISTER, False)] * 3
        with pytest.raises(ConnectionClosedError):
            proxy.recv(timeout=1)


def test_max_queue_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        wss.Endpoint(max_queue=0)
