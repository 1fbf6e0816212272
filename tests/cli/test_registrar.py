"""The `registrar` app: REGISTER, relay between browser flows, and every answer it makes itself."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sip_samples import (
    ALICE_CONTACT,
    ALICE_HOST,
    ALICE_INSTANCE,
    BOB_CONTACT,
    BOB_HOST,
    DOMAIN,
    RECORD_ROUTE,
    SDP,
    VIA_HOST,
    answer,
    head,
    in_dialog,
    jssip_invite,
    jssip_message,
    jssip_register,
    message,
    sipjs_register,
)

from sansio_wss.cli.registrar import BRANCH_LINGER, BRANCH_TIMEOUT, Counters, Registrar, Send
from sansio_wss.cli.sipmsg import parse_message
from sansio_wss.cli.sipuri import SipParseError

ALICE, BOB = 1, 2
OUR_VIA = re.compile(rf"Via: SIP/2\.0/WSS {re.escape(VIA_HOST)};branch=(z9hG4bK[0-9a-f]{{20}})")
CAROL_CONTACT = "sip:c4r0l@k2j3h4g5f6d7.invalid;transport=ws"


def one(sends: list[Send], flow_id: int) -> list[str]:
    """The header lines of the single message in `sends`, which must go to `flow_id`."""
    assert [s.flow_id for s in sends] == [flow_id]
    return head(sends[0].message)


def both_registered(**options: int) -> Registrar:
    registrar = Registrar(DOMAIN, VIA_HOST, **options)
    registrar.received(jssip_register(), ALICE, 0.0)
    registrar.received(sipjs_register(), BOB, 0.0)
    return registrar


def relay_message(
    registrar: Registrar, now: float = 1.0, branch: str = "z9hG4bK5536671"
) -> tuple[str, bytes]:
    """Alice's MESSAGE relayed to bob: (our branch, the relayed bytes)."""
    sends = registrar.received(jssip_message(branch=branch), ALICE, now)
    lines = one(sends, BOB)
    match = OUR_VIA.fullmatch(lines[1])
    assert match is not None
    return match.group(1), sends[0].message


def to_tag(lines: list[str], to: str) -> str:
    line = next(line for line in lines if line.startswith("To: "))
    assert line.startswith(f"To: {to};tag=")
    tag = line.removeprefix(f"To: {to};tag=")
    assert re.fullmatch("[0-9a-f]{12}", tag)
    return tag


# REGISTER


def test_jssip_register_gets_200_repeating_its_contact_with_expires() -> None:
    registrar = Registrar(DOMAIN, VIA_HOST)
    lines = one(registrar.received(jssip_register(), ALICE, 100.0), ALICE)
    tag = to_tag(lines, f"<sip:alice@{DOMAIN}>")
    assert lines == [
        "SIP/2.0 200 OK",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK2741817",
        f'From: "Alice" <sip:alice@{DOMAIN}>;tag=ih6t6a2pmq',
        f"To: <sip:alice@{DOMAIN}>;tag={tag}",
        "Call-ID: 3qd1mbk7fbvdvhv3eg46ae",
        "CSeq: 1 REGISTER",
        f"Contact: <{ALICE_CONTACT}>;+sip.ice;reg-id=1;{ALICE_INSTANCE};expires=600",
        "Expires: 600",
        "Content-Length: 0",
    ]
    ((binding,),) = registrar.bindings.values()
    assert list(registrar.bindings) == [f"alice@{DOMAIN}"]
    assert (binding.flow_id, str(binding.contact), binding.expires_at) == (ALICE, ALICE_CONTACT, 700.0)


def test_a_retransmitted_register_gets_the_same_bytes() -> None:
    registrar = Registrar(DOMAIN, VIA_HOST)
    first = registrar.received(jssip_register(), ALICE, 0.0)
    assert registrar.received(jssip_register(), ALICE, 0.0) == first


def test_sipjs_register_without_expires_header_gets_contact_expires_and_an_expires_header() -> None:
    lines = one(Registrar(DOMAIN, VIA_HOST).received(sipjs_register(expires=300), BOB, 0.0), BOB)
    assert lines[-3:] == [f"Contact: <{BOB_CONTACT}>;expires=300", "Expires: 300", "Content-Length: 0"]


@pytest.mark.parametrize(
    ("contact_expires", "header_expires", "granted"),
    [(None, None, 600), (None, 120, 120), (90, 120, 90), (7200, None, 3600), (None, 99999, 3600)],
)
def test_expires_comes_from_contact_then_header_then_default_capped(
    contact_expires: int | None, header_expires: int | None, granted: int
) -> None:
    registrar = Registrar(DOMAIN, VIA_HOST, default_expires=600, max_expires=3600)
    lines = one(registrar.received(jssip_register(contact_expires, header_expires), ALICE, 10.0), ALICE)
    assert lines[-3:] == [
        f"Contact: <{ALICE_CONTACT}>;+sip.ice;reg-id=1;{ALICE_INSTANCE};expires={granted}",
        f"Expires: {granted}",
        "Content-Length: 0",
    ]
    assert registrar.bindings[f"alice@{DOMAIN}"][0].expires_at == 10.0 + granted


def test_a_refresh_later_reports_the_new_expiry_and_keeps_one_binding() -> None:
    registrar = Registrar(DOMAIN, VIA_HOST)
    registrar.received(jssip_register(), ALICE, 0.0)
    lines = one(registrar.received(jssip_register(cseq=2, branch="z9hG4bK77"), ALICE, 500.0), ALICE)
    assert [line for line in lines if line.startswith("Contact")] == [
        f"Contact: <{ALICE_CONTACT}>;+sip.ice;reg-id=1;{ALICE_INSTANCE};expires=600"
    ]
    assert [b.expires_at for b in registrar.bindings[f"alice@{DOMAIN}"]] == [1100.0]


def test_unregister_removes_the_binding() -> None:
    registrar = both_registered()
    lines = one(registrar.received(jssip_register(0, 0, cseq=2, branch="z9hG4bK88"), ALICE, 5.0), ALICE)
    assert lines[-2:] == ["Expires: 0", "Content-Length: 0"]
    assert not any(line.startswith("Contact") for line in lines)
    assert list(registrar.bindings) == [f"bob@{DOMAIN}"]
    assert one(registrar.received(jssip_message(to="alice"), BOB, 6.0), BOB)[0] == "SIP/2.0 404 Not Found"


def _register_star(expires: str) -> bytes:
    return message(
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bKstar",
        f"To: <sip:alice@{DOMAIN}>",
        f"From: <sip:alice@{DOMAIN}>;tag=x1",
        "Call-ID: star-1",
        "CSeq: 9 REGISTER",
        "Contact: *",
        f"Expires: {expires}",
    )


def test_contact_star_with_expires_0_removes_every_binding_of_the_aor() -> None:
    registrar = Registrar(DOMAIN, VIA_HOST)
    registrar.received(jssip_register(), ALICE, 0.0)
    registrar.received(jssip_register(contact="sip:other@zz.invalid;transport=ws", branch="z9hG4bK2"), 3, 0.0)
    assert len(registrar.bindings[f"alice@{DOMAIN}"]) == 2
    lines = one(registrar.received(_register_star("0"), ALICE, 1.0), ALICE)
    assert lines[0] == "SIP/2.0 200 OK"
    assert lines[-2:] == ["Expires: 0", "Content-Length: 0"]
    assert dict(registrar.bindings) == {}


def test_contact_star_without_expires_0_is_a_bad_request() -> None:
    registrar = Registrar(DOMAIN, VIA_HOST)
    registrar.received(jssip_register(), ALICE, 0.0)
    lines = one(registrar.received(_register_star("60"), ALICE, 1.0), ALICE)
    assert lines[0] == "SIP/2.0 400 Bad Request (Contact * needs Expires: 0 and no other Contact)"
    assert len(registrar.bindings[f"alice@{DOMAIN}"]) == 1


def test_register_without_contact_lists_the_bindings_without_expires_header() -> None:
    registrar = Registrar(DOMAIN, VIA_HOST)
    registrar.received(jssip_register(), ALICE, 0.0)
    query = jssip_register().replace(b"Contact: ", b"X-Was-Contact: ").replace(b"Expires: 600\r\n", b"")
    lines = one(registrar.received(query, ALICE, 100.0), ALICE)
    assert lines[-2:] == [
        f"Contact: <{ALICE_CONTACT}>;+sip.ice;reg-id=1;{ALICE_INSTANCE};expires=500",
        "Content-Length: 0",
    ]


def test_reconnecting_moves_the_binding_to_the_new_flow() -> None:
    registrar = Registrar(DOMAIN, VIA_HOST)
    registrar.received(jssip_register(), ALICE, 0.0)
    registrar.flow_closed(ALICE)
    registrar.received(jssip_register(cseq=2, branch="z9hG4bK99"), 7, 3.0)
    assert [(b.flow_id, b.expires_at) for b in registrar.bindings[f"alice@{DOMAIN}"]] == [(7, 603.0)]


def test_register_for_another_domain_is_404_when_a_domain_is_set() -> None:
    other = jssip_register().replace(f"@{DOMAIN}>".encode(), b"@elsewhere.org>")
    lines = one(Registrar(DOMAIN, VIA_HOST).received(other, ALICE, 0.0), ALICE)
    assert lines[0] == "SIP/2.0 404 Not Found"
    registrar = Registrar(None, VIA_HOST)
    assert one(registrar.received(other, ALICE, 0.0), ALICE)[0] == "SIP/2.0 200 OK"
    assert list(registrar.bindings) == ["alice@elsewhere.org"]


def test_bindings_expire_lazily() -> None:
    registrar = Registrar(DOMAIN, VIA_HOST)
    registrar.received(jssip_register(), ALICE, 0.0)
    registrar.received(sipjs_register(expires=60), BOB, 0.0)
    relay_message(registrar, now=59.0)
    assert one(registrar.received(jssip_message(branch="z9hG4bKlate"), ALICE, 60.0), ALICE)[0] == (
        "SIP/2.0 404 Not Found"
    )
    assert list(registrar.bindings) == [f"alice@{DOMAIN}"]
    registrar.purge(600.0)
    assert dict(registrar.bindings) == {}


# Relaying


def test_message_is_relayed_to_bob_and_his_200_goes_back_to_alice_without_our_via() -> None:
    registrar = both_registered()
    branch, relayed = relay_message(registrar)
    assert head(relayed) == [
        f"MESSAGE {BOB_CONTACT} SIP/2.0",
        f"Via: SIP/2.0/WSS {VIA_HOST};branch={branch}",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK5536671",
        "Max-Forwards: 68",
        f"To: <sip:bob@{DOMAIN}>",
        f'From: "Alice" <sip:alice@{DOMAIN}>;tag=0u8npgq3ke',
        "Call-ID: b1dk4gpbdvetak0uqfso",
        "CSeq: 7143 MESSAGE",
        "Content-Type: text/plain",
        "Supported: outbound",
        "User-Agent: JsSIP 3.13.8",
        "Content-Length: 11",
    ]
    assert relayed.endswith(b"\r\n\r\nhello, bob!")
    back = registrar.received(answer(relayed, 200, "OK"), BOB, 1.5)
    assert one(back, ALICE) == [
        "SIP/2.0 200 OK",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK5536671",
        f"To: <sip:bob@{DOMAIN}>;tag=9vs4bq",
        f'From: "Alice" <sip:alice@{DOMAIN}>;tag=0u8npgq3ke',
        "Call-ID: b1dk4gpbdvetak0uqfso",
        "CSeq: 7143 MESSAGE",
        "Content-Length: 0",
    ]
    assert registrar.counters == Counters(received=4, replies=2, relayed_requests=1, relayed_responses=1)


def test_retransmissions_map_to_the_same_branch_and_another_flow_to_another() -> None:
    registrar = both_registered()
    first = registrar.received(jssip_message(), ALICE, 1.0)
    assert registrar.received(jssip_message(), ALICE, 2.0) == first
    registrar.received(jssip_register(contact="sip:x@y.invalid;transport=ws", user="dave"), 5, 2.0)
    other = registrar.received(jssip_message(), 5, 3.0)
    (ours,) = (OUR_VIA.fullmatch(head(s.message)[1]) for s in first)
    (theirs,) = (OUR_VIA.fullmatch(head(s.message)[1]) for s in other)
    assert ours is not None and theirs is not None and ours.group(1) != theirs.group(1)
    assert [s.flow_id for s in registrar.received(answer(other[0].message, 200, "OK"), BOB, 3.5)] == [5]
    assert [s.flow_id for s in registrar.received(answer(first[0].message, 200, "OK"), BOB, 3.5)] == [ALICE]
    assert registrar.branch_count == 2


def test_missing_max_forwards_counts_as_70() -> None:
    registrar = both_registered()
    lines = one(registrar.received(jssip_message(max_forwards=None), ALICE, 1.0), BOB)
    assert lines[-2:] == ["Max-Forwards: 69", "Content-Length: 11"]


def test_max_forwards_0_gets_483() -> None:
    lines = one(both_registered().received(jssip_message(max_forwards="0"), ALICE, 1.0), ALICE)
    assert lines[0] == "SIP/2.0 483 Too Many Hops"
    to_tag(lines, f"<sip:bob@{DOMAIN}>")


def test_unknown_user_gets_404_with_the_rfc_3261_copied_headers() -> None:
    lines = one(both_registered().received(jssip_message(to="carol"), ALICE, 1.0), ALICE)
    tag = to_tag(lines, f"<sip:carol@{DOMAIN}>")
    assert lines == [
        "SIP/2.0 404 Not Found",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK5536671",
        f'From: "Alice" <sip:alice@{DOMAIN}>;tag=0u8npgq3ke',
        f"To: <sip:carol@{DOMAIN}>;tag={tag}",
        "Call-ID: b1dk4gpbdvetak0uqfso",
        "CSeq: 7143 MESSAGE",
        "Content-Length: 0",
    ]


def test_registered_user_whose_flow_closed_gets_480_until_it_registers_again() -> None:
    registrar = both_registered()
    registrar.flow_closed(BOB)
    assert (
        one(registrar.received(jssip_message(), ALICE, 1.0), ALICE)[0]
        == "SIP/2.0 480 Temporarily Unavailable"
    )
    registrar.received(sipjs_register(cseq=2, branch="z9hG4bK5"), 9, 2.0)
    one(registrar.received(jssip_message(branch="z9hG4bKnext"), ALICE, 3.0), 9)


def test_requests_go_to_the_newest_live_binding() -> None:
    registrar = both_registered()
    second = jssip_register(contact="sip:tab2@t2.invalid;transport=ws", user="bob", branch="z9hG4bK3")
    registrar.received(second, 3, 1.0)
    assert [b.flow_id for b in registrar.bindings[f"bob@{DOMAIN}"]] == [3, BOB]
    assert (
        one(registrar.received(jssip_message(), ALICE, 2.0), 3)[0]
        == "MESSAGE sip:tab2@t2.invalid;transport=ws SIP/2.0"
    )
    registrar.flow_closed(3)
    assert one(registrar.received(jssip_message(branch="z9hG4bK6"), ALICE, 3.0), BOB)[0] == (
        f"MESSAGE {BOB_CONTACT} SIP/2.0"
    )


def test_invite_gets_record_route_and_the_dialog_goes_through_us() -> None:
    registrar = both_registered()
    invite = registrar.received(jssip_invite(), ALICE, 1.0)
    lines = one(invite, BOB)
    assert lines[:4] == [
        f"INVITE {BOB_CONTACT} SIP/2.0",
        f"Record-Route: {RECORD_ROUTE}",
        lines[2],
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK9184312",
    ]
    assert OUR_VIA.fullmatch(lines[2])
    assert invite[0].message.endswith(SDP.encode())
    ringing = one(registrar.received(answer(invite[0].message, 180, "Ringing"), BOB, 1.2), ALICE)
    assert ringing[:3] == ["SIP/2.0 180 Ringing", f"Record-Route: {RECORD_ROUTE}", lines[3]]
    ok = answer(
        invite[0].message, 200, "OK", f"Contact: <{BOB_CONTACT}>", "Content-Type: application/sdp", body=SDP
    )
    assert one(registrar.received(ok, BOB, 2.0), ALICE)[:3] == [
        "SIP/2.0 200 OK",
        f"Record-Route: {RECORD_ROUTE}",
        lines[3],
    ]
    # ACK and BYE name the peer's Contact (JsSIP's with ;ob) and carry our Route, which goes.
    assert registrar.branch_count == 1  # ACKs get no response: their branches are not remembered
    ack = one(registrar.received(in_dialog("ACK", BOB_CONTACT, "z9hG4bKack1", 5231), ALICE, 2.1), BOB)
    assert registrar.branch_count == 1
    assert ack[0] == f"ACK {BOB_CONTACT} SIP/2.0"
    assert OUR_VIA.fullmatch(ack[1]) and ack[2] == f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bKack1"
    assert not any(line.startswith("Route") for line in ack)
    bye = registrar.received(
        in_dialog("BYE", f"{ALICE_CONTACT};ob", "z9hG4bKbye1", 1, from_bob=True), BOB, 9.0
    )
    bye_lines = one(bye, ALICE)
    assert bye_lines[0] == f"BYE {ALICE_CONTACT};ob SIP/2.0"
    assert "Max-Forwards: 69" in bye_lines and not any(
        line.startswith(("Route", "Record-Route")) for line in bye_lines
    )
    assert one(registrar.received(answer(bye[0].message, 200, "OK"), ALICE, 9.1), BOB)[1] == (
        f"Via: SIP/2.0/WSS {BOB_HOST};branch=z9hG4bKbye1"
    )


def test_a_reinvite_in_dialog_gets_no_record_route() -> None:
    registrar = both_registered()
    reinvite = in_dialog("INVITE", BOB_CONTACT, "z9hG4bKre", 5232)
    lines = one(registrar.received(reinvite, ALICE, 1.0), BOB)
    assert OUR_VIA.fullmatch(lines[1]) and not any(
        line.startswith(("Route", "Record-Route")) for line in lines
    )


def test_only_our_own_route_is_removed() -> None:
    registrar = both_registered()
    foreign = in_dialog("BYE", BOB_CONTACT, "z9hG4bKr", 5233).replace(
        RECORD_ROUTE.encode(), b"<sip:proxy.example.net;lr>"
    )
    assert "Route: <sip:proxy.example.net;lr>" in one(registrar.received(foreign, ALICE, 1.0), BOB)
    with_user = foreign.replace(b"<sip:proxy.example.net;lr>", f"<sip:me@{VIA_HOST};lr>".encode())
    assert f"Route: <sip:me@{VIA_HOST};lr>" in one(registrar.received(with_user, ALICE, 1.0), BOB)


def test_a_via_host_with_a_port_goes_in_via_and_record_route_and_must_match_exactly() -> None:
    registrar = Registrar(DOMAIN, f"{VIA_HOST}:8443")
    registrar.received(sipjs_register(), BOB, 0.0)
    lines = one(registrar.received(jssip_invite(), ALICE, 1.0), BOB)
    assert lines[1] == f"Record-Route: <sip:{VIA_HOST}:8443;transport=ws;lr>"
    assert lines[2].startswith(f"Via: SIP/2.0/WSS {VIA_HOST}:8443;branch=z9hG4bK")
    bye = in_dialog("BYE", BOB_CONTACT, "z9hG4bKp", 5233)
    assert f"Route: {RECORD_ROUTE}" in one(registrar.received(bye, ALICE, 1.0), BOB)
    ours = bye.replace(RECORD_ROUTE.encode(), f"<sip:{VIA_HOST}:8443;transport=ws;lr>".encode())
    assert not any(line.startswith("Route") for line in one(registrar.received(ours, ALICE, 1.0), BOB))
    ok = answer(registrar.received(jssip_invite(branch="z9hG4bKq"), ALICE, 1.0)[0].message, 200, "OK")
    assert registrar.received(ok.replace(f"{VIA_HOST}:8443".encode(), VIA_HOST.encode()), BOB, 1.1) == []
    one(registrar.received(ok, BOB, 1.1), ALICE)


def test_cancel_follows_the_invite_and_the_487_ack_too() -> None:
    registrar = both_registered()
    invite = registrar.received(jssip_invite(), ALICE, 1.0)
    branch = OUR_VIA.fullmatch(head(invite[0].message)[2])
    assert branch is not None
    cancel = one(registrar.received(jssip_invite("CANCEL"), ALICE, 2.0), BOB)
    assert cancel[:3] == [
        f"CANCEL {BOB_CONTACT} SIP/2.0",
        f"Via: SIP/2.0/WSS {VIA_HOST};branch={branch.group(1)}",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK9184312",
    ]
    cancel_ok = registrar.received(
        answer(registrar.received(jssip_invite("CANCEL"), ALICE, 2.0)[0].message, 200, "OK"), BOB, 2.1
    )
    assert one(cancel_ok, ALICE)[-2] == "CSeq: 5231 CANCEL"
    terminated = one(
        registrar.received(answer(invite[0].message, 487, "Request Terminated"), BOB, 2.2), ALICE
    )
    assert terminated[0] == "SIP/2.0 487 Request Terminated" and "CSeq: 5231 INVITE" in terminated
    ack = one(registrar.received(jssip_invite("ACK"), ALICE, 2.3), BOB)
    assert ack[:2] == [f"ACK {BOB_CONTACT} SIP/2.0", f"Via: SIP/2.0/WSS {VIA_HOST};branch={branch.group(1)}"]


def test_cancel_without_its_invite_gets_481() -> None:
    lines = one(both_registered().received(jssip_invite("CANCEL"), ALICE, 1.0), ALICE)
    assert lines[0] == "SIP/2.0 481 Call/Transaction Does Not Exist"


# Answered here, or not at all


def test_options_to_the_server_gets_200_with_allow_accept_supported() -> None:
    options = message(
        f"OPTIONS sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bKopt",
        "Max-Forwards: 70",
        f"To: <sip:{DOMAIN}>",
        f"From: <sip:alice@{DOMAIN}>;tag=o1",
        "Call-ID: opt-1",
        "CSeq: 1 OPTIONS",
    )
    lines = one(Registrar(DOMAIN, VIA_HOST).received(options, ALICE, 0.0), ALICE)
    tag = to_tag(lines, f"<sip:{DOMAIN}>")
    assert lines == [
        "SIP/2.0 200 OK",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bKopt",
        f"From: <sip:alice@{DOMAIN}>;tag=o1",
        f"To: <sip:{DOMAIN}>;tag={tag}",
        "Call-ID: opt-1",
        "CSeq: 1 OPTIONS",
        "Allow: REGISTER, OPTIONS",
        "Accept: */*",
        "Supported: ",
        "Content-Length: 0",
    ]
    to_via_host = options.replace(f"OPTIONS sip:{DOMAIN}".encode(), f"OPTIONS sip:ping@{VIA_HOST}".encode())
    assert (
        one(Registrar(DOMAIN, VIA_HOST).received(to_via_host, ALICE, 0.0), ALICE)[-4]
        == "Allow: REGISTER, OPTIONS"
    )
    to_bob = options.replace(f"OPTIONS sip:{DOMAIN}".encode(), f"OPTIONS sip:bob@{DOMAIN}".encode())
    assert one(both_registered().received(to_bob, ALICE, 0.0), BOB)[0] == f"OPTIONS {BOB_CONTACT} SIP/2.0"


def test_other_methods_to_the_server_get_405_and_other_schemes_416() -> None:
    registrar = both_registered()
    to_server = jssip_message().replace(
        f"MESSAGE sip:bob@{DOMAIN}".encode(), f"MESSAGE sip:{DOMAIN}".encode()
    )
    lines = one(registrar.received(to_server, ALICE, 1.0), ALICE)
    assert (lines[0], lines[-2]) == ("SIP/2.0 405 Method Not Allowed", "Allow: REGISTER, OPTIONS")
    tel = jssip_message().replace(f"MESSAGE sip:bob@{DOMAIN}".encode(), b"MESSAGE tel:+15551234567")
    assert one(registrar.received(tel, ALICE, 1.0), ALICE)[0] == "SIP/2.0 416 Unsupported URI Scheme"


def test_an_ack_is_never_answered() -> None:
    registrar = both_registered()
    ack = in_dialog("ACK", f"sip:nobody@{DOMAIN}", "z9hG4bKa", 1)
    assert registrar.received(ack, ALICE, 1.0) == []
    assert registrar.received(ack.replace(b"To: ", b"X-To: "), ALICE, 1.0) == []
    assert registrar.received(ack.replace(b"Max-Forwards: 70", b"Max-Forwards: 0"), ALICE, 1.0) == []
    assert registrar.counters.dropped_acks == 3


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ((b"To: <sip:bob@example.com>\r\n", b""), "missing To"),
        ((b"CSeq: 7143 MESSAGE", b"CSeq: 7143 INVITE"), "CSeq method differs from the request's"),
        ((b";branch=z9hG4bK5536671", b""), "Via has no branch"),
        ((b"Max-Forwards: 69", b"Max-Forwards: many"), "invalid Max-Forwards"),
        ((b"<sip:alice@example.com>;tag", b"<sip:alice@example.com;tag"), "expected <URI>"),
        ((b"Supported: outbound", b"Supported outbound"), "invalid header line"),
        ((b"Content-Length: 11", b"Content-Length: 99"), "body shorter than Content-Length"),
        ((b"User-Agent: JsSIP", b"User-Agent: \x01JsSIP"), "control character or bare CR/LF in the header"),
    ],
)
def test_a_malformed_request_with_via_cseq_call_id_gets_400_with_the_reason(
    change: tuple[bytes, bytes], reason: str
) -> None:
    bad = jssip_message().replace(*change)
    assert bad != jssip_message()
    lines = one(both_registered().received(bad, ALICE, 1.0), ALICE)
    assert lines[0] == f"SIP/2.0 400 Bad Request ({reason})"
    assert lines[1] == f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK5536671" or reason == "Via has no branch"
    assert lines[-3:] == ["Call-ID: b1dk4gpbdvetak0uqfso", "CSeq: " + lines[-2][6:], "Content-Length: 0"]


@pytest.mark.parametrize(
    "bad",
    [
        jssip_message()
        .replace(b"Call-ID: b1dk4gpbdvetak0uqfso\r\n", b"")
        .replace(b"Supported: ", b"Supported "),
        jssip_message().replace(b"Via: SIP/2.0/WSS", b"Via: HTTP/1.1"),
        jssip_message().replace(b"CSeq: 7143 MESSAGE", b"CSeq: many"),
        jssip_message().replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1),
        b"\x00\xff garbage",
        b"",
    ],
)
def test_malformed_input_without_usable_via_cseq_call_id_is_dropped_and_counted(bad: bytes) -> None:
    registrar = both_registered()
    assert registrar.received(bad, ALICE, 1.0) == []
    assert registrar.counters.dropped_malformed == 1


# Responses


def test_responses_not_ours_or_to_unknown_branches_are_dropped() -> None:
    registrar = both_registered()
    _, relayed = relay_message(registrar)
    ok = answer(relayed, 200, "OK")
    not_ours = ok.replace(f"Via: SIP/2.0/WSS {VIA_HOST}".encode(), b"Via: SIP/2.0/WSS proxy.example.net")
    unknown = ok.replace(b";branch=z9hG4bK", b";branch=z9hG4bKx", 1)
    only_ours = answer(relayed, 200, "OK").replace(f"Via: SIP/2.0/WSS {ALICE_HOST}".encode(), b"X-Via: gone")
    for response in (not_ours, unknown, only_ours, b"SIP/2.0 200 OK\r\n\r\n"):
        assert registrar.received(response, BOB, 1.5) == []
    assert registrar.received(ok, 3, 1.5) == []  # from another flow than bob's
    assert registrar.counters.dropped_responses == 5 and registrar.counters.dropped_malformed == 0
    one(registrar.received(ok, BOB, 1.6), ALICE)


def test_final_responses_are_relayed_for_a_linger_then_the_branch_is_forgotten() -> None:
    registrar = both_registered()
    _, relayed = relay_message(registrar, now=1.0)
    ok = answer(relayed, 200, "OK")
    one(registrar.received(ok, BOB, 2.0), ALICE)
    one(registrar.received(ok, BOB, 2.0 + BRANCH_LINGER), ALICE)
    assert registrar.received(ok, BOB, 2.0 + BRANCH_LINGER + 0.1) == []


def test_an_unanswered_branch_is_forgotten_after_the_timeout() -> None:
    registrar = both_registered()
    _, relayed = relay_message(registrar, now=1.0)
    one(registrar.received(answer(relayed, 100, "Trying"), BOB, 2.0), ALICE)
    assert registrar.received(answer(relayed, 200, "OK"), BOB, 1.0 + BRANCH_TIMEOUT + 0.1) == []


def test_a_response_for_a_closed_origin_flow_is_dropped() -> None:
    registrar = both_registered()
    _, relayed = relay_message(registrar)
    registrar.flow_closed(ALICE)
    assert registrar.received(answer(relayed, 200, "OK"), BOB, 2.0) == []
    assert registrar.counters.dropped_responses == 1


# Memory bounds


def test_bindings_are_capped_evicting_the_least_recently_refreshed() -> None:
    registrar = Registrar(DOMAIN, VIA_HOST, max_bindings=2)
    registrar.received(jssip_register(), ALICE, 0.0)
    registrar.received(sipjs_register(), BOB, 0.0)
    registrar.received(jssip_register(cseq=2, branch="z9hG4bK2"), ALICE, 1.0)
    registrar.received(jssip_register(contact=CAROL_CONTACT, user="carol", branch="z9hG4bK3"), 3, 2.0)
    assert sorted(registrar.bindings) == [f"alice@{DOMAIN}", f"carol@{DOMAIN}"]
    assert registrar.counters.evicted_bindings == 1
    assert one(registrar.received(jssip_message(), ALICE, 3.0), ALICE)[0] == "SIP/2.0 404 Not Found"


def test_branches_are_capped_evicting_the_oldest() -> None:
    registrar = both_registered(max_branches=2)
    relayed = [relay_message(registrar, branch=f"z9hG4bK{n}")[1] for n in range(3)]
    assert registrar.branch_count == 2 and registrar.counters.evicted_branches == 1
    assert registrar.received(answer(relayed[0], 200, "OK"), BOB, 2.0) == []
    for request in relayed[1:]:
        one(registrar.received(answer(request, 200, "OK"), BOB, 2.0), ALICE)


def test_expired_branches_go_first_and_are_not_counted_as_evicted() -> None:
    registrar = both_registered(max_branches=3)
    relay_message(registrar, now=1.0, branch="z9hG4bKold")
    relay_message(registrar, now=1.0 + BRANCH_TIMEOUT + 1, branch="z9hG4bKa")
    relay_message(registrar, now=1.0 + BRANCH_TIMEOUT + 1, branch="z9hG4bKb")
    assert registrar.branch_count == 2 and registrar.counters.evicted_branches == 0


def test_removing_a_binding_never_evicts_another() -> None:
    registrar = Registrar(DOMAIN, VIA_HOST, max_bindings=1)
    registrar.received(jssip_register(), ALICE, 0.0)
    registrar.received(sipjs_register(expires=0), BOB, 1.0)
    assert list(registrar.bindings) == [f"alice@{DOMAIN}"] and registrar.counters.evicted_bindings == 0


# Construction and hostile input


@pytest.mark.parametrize(
    ("domain", "via_host"),
    [(None, "bad host"), (None, "u@h"), (None, "h;x=1"), ("bad domain", "h"), (None, "")],
)
def test_invalid_names_are_refused(domain: str | None, via_host: str) -> None:
    with pytest.raises(ValueError, match=r"invalid via_host or domain|via_host is host"):
        Registrar(domain, via_host)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Registrar(None, "h", default_expires=0)


def test_an_ipv6_via_host_goes_in_brackets() -> None:
    registrar = Registrar(DOMAIN, "2001:db8::1")
    registrar.received(sipjs_register(), BOB, 0.0)
    lines = one(registrar.received(jssip_invite(), ALICE, 1.0), BOB)
    assert lines[1] == "Record-Route: <sip:[2001:db8::1];transport=ws;lr>"
    assert lines[2].startswith("Via: SIP/2.0/WSS [2001:db8::1];branch=z9hG4bK")


SAMPLES = [jssip_register(), sipjs_register(), jssip_message(), jssip_invite(), jssip_invite("CANCEL")]


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """A sample with a slice replaced by random bytes, or random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    sample = draw(st.sampled_from(SAMPLES))
    start = draw(st.integers(0, len(sample)))
    end = draw(st.integers(start, min(len(sample), start + 40)))
    return sample[:start] + draw(st.binary(max_size=20)) + sample[end:]


@given(st.lists(st.tuples(mangled(), st.integers(1, 4), st.floats(0, 1e4)), max_size=8))
def test_received_never_raises_and_sends_only_parsable_messages(
    inputs: list[tuple[bytes, int, float]],
) -> None:
    registrar = both_registered(max_bindings=3, max_branches=3)
    for data, flow, now in inputs:
        for send in registrar.received(data, flow, now):
            assert isinstance(send, Send) and 1 <= send.flow_id <= 4
            try:
                parse_message(send.message)
            except SipParseError as error:  # pragma: no cover (the failure message)
                pytest.fail(f"sent an unparsable message ({error.reason}): {send.message!r}")
        if flow == 4:
            registrar.flow_closed(2)
