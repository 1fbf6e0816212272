"""Tracing through each adapter to real HEP collectors on loopback (UDP and TCP): every packet
of a session arrives in order, read back with the spec decoder; a collector that is down
costs SIP nothing."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator

import pytest
from adapter_helpers import REGISTER, certs, client_domain, server_domain, wait_for
from harness import ADAPTERS, Harness, harness_for
from hep_wire import TcpCollector, UdpCollector, ends, fields, number, parts

from sansio_wss import Config, TLSDomain, TraceConfig, TracePeer, Tracer
from sansio_wss.adapters import HepCollector
from sansio_wss.hep import PayloadFormat
from sansio_wss.x509 import certificate_names

JSON = TraceConfig(payload_format=PayloadFormat.JSON)


@pytest.fixture(params=ADAPTERS)
def harness(request: pytest.FixtureRequest) -> Harness:
    return harness_for(request.param)


Collector = UdpCollector | TcpCollector


@pytest.fixture(params=["udp", "tcp"])
def collector(request: pytest.FixtureRequest) -> Iterator[Collector]:
    found: Collector = UdpCollector() if request.param == "udp" else TcpCollector()
    yield found
    found.close()


def own_names(path: str) -> tuple[str, str]:
    """The subject and issuer of the first certificate in a PEM file."""
    with open(path) as file:
        text = file.read()
    start = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    return certificate_names(ssl.PEM_cert_to_DER_cert(text[start:end]))


def test_a_server_session_reaches_the_collector_in_order(harness: Harness, collector: Collector) -> None:
    with HepCollector(collector.destination) as sink:
        tracer = Tracer(sink, JSON)
        with harness.serve(config=Config(tracer=tracer)) as server:
            result = harness.exchange(server.port, [REGISTER])
            server.wait_closed()
        set_up, sip_in, sip_out, closed = collector.packets(4)
        assert sink.stats.lost == 0 and tracer.stats.packets == 4
    client, listener = result.local_address, result.remote_address
    assert [number(fields(p)[11]) for p in (set_up, sip_in, sip_out, closed)] == [0x59, 1, 1, 0x59]
    assert len({fields(p)[17] for p in (set_up, sip_in, sip_out, closed)}) == 1
    assert ends(set_up) == ends(sip_in) == ends(closed) == (client, listener)
    assert ends(sip_out) == (listener, client)
    assert fields(sip_in)[15] == fields(sip_out)[15] == REGISTER
    found = parts(set_up)
    subject, issuer = own_names(certs().server)
    assert (found["server-subject"], found["server-issuer"]) == (subject, issuer)
    assert "client-subject" not in found  # the client sent no certificate
    assert found["Event"] == "ACCEPTED" and found["Status"] == "SUCCESS"
    assert found["Ws-Request"].startswith("GET /ws HTTP/1.1\r\n")
    assert found["Ws-Reply"].startswith("HTTP/1.1 101 Switching Protocols\r\n")
    assert found["tls-version"] == "TLSv1.3" and found["tls-cipher"]
    assert parts(closed)["Event"] == "CLOSED" and parts(closed)["Status"] == "SUCCESS"
    sent = number(fields(set_up)[9]) + number(fields(set_up)[10]) / 1e6
    assert abs(sent - time.time()) < 30  # wall-clock time, not the event loop's clock


def test_a_client_session_is_traced_with_both_certificates(harness: Harness) -> None:
    collector = UdpCollector()
    try:
        with HepCollector(collector.destination) as sink:
            tracer = Tracer(sink, JSON)
            mutual = [server_domain(ca_list=certs().ca, require_cert=True)]
            with harness.serve(tls=mutual) as server:
                result = harness.exchange(
                    server.port,
                    [REGISTER],
                    config=Config(tracer=tracer),
                    tls=client_domain(certificate=certs().client),
                )
            set_up, sip_out, sip_in, closed = collector.packets(4)
    finally:
        collector.close()
    found = parts(set_up)
    assert found["Event"] == "CONNECTED" and found["Message"] == "Successfully connected..."
    assert (found["client-subject"], found["client-issuer"]) == own_names(certs().client)
    assert (found["server-subject"], found["server-issuer"]) == own_names(certs().server)
    remote, local = result.remote_address, result.local_address
    assert ends(set_up) == ends(sip_in) == ends(closed) == (remote, local)
    assert ends(sip_out) == (local, remote)
    assert json.loads(fields(sip_out)[101]) == {"net": fields(set_up)[17].decode()}


def test_a_tls_failure_is_traced_as_a_failed_accept(harness: Harness) -> None:
    collector = UdpCollector()
    try:
        with HepCollector(collector.destination) as sink:
            tracer = Tracer(sink, JSON)
            with harness.serve(config=Config(tracer=tracer)) as server:
                untrusting = TLSDomain(name="untrusting", side="client", ca_list=certs().other_ca)
                harness.connect_fails(server.port, tls=untrusting)
                set_up, closed = collector.packets(2)
    finally:
        collector.close()
    assert parts(set_up)["Status"] == "FAILURE" and "TLS" in parts(set_up)["Message"]
    assert parts(closed)["Cause"] == "tls_failed"


def test_the_filter_and_the_switch_through_an_adapter(harness: Harness) -> None:
    collector = UdpCollector()
    seen: list[TracePeer] = []

    def second_only(peer: TracePeer) -> bool:
        seen.append(peer)
        return len(seen) == 2

    try:
        with HepCollector(collector.destination) as sink:
            tracer = Tracer(sink, JSON, filter=second_only, on=False)
            with harness.serve(config=Config(tracer=tracer)) as server:
                harness.exchange(server.port, [REGISTER])  # off: not even filtered
                tracer.set_mode("on")
                harness.exchange(server.port, [REGISTER])  # filtered out
                harness.exchange(server.port, [REGISTER])  # traced
                server.wait_closed(3)
            assert wait_for(lambda: sink.stats.sent == 4)
            assert len(collector.packets(4)) == 4
    finally:
        collector.close()
    assert len(seen) == 2 and all(peer.tls_domain == "server" and not peer.outbound for peer in seen)
    assert tracer.stats.filtered == 1 and tracer.stats.connections == 1


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_collector_that_is_down_costs_sip_nothing(harness: Harness, transport: str) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens there once closed
    with HepCollector(f"{transport}:127.0.0.1:{port}", max_pending=4) as sink:
        tracer = Tracer(sink, JSON)
        with harness.serve(config=Config(tracer=tracer)) as server:
            started = time.monotonic()
            result = harness.exchange(server.port, [REGISTER] * 20)
            took = time.monotonic() - started
            server.wait_closed()
        assert len(result.replies) == 20 and took < 2.0
        assert wait_for(lambda: sink.stats.lost >= 20 - 4)
        assert tracer.stats.packets == 42 and tracer.stats.lost == 0
