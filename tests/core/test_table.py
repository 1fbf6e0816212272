"""`ConnectionTable`: reuse by remote address and listener, and the TLS-domain check on reuse."""

from __future__ import annotations

import pytest

from sansio_wss.table import ConnectionTable, normalize_address

LISTENER = ("192.0.2.10", 443)
OTHER_LISTENER = ("2001:db8::10", 443)
PEER = ("198.51.100.7", 5061)


def test_find_by_remote_and_listener() -> None:
    table: ConnectionTable[str] = ConnectionTable()
    a = table.add("a", PEER, LISTENER, accepted=True)
    b = table.add("b", PEER, OTHER_LISTENER, accepted=True)
    assert table.find(PEER) is b  # newest first
    assert table.find(PEER, LISTENER) is a
    assert table.find(PEER, ("192.0.2.99", 443)) is None
    assert table.find(("198.51.100.8", 5061)) is None
    assert len(table) == 2 and [f.connection for f in table] == ["a", "b"]


def test_addresses_are_normalised() -> None:
    table: ConnectionTable[str] = ConnectionTable()
    flow = table.add("a", ("2001:0db8:0000::1", 5062), ("::ffff:192.0.2.1", 443), accepted=False)
    assert flow.remote == ("2001:db8::1", 5062)
    assert table.find(("2001:db8::1", 5062)) is flow
    assert normalize_address(("fe80::1%eth0", 1)) == ("fe80::1", 1)
    for bad in (("not-an-ip", 1), ("10.0.0.1", 70000), ("10.0.0.1", -1)):
        with pytest.raises(ValueError):
            normalize_address(bad)


def test_remove_and_ids() -> None:
    table: ConnectionTable[str] = ConnectionTable()
    a = table.add("a", PEER, LISTENER, accepted=True)
    b = table.add("b", PEER, LISTENER, accepted=True)
    assert a.flow_id != b.flow_id and table.get(a.flow_id) is a
    assert table.remove(b.flow_id) is b
    assert table.remove(b.flow_id) is None
    assert table.find(PEER) is a
    table.remove(a.flow_id)
    assert table.find(PEER) is None and len(table) == 0
    assert table.add("c", PEER, LISTENER, accepted=True).flow_id > b.flow_id  # ids never come back


def test_cert_check_on_reuse() -> None:
    table: ConnectionTable[str] = ConnectionTable()
    outbound = table.add("out", PEER, LISTENER, accepted=False, tls_domain="carrier-a")
    assert table.find(PEER, tls_domain="carrier-b") is outbound  # check off: address only
    assert table.find(PEER, tls_domain="carrier-b", check_domain=True) is None
    assert table.find(PEER, tls_domain="carrier-a", check_domain=True) is outbound
    assert table.find(PEER, check_domain=True) is outbound  # no domain chosen: no check
    accepted = table.add("in", PEER, LISTENER, accepted=True, tls_domain="ignored")
    assert accepted.tls_domain is None
    assert table.find(PEER, tls_domain="carrier-b", check_domain=True) is accepted


@pytest.mark.parametrize("text", ["::ffff:192.0.2.7", "::FFFF:C000:0207", "0:0:0:0:0:ffff:192.0.2.7"])
def test_an_ipv4_mapped_address_has_one_form_on_every_python(text: str) -> None:
    assert normalize_address((text, 5060)) == ("::ffff:192.0.2.7", 5060)
