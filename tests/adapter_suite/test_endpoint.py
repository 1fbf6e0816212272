"""One endpoint suite (the transport level), each scenario run against every adapter's `Endpoint`:
flows, reuse and the TLS-domain check, shared dials, routes that cannot exist, several listeners,
statistics, backpressure, and a close that leaves nothing behind."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from adapter_helpers import OK, REGISTER, certs, client_domain, has_ipv6, server_domain, wait_for
from endpoint_harness import ENDPOINT_ADAPTERS, LIMIT, EndpointHandle, EndpointHarness, endpoint_harness

from sansio_wss import (
    Cause,
    Config,
    ConnectFailed,
    ConnectionClosedError,
    NoRoute,
    SipMessageReceived,
    TLSDomain,
)

LIMIT_SEND = 10.0  # 300 messages of 60 KB through TLS


@pytest.fixture(params=ENDPOINT_ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> EndpointHarness:
    """The adapter's endpoint harness (conftest.py checks that the test left no thread or socket)."""
    return endpoint_harness(request.param)


def numbered(n: int, size: int = 0) -> bytes:
    body = b"x" * size
    return b"MESSAGE sip:bob@example.com SIP/2.0\r\nCSeq: %d MESSAGE\r\nContent-Length: %d\r\n\r\n%s" % (
        n,
        size,
        body,
    )


def stats_of(endpoint: EndpointHandle) -> dict[str, object]:
    return endpoint.stats.as_dict()


def test_request_and_reply_over_one_reused_connection(adapter: EndpointHarness) -> None:
    with adapter.endpoint(tls=[server_domain()]) as proxy, adapter.endpoint(tls=[client_domain()]) as phone:
        _, port = proxy.listen("127.0.0.1", 0)
        assert proxy.addresses == [("127.0.0.1", port)]
        sent_flows = []
        for _ in range(3):
            sent = phone.send(REGISTER, ("localhost", port))
            sent_flows.append(sent)
            incoming = proxy.recv()
            assert incoming.event == SipMessageReceived(REGISTER, False)
            assert incoming.flow.accepted and incoming.flow.listener == ("127.0.0.1", port)
            assert incoming.flow.remote == sent.listener  # the phone's side of the same connection
            proxy.send(OK, incoming.flow.flow_id)  # a reply goes back over its flow
            answer = phone.recv()
            assert answer.event == SipMessageReceived(OK, False)
            assert answer.flow == sent
        assert {f.flow_id for f in sent_flows} == {1}
        (outbound,) = phone.flows
        assert (outbound.remote, outbound.accepted) == (("127.0.0.1", port), False)
        assert outbound.tls_domain == "client"
        (accepted,) = proxy.flows
        assert (accepted.remote, accepted.accepted, accepted.tls_domain) == (outbound.listener, True, None)
        phone.send(REGISTER, f"sip:proxy@localhost:{port};transport=wss")
        phone.send(REGISTER, f"wss://127.0.0.1:{port}/ws")
        for _ in range(2):
            assert proxy.recv().flow == accepted
        assert len(phone.flows) == 1
        assert stats_of(phone) == {
            "accepted": 0,
            "connected": 1,
            "open": 1,
            "failed": {},
            "messages_in": 3,
            "messages_out": 5,
            "bytes_in": 3 * len(OK),
            "bytes_out": 5 * len(REGISTER),
        }
        assert stats_of(proxy) == {
            "accepted": 1,
            "connected": 0,
            "open": 1,
            "failed": {},
            "messages_in": 5,
            "messages_out": 3,
            "bytes_in": 5 * len(REGISTER),
            "bytes_out": 3 * len(OK),
        }
        proxy.close()
        assert wait_for(lambda: not phone.flows)
        assert stats_of(proxy)["open"] == 0 and proxy.flows == []
        assert phone.stats.open == 0 and phone.stats.failed == {}  # 1001 is a clean close


def by_name_and_by_ip() -> list[TLSDomain]:
    return [
        client_domain(name="by-name", names=frozenset({"localhost"})),
        client_domain(name="by-ip", names=frozenset({"127.0.0.1"})),
    ]


@pytest.mark.parametrize("check", [False, True], ids=["reuse-any", "cert-check"])
def test_cert_check_on_reuse(adapter: EndpointHarness, check: bool) -> None:
    """OpenSIPS's cert_check_on_conn_reusage: with it, a connection made with the client domain
    for `localhost` does not carry a message for `127.0.0.1`, whose domain is another."""
    config = Config(cert_check_on_conn_reuse=check)
    with (
        adapter.endpoint(tls=[server_domain()]) as proxy,
        adapter.endpoint(tls=by_name_and_by_ip(), config=config) as phone,
    ):
        _, port = proxy.listen("127.0.0.1", 0)
        first = phone.send(REGISTER, ("localhost", port))
        second = phone.send(REGISTER, ("127.0.0.1", port))
        assert first.tls_domain == "by-name"
        assert second.tls_domain == ("by-ip" if check else "by-name")
        assert (second.flow_id == first.flow_id) is not check
        assert len(phone.flows) == (2 if check else 1)
        assert phone.stats.connected == (2 if check else 1)
        assert [proxy.recv().event.message for _ in range(2)] == [REGISTER, REGISTER]
        assert proxy.stats.accepted == (2 if check else 1)


def test_accepted_connections_always_match(adapter: EndpointHarness) -> None:
    """With the check on, the proxy reaches the phone over the connection the phone opened, though
    a client domain of the proxy matches the phone's address."""
    config = Config(cert_check_on_conn_reuse=True)
    proxy_tls = [server_domain(), client_domain(name="by-ip", names=frozenset({"127.0.0.1"}))]
    with (
        adapter.endpoint(tls=proxy_tls, config=config) as proxy,
        adapter.endpoint(tls=[client_domain()]) as phone,
    ):
        _, port = proxy.listen("127.0.0.1", 0)
        sent = phone.send(REGISTER, ("127.0.0.1", port))
        accepted = proxy.recv().flow
        reply = proxy.send(OK, sent.listener)  # the phone's (IP, port), not its flow id
        assert reply == accepted
        assert phone.recv().flow == sent
        assert proxy.stats.connected == 0 and len(proxy.flows) == 1


INVALID = "df7jal23ls0d.invalid"


def test_invalid_hosts_raise_no_route_without_dialling(
    adapter: EndpointHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[object] = []
    real = socket.getaddrinfo

    def getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        looked_up.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with adapter.endpoint(tls=[client_domain()]) as phone:
        for destination in (
            f"sip:uh7a12ms@{INVALID};transport=ws",
            f"sips:uh7a12ms@{INVALID.upper()}:5061;transport=wss",
            f"wss://{INVALID}/ws",
            (INVALID, 443),
            ("invalid", 443),
        ):
            with pytest.raises(NoRoute, match="can only be reached over the connection it opened"):
                phone.send(REGISTER, destination)
        for destination in ("sip:alice@example.com;transport=tcp", "ws://example.com/", "mailto:x@y"):
            with pytest.raises(NoRoute):
                phone.send(REGISTER, destination)
        with pytest.raises(NoRoute, match="flow 12345 is closed"):
            phone.send(REGISTER, 12345)
        assert looked_up == []
        assert stats_of(phone) == {
            "accepted": 0,
            "connected": 0,
            "open": 0,
            "failed": {},
            "messages_in": 0,
            "messages_out": 0,
            "bytes_in": 0,
            "bytes_out": 0,
        }


def test_a_gone_flow_raises_no_route(adapter: EndpointHarness) -> None:
    with adapter.endpoint(tls=[server_domain()]) as proxy, adapter.endpoint(tls=[client_domain()]) as phone:
        _, port = proxy.listen("127.0.0.1", 0)
        sent = phone.send(REGISTER, ("127.0.0.1", port))
        incoming = proxy.recv()
        phone.close_flow(sent)
        assert phone.flows == []  # forgotten by the time close returns
        assert wait_for(lambda: not proxy.flows)
        with pytest.raises(NoRoute, match=f"flow {incoming.flow.flow_id} is closed"):
            proxy.send(OK, incoming.flow.flow_id)
        with pytest.raises(NoRoute, match=f"flow {sent.flow_id} is closed"):
            phone.send(REGISTER, sent.flow_id)
        for endpoint in (proxy, phone):
            stats = endpoint.stats
            assert (stats.open, stats.failed) == (0, {})
        assert (proxy.stats.accepted, phone.stats.connected) == (1, 1)
        again = phone.send(REGISTER, ("127.0.0.1", port))  # a new connection, a new flow
        assert again.flow_id == sent.flow_id + 1
        assert proxy.recv().flow.flow_id == incoming.flow.flow_id + 1


def test_concurrent_sends_share_one_dial(adapter: EndpointHarness) -> None:
    messages = [numbered(n) for n in range(6)]
    with adapter.endpoint(tls=[server_domain()]) as proxy, adapter.endpoint(tls=[client_domain()]) as phone:
        _, port = proxy.listen("127.0.0.1", 0)
        flows = phone.send_all(messages, ("localhost", port), together=True).result(10)
        assert {flow.flow_id for flow in flows} == {1}
        received = [proxy.recv() for _ in messages]
        assert sorted(m.event.message for m in received) == sorted(messages)
        assert {m.flow.flow_id for m in received} == {1}
        assert (phone.stats.connected, proxy.stats.accepted) == (1, 1)
        assert phone.stats.failed == {} and len(phone.flows) == 1


def test_several_listeners(adapter: EndpointHarness) -> None:
    with adapter.endpoint(tls=[server_domain()]) as proxy, adapter.endpoint(tls=[client_domain()]) as phone:
        listeners = [proxy.listen("127.0.0.1", 0), proxy.listen("127.0.0.1", 0)]
        destinations: list[tuple[str, int] | str] = [
            listeners[0],
            f"sips:proxy@127.0.0.1:{listeners[1][1]};transport=ws",
        ]
        if has_ipv6():
            listeners.append(proxy.listen("::1", 0))
            destinations.append(f"sip:proxy@[::1]:{listeners[2][1]};transport=wss")
        assert proxy.addresses == listeners
        for listener, destination in zip(listeners, destinations, strict=True):
            sent = phone.send(REGISTER, destination)
            incoming = proxy.recv()
            assert incoming.flow.listener == listener
            assert sent.remote == listener
            proxy.send(OK, incoming.flow.flow_id)
            assert phone.recv().flow == sent
        assert len(phone.flows) == len(proxy.flows) == len(listeners)
        assert sorted(f.listener for f in proxy.flows) == sorted(listeners)
        assert (proxy.stats.accepted, phone.stats.connected) == (len(listeners), len(listeners))


def test_tls_failure_is_counted_by_cause(adapter: EndpointHarness) -> None:
    with adapter.endpoint(tls=[server_domain()]) as proxy:
        _, port = proxy.listen("127.0.0.1", 0)
        distrust = TLSDomain(name="wrong-ca", side="client", ca_list=certs().other_ca)
        with adapter.endpoint(tls=[distrust]) as phone:
            with pytest.raises(ConnectFailed) as failed:
                phone.send(REGISTER, ("localhost", port))
            assert failed.value.closed.cause is Cause.TLS_FAILED
            stats = phone.stats
            assert (stats.failed, stats.open, stats.connected) == ({Cause.TLS_FAILED: 1}, 0, 0)
            assert phone.flows == []
        assert wait_for(lambda: proxy.stats.failed == {Cause.TLS_FAILED: 1})
        assert stats_of(proxy)["failed"] == {"tls_failed": 1}
        assert (proxy.stats.accepted, proxy.stats.open, proxy.flows) == (0, 0, [])


def test_recv_times_out(adapter: EndpointHarness) -> None:
    with adapter.endpoint(tls=[server_domain()]) as proxy:
        proxy.listen("127.0.0.1", 0)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            proxy.recv(timeout=0.1)
        assert 0.1 <= time.monotonic() - started < 1.0


def test_a_full_queue_stops_reading(adapter: EndpointHarness) -> None:
    """With `max_queue` messages waiting, the endpoint stops taking messages from its connection:
    the rest wait in the connection and the kernel, the sender blocks, and every message arrives
    in order once taken."""
    max_queue, count = 4, 300
    messages = [numbered(n, 60_000) for n in range(count)]
    with (
        adapter.endpoint(tls=[server_domain()], max_queue=max_queue) as proxy,
        adapter.endpoint(tls=[client_domain()]) as phone,
    ):
        _, port = proxy.listen("127.0.0.1", 0)
        sending = phone.send_all(messages, ("127.0.0.1", port), together=False)
        assert wait_for(lambda: proxy.stats.messages_in >= max_queue)
        seen = -1
        while (now := proxy.stats.messages_in) != seen:  # until it stops growing
            seen = now
            time.sleep(0.2)
        # What was taken from the connection: the queue, plus (asyncio) the one message waiting
        # to be put or (sync) what the last read carried, held by the endpoint.
        assert max_queue <= seen <= max_queue + 8
        assert not sending.done()  # the phone is blocked: 18 MB do not fit in the buffers on the way
        received = [proxy.recv().event.message for _ in range(count)]
        assert received == messages
        assert [flow.flow_id for flow in sending.result(LIMIT_SEND)] == [1] * count
        assert proxy.stats.messages_in == count


def test_close_frees_everything(adapter: EndpointHarness) -> None:
    """Listeners, accepted and dialled connections all go with `close()`; the peers see 1001."""
    with adapter.endpoint(tls=[server_domain()]) as other, adapter.endpoint(tls=[client_domain()]) as phone:
        _, other_port = other.listen("127.0.0.1", 0)
        proxy_tls = [server_domain(), client_domain()]
        with adapter.endpoint(tls=proxy_tls) as proxy:
            ports = [proxy.listen("127.0.0.1", 0)[1], proxy.listen("127.0.0.1", 0)[1]]
            inbound = [phone.send(REGISTER, ("127.0.0.1", port)) for port in ports]
            outbound = proxy.send(REGISTER, ("127.0.0.1", other_port))
            for _ in ports:
                proxy.recv()
            assert other.recv().flow.remote == outbound.listener
            assert (proxy.stats.accepted, proxy.stats.connected, proxy.stats.open) == (2, 1, 3)
            proxy.close()
            assert (proxy.flows, proxy.addresses) == ([], [])
            assert (proxy.stats.open, proxy.stats.failed) == (0, {})
            assert wait_for(lambda: not phone.flows and not other.flows)
            for flow in inbound:
                assert flow.connection.closed is not None
                assert (flow.connection.closed.code, flow.connection.closed.reason) == (1001, "going away")
            assert (phone.stats.failed, other.stats.failed) == ({}, {})
            for port in ports:  # nothing listens any more
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_messages_of_an_ended_connection_are_all_delivered(adapter: EndpointHarness) -> None:
    """A peer sends, then closes while the queue is full: nothing it sent is lost, and its close
    completes once the messages before it are taken."""
    messages = [numbered(n, 1_000) for n in range(100)]
    with (
        adapter.endpoint(tls=[server_domain()], max_queue=2) as proxy,
        adapter.endpoint(tls=[client_domain()]) as phone,
    ):
        _, port = proxy.listen("127.0.0.1", 0)
        flows = phone.send_all(messages, ("127.0.0.1", port), together=False).result(LIMIT)
        closing = threading.Thread(target=phone.close_flow, args=(flows[0],))
        closing.start()
        assert [proxy.recv().event.message for _ in messages] == messages
        closing.join(LIMIT)
        assert not closing.is_alive()
        assert wait_for(lambda: proxy.stats.open == 0)
        with pytest.raises(TimeoutError):
            proxy.recv(timeout=0.05)
        assert (proxy.stats.failed, phone.stats.failed) == ({}, {})


def test_close_during_a_dial(adapter: EndpointHarness) -> None:
    """A connection still in its TLS handshake is dropped by `close()`, not left to time out."""
    with socket.socket() as silent:  # accepts TCP, never answers TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        config = Config(tls_handshake_timeout=2.0)
        with adapter.endpoint(tls=[client_domain()], config=config) as phone:
            sending = phone.send_all([REGISTER], silent.getsockname(), together=False)
            silent.settimeout(LIMIT)
            accepted, _ = silent.accept()
            with accepted:
                time.sleep(0.05)  # the ClientHello is on its way
                started = time.monotonic()
                phone.close()
                with pytest.raises((ConnectFailed, ConnectionClosedError)):
                    sending.result(LIMIT)
                assert time.monotonic() - started < 1.0
            assert (phone.flows, phone.stats.open, phone.stats.connected) == ([], 0, 0)


def test_dial_config_chooses_each_destination_s_config(adapter: EndpointHarness) -> None:
    """permessage-deflate offered to one destination (by name) and not another (by IP)."""

    def deflate_for_localhost(host: str, port: int) -> Config:
        return Config(deflate=host == "localhost")

    with (
        adapter.endpoint(tls=[server_domain()], config=Config(deflate=True)) as proxy,
        adapter.endpoint(tls=[client_domain()], dial_config=deflate_for_localhost) as phone,
    ):
        _, port = proxy.listen("127.0.0.1", 0)
        by_name = phone.send(REGISTER, ("localhost", port))
        assert proxy.recv().event == SipMessageReceived(REGISTER, False)
        assert by_name.connection.opened.extensions.startswith("permessage-deflate")
        phone.close_flow(by_name)
        assert wait_for(lambda: not phone.flows)
        by_ip = phone.send(REGISTER, ("127.0.0.1", port))
        assert proxy.recv().event == SipMessageReceived(REGISTER, False)
        assert by_ip.connection.opened.extensions == ""
