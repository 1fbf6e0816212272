"""The SIP message model: strict parsing, header access, serialization, hostile input."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sip_samples import (
    ALICE_CONTACT,
    ALICE_HOST,
    DOMAIN,
    jssip_invite,
    jssip_register,
    message,
)

from sansio_wss.cli.sipmsg import (
    MAX_HEADER_FIELDS,
    MAX_MESSAGE_SIZE,
    Header,
    SipMessage,
    canonical_name,
    parse_message,
    response_to,
    salvage,
)
from sansio_wss.cli.sipuri import NameAddr, SipParseError, Via, parse_uri, parse_via


def reason_of(data: bytes) -> str:
    with pytest.raises(SipParseError) as caught:
        parse_message(data)
    return caught.value.reason


# Parsing


def test_jssip_register_parses_into_its_parts() -> None:
    msg = parse_message(jssip_register())
    assert (msg.method, msg.uri, msg.status, msg.reason, msg.body) == (
        "REGISTER",
        f"sip:{DOMAIN}",
        None,
        None,
        b"",
    )
    assert [h.name for h in msg.headers] == [
        "Via", "Max-Forwards", "To", "From", "Call-ID", "CSeq", "Contact", "Expires", "Allow", "Supported",
        "User-Agent",
    ]  # fmt: skip
    assert msg.top_via() == Via("WSS", ALICE_HOST, None, (("branch", "z9hG4bK2741817"),))
    assert msg.cseq() == (1, "REGISTER") and msg.call_id() == "3qd1mbk7fbvdvhv3eg46ae"
    assert msg.expires() == 600 and msg.max_forwards() == 69
    assert msg.from_addr() == NameAddr('"Alice"', parse_uri(f"sip:alice@{DOMAIN}"), (("tag", "ih6t6a2pmq"),))
    assert msg.to_addr().tag is None and msg.from_addr().tag == "ih6t6a2pmq"
    (contact,) = msg.contacts()
    assert str(contact.uri) == ALICE_CONTACT
    assert contact.params == (
        ("+sip.ice", None),
        ("reg-id", "1"),
        ("+sip.instance", '"<urn:uuid:0a828c3b-a148-4db0-935f-257603c5980f>"'),
        ("expires", "600"),
    )
    assert contact.param("EXPIRES") == "600" and contact.param("+sip.ice") is None


def test_compact_forms_and_any_case_name_the_same_headers() -> None:
    data = message(
        "MESSAGE sip:bob@example.com SIP/2.0",
        "v: SIP/2.0/WSS a.invalid;branch=z9hG4bK1",
        "f: <sip:alice@example.com>;tag=1",
        "t: <sip:bob@example.com>",
        "i: abc",
        "CSEQ: 1 MESSAGE",
        "m: <sip:a@a.invalid;transport=ws>",
        "c: text/plain",
        "x-custom: kept as written",
        body="hi",
    )
    msg = parse_message(data)
    assert [h.name for h in msg.headers] == [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type", "x-custom",
    ]  # fmt: skip
    assert msg.get("call-id") == msg.get("I") == "abc" and msg.get("X-CUSTOM") == "kept as written"
    assert msg.get("content-type") == "text/plain" and msg.get("Subject") is None
    assert canonical_name("l") == "Content-Length" and canonical_name("cseq") == "CSeq"
    assert msg.body == b"hi"
    assert msg.serialize().startswith(b"MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid")


def test_list_headers_split_on_commas_outside_quotes_and_angle_brackets() -> None:
    data = message(
        "INVITE sip:bob@example.com SIP/2.0",
        "Via: SIP/2.0/WSS a.invalid;branch=z9hG4bK1 , SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK2",
        "Via: SIP / 2.0 / UDP [2001:db8::9]:5070;branch=z9hG4bK3;received=[2001:db8::8]",
        'Contact: "Smith, John" <sip:j,k@a.invalid;x=1>;q=0.5, <sip:k@b.invalid>',
        "Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>",
        "Allow: INVITE, ACK, BYE",
        "Subject: one, two",
    )
    msg = parse_message(data)
    assert msg.get_all("Via") == (
        "SIP/2.0/WSS a.invalid;branch=z9hG4bK1",
        "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK2",
        "SIP / 2.0 / UDP [2001:db8::9]:5070;branch=z9hG4bK3;received=[2001:db8::8]",
    )
    assert parse_via(msg.get_all("Via")[2]) == Via(
        "UDP", "2001:db8::9", 5070, (("branch", "z9hG4bK3"), ("received", "[2001:db8::8]"))
    )
    assert msg.get_all("Contact") == ('"Smith, John" <sip:j,k@a.invalid;x=1>;q=0.5', "<sip:k@b.invalid>")
    assert [c.display for c in msg.contacts()] == ['"Smith, John"', None]
    assert msg.get_all("Route") == ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")
    assert msg.get_all("Allow") == ("INVITE, ACK, BYE",) and msg.get("Subject") == "one, two"


def test_folded_lines_are_unfolded_and_a_response_parses() -> None:
    data = b"SIP/2.0 180 Ringing\r\nSubject: a\r\n \t b\r\nCSeq: 2\r\n INVITE\r\nl: 0\r\n\r\n"
    msg = parse_message(data)
    assert (msg.method, msg.status, msg.reason) == (None, 180, "Ringing")
    assert msg.get("Subject") == "a b" and msg.cseq() == (2, "INVITE")
    assert parse_message(b"SIP/2.0 200 \r\n\r\n").reason == ""


def test_content_length_cuts_a_longer_body_and_is_always_rewritten() -> None:
    msg = parse_message(b"SIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabcdef")
    assert msg.body == b"abc" and msg.get("Content-Length") is None
    assert msg.serialize() == b"SIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    assert parse_message(b"SIP/2.0 200 OK\r\n\r\nxyz").body == b"xyz"
    edited = SipMessage(status=200, reason="OK", body=b"12345")
    assert edited.serialize() == b"SIP/2.0 200 OK\r\nContent-Length: 5\r\n\r\n12345"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"OPTIONS sip:a SIP/2.0\r\nVia: x", "no empty line after the header"),
        (b"OPTIONS sip:a SIP/2.0\nVia: x\n\n\r\n\r\n", "control character or bare CR/LF in the header"),
        (b"OPTIONS sip:a SIP/2.0\r\nVia: x\ry\r\n\r\n", "control character or bare CR/LF in the header"),
        (b"OPTIONS sip:a SIP/2.0\r\nX: a\x00b\r\n\r\n", "control character or bare CR/LF in the header"),
        (b"OPTIONS sip:a SIP/2.0\r\nX: \xff\r\n\r\n", "header is not UTF-8"),
        (b"OPTIONS sip:a SIP/2.0\r\nNo colon here\r\n\r\n", "invalid header line"),
        (b"OPTIONS sip:a SIP/2.0\r\nBad Name: x\r\n\r\n", "invalid header line"),
        (b"OPTIONS sip:a SIP/2.0\r\n folded: x\r\n\r\n", "continuation line before any header"),
        (
            b"OPTIONS sip:a SIP/3.0\r\n\r\n",
            "start line is not 'METHOD URI SIP/2.0' nor 'SIP/2.0 CODE REASON'",
        ),
        (
            b"OPTIONS  sip:a SIP/2.0\r\n\r\n",
            "start line is not 'METHOD URI SIP/2.0' nor 'SIP/2.0 CODE REASON'",
        ),
        (b"OPT(IONS sip:a SIP/2.0\r\n\r\n", "invalid method"),
        (b"OPTIONS example.com SIP/2.0\r\n\r\n", "Request-URI is not an absolute URI"),
        (b"SIP/2.0 099 Low\r\n\r\n", "invalid status code"),
        (b"SIP/2.0 700 High\r\n\r\n", "invalid status code"),
        (b"SIP/2.0 2000 OK\r\n\r\n", "invalid status code"),
        (b"SIP/2.0 200 OK\r\nl: 1\r\nContent-Length: 2\r\n\r\nab", "conflicting Content-Length"),
        (b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"SIP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nab", "body shorter than Content-Length"),
        (b"SIP/2.0 200 OK\r\nVia: a,,b\r\n\r\n", "empty element in Via"),
        (b"SIP/2.0 200 OK\r\nContact:\r\n\r\n", "empty element in Contact"),
        (b'SIP/2.0 200 OK\r\nContact: "open <sip:a@b>\r\n\r\n', "unterminated quoted string"),
        (b"SIP/2.0 200 OK\r\nRoute: <sip:a@b\r\n\r\n", "unterminated <URI>"),
    ],
)
def test_malformed_messages_raise_one_error_with_a_reason(data: bytes, reason: str) -> None:
    assert reason_of(data) == reason


def test_limits_on_size_and_header_fields() -> None:
    assert reason_of(b"SIP/2.0 200 OK\r\n\r\n" + b"x" * MAX_MESSAGE_SIZE) == "message larger than 65536 bytes"
    fields = [f"X-{n}: {n}" for n in range(MAX_HEADER_FIELDS)]
    assert len(parse_message(message("SIP/2.0 200 OK", *fields)).headers) == MAX_HEADER_FIELDS
    assert reason_of(message("SIP/2.0 200 OK", *fields, "X-last: 1")) == "more than 100 header fields"
    vias = "Via: " + ", ".join(["SIP/2.0/WSS h;branch=z9hG4bK1"] * (MAX_HEADER_FIELDS + 1))
    assert reason_of(message("SIP/2.0 200 OK", vias)) == "more than 100 header fields"
    assert reason_of(message("SIP/2.0 200 OK", *(["X: 1"] * 250))) == "too many header lines"


@pytest.mark.parametrize(
    "hostile",
    [
        b"Contact: " + b"<" * 60000,
        b"Contact: " + b'"' * 60001,
        b"Contact: " + b'"\\' * 30000,
        b"Via: " + b"SIP/2.0/WSS " + b" " * 60000,
        b"Route: " + b"<sip:a@b>;" * 6000,
        b"X: " + b"a\r\n " * 20000,
    ],
)
def test_hostile_headers_cost_linear_time(hostile: bytes) -> None:
    data = b"OPTIONS sip:a@b SIP/2.0\r\n" + hostile[: MAX_MESSAGE_SIZE - 100] + b"\r\n\r\n"
    started = time.perf_counter()
    try:
        msg = parse_message(data)
        msg.contacts()
        msg.top_via()
    except SipParseError:
        pass
    assert time.perf_counter() - started < 1.0


# Header values


def test_numbers_are_checked() -> None:
    base = ["OPTIONS sip:a@b SIP/2.0"]
    assert parse_message(message(*base, "CSeq: 2147483647 OPTIONS")).cseq() == (2147483647, "OPTIONS")
    for value in ("2147483648 OPTIONS", "1", "x OPTIONS", "1 OPTIONS extra", "-1 OPTIONS"):
        with pytest.raises(SipParseError):
            parse_message(message(*base, f"CSeq: {value}")).cseq()
    for name, value in (
        ("Expires", "1.5"),
        ("Expires", "12345678901"),
        ("Max-Forwards", "-1"),
        ("Max-Forwards", "٣"),
    ):
        msg = parse_message(message(*base, f"{name}: {value}"))
        with pytest.raises(SipParseError):
            msg.expires() if name == "Expires" else msg.max_forwards()
    for missing in (
        SipMessage.top_via,
        SipMessage.cseq,
        SipMessage.call_id,
        SipMessage.to_addr,
        SipMessage.from_addr,
    ):
        with pytest.raises(SipParseError, match="missing"):
            missing(parse_message(message(*base)))
    with pytest.raises(SipParseError, match="invalid Call-ID"):
        parse_message(message(*base, "Call-ID: a b")).call_id()


# Editing and responses


def test_edits_keep_same_name_fields_together() -> None:
    msg = parse_message(jssip_invite())
    edited = (
        msg.with_uri("sip:b@h")
        .with_first("Via", "SIP/2.0/WSS edge;branch=z9hG4bK9")
        .with_first("Record-Route", "<sip:edge;lr>")
        .with_header("max-forwards", "68")
        .without_first("User-Agent")
        .without_first("Absent")
    )
    assert edited.uri == "sip:b@h"
    assert [h.name for h in edited.headers[:4]] == ["Record-Route", "Via", "Via", "Max-Forwards"]
    assert (
        edited.get_all("Via")[0] == "SIP/2.0/WSS edge;branch=z9hG4bK9" and edited.get("Max-Forwards") == "68"
    )
    assert edited.get("User-Agent") is None and edited.body == msg.body
    assert msg.with_header("X-New", "1").headers[-1] == Header("X-New", "1")
    with pytest.raises(ValueError, match="either"):
        SipMessage(method="X", uri="sip:a", status=200, reason="OK")
    with pytest.raises(ValueError, match="needs"):
        SipMessage(method="X")


def test_response_to_copies_rfc_3261_8_2_6_fields_and_adds_a_to_tag() -> None:
    request = parse_message(jssip_register())
    response = response_to(request, 404, "Not Found", (Header("Warning", "399 x"),), to_tag="abc")
    assert response.serialize().decode().split("\r\n") == [
        "SIP/2.0 404 Not Found",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK2741817",
        f'From: "Alice" <sip:alice@{DOMAIN}>;tag=ih6t6a2pmq',
        f"To: <sip:alice@{DOMAIN}>;tag=abc",
        "Call-ID: 3qd1mbk7fbvdvhv3eg46ae",
        "CSeq: 1 REGISTER",
        "Warning: 399 x",
        "Content-Length: 0",
        "",
        "",
    ]
    assert response_to(request, 100, "Trying", to_tag="abc").get("To") == f"<sip:alice@{DOMAIN}>"
    tagged = request.with_header("To", "<sip:a@h>;tag=keep")
    assert response_to(tagged, 200, "OK", to_tag="abc").get("To") == "<sip:a@h>;tag=keep"
    broken = request.with_header("To", "<sip:a@h")
    assert response_to(broken, 400, "Bad Request", to_tag="abc").get("To") == "<sip:a@h"


def test_salvage_keeps_what_a_400_needs() -> None:
    broken = (
        jssip_register().replace(b"Expires: 600", b"Expires 600").replace(b"Contact: <", b"Contact: \x01<")
    )
    with pytest.raises(SipParseError):
        parse_message(broken)
    rescued = salvage(broken)
    assert rescued is not None and (rescued.method, rescued.uri) == ("REGISTER", f"sip:{DOMAIN}")
    assert [h.name for h in rescued.headers] == ["Via", "To", "From", "Call-ID", "CSeq"]
    assert salvage(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n") is None
    assert salvage(b"\xff\xfe") is None
    two_vias = salvage(b"BYE sip:a@b SIP/2.0\r\nv: SIP/2.0/WSS a, SIP/2.0/WSS b\r\nBad\r\n \r\n")
    assert two_vias is not None and two_vias.get_all("Via") == ("SIP/2.0/WSS a", "SIP/2.0/WSS b")


# Properties

_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(_TOKEN_CHARS, min_size=1, max_size=12)
# Values: no control characters, no edge whitespace; for list headers no , " < > either.
safe_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=',"<>'), max_size=30
)
values = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40).map(lambda v: v.strip(" \t"))
list_values = safe_text.map(lambda v: v.strip(" \t")).filter(bool)
names = tokens.filter(
    lambda n: (
        canonical_name(n) == n
        and n.lower() not in ("content-length", "via", "contact", "route", "record-route")
    )
)


@st.composite
def messages(draw: st.DrawFn) -> SipMessage:
    headers = draw(
        st.lists(
            st.one_of(
                st.builds(Header, names, values),
                st.builds(Header, st.sampled_from(["Via", "Contact", "Route", "Record-Route"]), list_values),
            ),
            max_size=12,
        )
    )
    body = draw(st.binary(max_size=60))
    if draw(st.booleans()):
        uri = "sip:" + draw(tokens) + "@" + draw(st.from_regex(r"[a-z0-9]{1,10}\.invalid", fullmatch=True))
        return SipMessage(method=draw(tokens), uri=uri, headers=tuple(headers), body=body)
    reason = draw(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20))
    return SipMessage(status=draw(st.integers(100, 699)), reason=reason, headers=tuple(headers), body=body)


@given(messages())
def test_parse_serialize_round_trip(msg: SipMessage) -> None:
    assert parse_message(msg.serialize()) == msg


SEEDS = [jssip_register(), jssip_invite(), b"SIP/2.0 200 OK\r\nv: a, b\r\nm: <sip:a@b>;expires=1\r\n\r\n"]


@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 2000), st.binary(max_size=8)), max_size=6))
def test_mangled_input_raises_only_sip_parse_error_and_reparses_to_itself(
    seed: bytes, edits: list[tuple[int, bytes]]
) -> None:
    data = seed
    for offset, chunk in edits:
        at = offset % (len(data) + 1)
        data = data[:at] + chunk + data[at + len(chunk) // 2 :]
    try:
        msg = parse_message(data)
    except SipParseError:
        return
    assert parse_message(msg.serialize()) == msg
    for read in (
        SipMessage.top_via,
        SipMessage.cseq,
        SipMessage.to_addr,
        SipMessage.contacts,
        SipMessage.expires,
    ):
        with contextlib.suppress(SipParseError):
            read(msg)


@given(st.binary(max_size=400))
def test_any_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse_message(data)
    salvage(data)
