"""SIP URIs, name-addr values and Via elements: their parts, their forms, what they refuse."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sip_samples import ALICE_CONTACT

from sansio_wss.cli.sipuri import SipParseError, SipUri, Via, parse_name_addr, parse_uri, parse_via


def test_via_forms() -> None:
    assert parse_via("SIP/2.0/wss df7jal23ls0d.invalid;branch=z9hG4bKasudf;rport") == Via(
        "WSS", "df7jal23ls0d.invalid", None, (("branch", "z9hG4bKasudf"), ("rport", None))
    )
    assert parse_via("SIP/2.0/TLS 192.0.2.4:5061 ;branch=z9hG4bK7").port == 5061
    assert parse_via("SIP/2.0/WSS h").branch is None
    for bad in (
        "SIP/2.0 h",
        "SIP/2.0/WSS",
        "SIP/2.0/WSS h:0",
        "SIP/2.0/WSS h:99999",
        "SIP/2.0/WSS h junk",
        "SIP/2.0/WSS h;=x",
    ):
        with pytest.raises(SipParseError):
            parse_via(bad)


def test_uri_parts() -> None:
    assert parse_uri("SIPS:alice:secret@[2001:db8::1]:5061;transport=ws;lr?subject=hi&x=1") == SipUri(
        "sips", "alice", "secret", "2001:db8::1", 5061, (("transport", "ws"), ("lr", None)), "subject=hi&x=1"
    )
    uri = parse_uri("sip:+1%20555;phone-context=x@example.com")
    assert (uri.user, uri.host, uri.port, uri.params) == ("+1%20555;phone-context=x", "example.com", None, ())
    assert parse_uri("sip:example.com").user is None
    assert parse_uri(ALICE_CONTACT + ";ob").param("transport") == "ws"
    assert parse_uri(ALICE_CONTACT + ";ob").params == (("transport", "ws"), ("ob", None))
    for text in ("sip:[::1]:5060", "sips:a:@h", "sip:a@h;maddr=239.255.255.1;ttl=15?x=y", ALICE_CONTACT):
        assert str(parse_uri(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "tel:+15551234",
        "sip:",
        "sip:alice@",
        "sip:a@b@c",
        "sip:a b@c",
        "sip:a@[::1",
        "sip:a@[not-ipv6]",
        "sip:a@[fe80::1%eth0]",
        "sip:a@h:0",
        "sip:a@h:65536",
        "sip:a@h:x",
        "sip:a@h;p=%zz",
        "sip:a@h;=v",
        "sip:a@h?",
        "sip:a@h_-",
        "sip:a@-h",
    ],
)
def test_invalid_uris_raise(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_name_addr_forms() -> None:
    quoted = parse_name_addr('"A \\"quoted\\" name" <sip:a@h>;tag=1')
    assert (quoted.display, quoted.tag) == ('"A \\"quoted\\" name"', "1")
    assert str(quoted) == '"A \\"quoted\\" name" <sip:a@h>;tag=1'
    plain = parse_name_addr("Bob Smith<sip:bob@h;transport=ws>")
    assert (plain.display, plain.uri.param("transport"), plain.params) == ("Bob Smith", "ws", ())
    # Without <>, parameters after the URI belong to the header (RFC 3261 20.10).
    spec = parse_name_addr("sip:alice@example.com;tag=65bnmj.34asd")
    assert (spec.uri.params, spec.tag) == ((), "65bnmj.34asd")
    for bad in ("<sip:a@h", '"x <sip:a@h>', "a,b <sip:a@h>", "sip:a@h?x=1", "<sip:a@h> junk", "<tel:1>", "*"):
        with pytest.raises(SipParseError):
            parse_name_addr(bad)


# Properties


@given(st.text(max_size=60))
def test_any_text_as_a_header_value_raises_only_sip_parse_error(text: str) -> None:
    for parse in (parse_uri, parse_via, parse_name_addr):
        with contextlib.suppress(SipParseError):
            parse(text)
