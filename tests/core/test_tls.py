"""TLS domains: validation, OpenSIPS tls_method names, and which domain a connection gets."""

from __future__ import annotations

from typing import Any

import pytest

from sansio_wss import ConfigError
from sansio_wss.tls import TLSDomain, choose_client_domain, choose_server_domain, parse_tls_method


def server(name: str, **kw: Any) -> TLSDomain:
    return TLSDomain(name=name, side="server", certificate="/certs/x.pem", **kw)


def client(name: str, **kw: Any) -> TLSDomain:
    return TLSDomain(name=name, side="client", **kw)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("TLSv1_2", ("TLSv1.2", "TLSv1.2")),
        ("TLSv1_2-", ("TLSv1.2", None)),
        ("TLSv1_2-TLSv1_3", ("TLSv1.2", "TLSv1.3")),
        ("-TLSv1_2", (None, "TLSv1.2")),
        ("SSLv23", (None, None)),
        (" tlsv1_3 ", ("TLSv1.3", "TLSv1.3")),
    ],
)
def test_tls_method(method: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_tls_method(method) == expected
    domain = TLSDomain.from_tls_method(method, name="d", side="client")
    assert (domain.min_version, domain.max_version) == expected


@pytest.mark.parametrize("method", ["TLSv2", "TLSv1_3-TLSv1_2", "SSLv3", ""])
def test_bad_tls_method(method: str) -> None:
    with pytest.raises(ConfigError):
        parse_tls_method(method) if method else TLSDomain.from_tls_method("bogus", name="d", side="client")


@pytest.mark.parametrize(
    "kw",
    [
        {"name": "", "side": "client"},
        {"name": "d", "side": "both"},
        {"name": "d", "side": "server"},
        {"name": "d", "side": "client", "min_version": "TLSv1.4"},
        {"name": "d", "side": "client", "min_version": "TLSv1.3", "max_version": "TLSv1.2"},
        {"name": "d", "side": "client", "require_cert": True},
        {"name": "d", "side": "client", "addresses": frozenset({("nope", 1)})},
        {"name": "d", "side": "client", "names": "pbx.example.net"},
        {"name": "d", "side": "client", "names": frozenset({"bad name"})},
    ],
)
def test_invalid_domains(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        TLSDomain(**kw)


def test_server_domain_by_listener_then_sni() -> None:
    default = server("default")
    on_v6 = server("v6", addresses=frozenset({("2001:db8::10", 443)}))
    pbx = server("pbx", names=frozenset({"pbx.example.net"}))
    wild = server("wild", names=frozenset({"*.example.org"}))
    v6_pbx = server(
        "v6-pbx", addresses=frozenset({("2001:db8::10", 443)}), names=frozenset({"PBX.example.net."})
    )
    domains = [default, on_v6, pbx, wild, v6_pbx, client("c")]
    assert choose_server_domain(domains, ("192.0.2.1", 443), None) is default
    assert choose_server_domain(domains, ("192.0.2.1", 443), "pbx.example.net") is pbx
    assert choose_server_domain(domains, ("192.0.2.1", 443), "a.example.org") is wild
    assert choose_server_domain(domains, ("192.0.2.1", 443), "a.b.example.org") is default
    assert choose_server_domain(domains, ("2001:db8:0::10", 443), None) is on_v6
    assert choose_server_domain(domains, ("2001:db8::10", 443), "pbx.example.net") is v6_pbx
    assert choose_server_domain([pbx], ("192.0.2.1", 443), "other.example") is None


def test_client_domain_by_destination() -> None:
    default = client("default")
    carrier = client("carrier", addresses=frozenset({("198.51.100.7", 5061)}))
    by_name = client("by-name", names=frozenset({"sbc.carrier.example"}))
    domains = [server("s"), default, carrier, by_name]
    assert choose_client_domain(domains, ("198.51.100.7", 5061)) is carrier
    assert choose_client_domain(domains, ("198.51.100.7", 443), "sbc.carrier.example") is by_name
    assert choose_client_domain(domains, ("203.0.113.1", 443), "elsewhere.example") is default
    assert choose_client_domain([carrier], ("203.0.113.1", 443)) is None
