"""A JsSIP-to-SIP.js call as the browsers send it over WSS, for the SIP parser and registrar harnesses.

Copied in shape from tests/cli/sip_samples.py (no run-time import of tests/): a random `*.invalid`
Via host, `transport=ws` Contacts, JsSIP's `+sip.ice;reg-id;+sip.instance` on REGISTER and `;ob` on
its dialog Contact, SIP.js's bare `expires=600`.
"""

from __future__ import annotations

__all__ = [
    "ALICE_CONTACT",
    "BOB_CONTACT",
    "DOMAIN",
    "RECORD_ROUTE",
    "VIA_HOST",
    "in_dialog",
    "jssip_invite",
    "jssip_message",
    "jssip_options",
    "jssip_register",
    "message",
    "sipjs_register",
    "sipjs_unregister_all",
]

DOMAIN = "example.com"
VIA_HOST = "edge.example.com"
RECORD_ROUTE = f"<sip:{VIA_HOST};transport=ws;lr>"
ALICE_HOST = "4r5bc3s6b9kq.invalid"  # JsSIP
ALICE_CONTACT = f"sip:q8s2r7ie@{ALICE_HOST};transport=ws"
ALICE_INSTANCE = '+sip.instance="<urn:uuid:0a828c3b-a148-4db0-935f-257603c5980f>"'
BOB_HOST = "fq4b1x5l86qr.invalid"  # SIP.js
BOB_CONTACT = f"sip:6ndr0o7p@{BOB_HOST};transport=ws"
SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)


def message(*lines: str, body: str = "") -> bytes:
    """Lines joined with CRLF, an empty line, then the body, with a matching Content-Length."""
    data = body.encode()
    return ("\r\n".join((*lines, f"Content-Length: {len(data)}")) + "\r\n\r\n").encode() + data


def jssip_register(user: str = "alice", expires: int = 600, cseq: int = 1) -> bytes:
    """JsSIP's REGISTER: `expires` on the Contact and an `Expires` header."""
    return message(
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK274181{cseq}",
        "Max-Forwards: 69",
        f"To: <sip:{user}@{DOMAIN}>",
        f'From: "Alice" <sip:{user}@{DOMAIN}>;tag=ih6t6a2pmq',
        "Call-ID: 3qd1mbk7fbvdvhv3eg46ae",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <{ALICE_CONTACT}>;+sip.ice;reg-id=1;{ALICE_INSTANCE};expires={expires}",
        f"Expires: {expires}",
        "Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY",
        "Supported: path,gruu,outbound",
        "User-Agent: JsSIP 3.13.8",
    )


def sipjs_register(expires: int = 600, cseq: int = 1) -> bytes:
    """SIP.js's REGISTER: `expires` only on the Contact, compact-free, no `Expires` header."""
    return message(
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {BOB_HOST};branch=z9hG4bK404489{cseq}",
        f"To: <sip:bob@{DOMAIN}>",
        f"From: <sip:bob@{DOMAIN}>;tag=filsr1bmnr",
        f"CSeq: {cseq} REGISTER",
        "Call-ID: lbhbpldk0jnp2sg3c0krat",
        "Max-Forwards: 70",
        f"Contact: <{BOB_CONTACT}>;expires={expires}",
        "Allow: ACK,CANCEL,INVITE,MESSAGE,BYE,OPTIONS,INFO,NOTIFY,REFER",
        "Supported: outbound, path, gruu",
        "User-Agent: SIP.js/0.21.2",
    )


def sipjs_unregister_all() -> bytes:
    """SIP.js's `unregister({all: true})`: `Contact: *` with `Expires: 0`."""
    return message(
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {BOB_HOST};branch=z9hG4bK4044899",
        f"To: <sip:bob@{DOMAIN}>",
        f"From: <sip:bob@{DOMAIN}>;tag=filsr1bmnr",
        "CSeq: 9 REGISTER",
        "Call-ID: lbhbpldk0jnp2sg3c0krat",
        "Max-Forwards: 70",
        "Contact: *",
        "Expires: 0",
        "User-Agent: SIP.js/0.21.2",
    )


def jssip_message(to: str = "bob", text: str = "hello, bob!") -> bytes:
    """JsSIP's MESSAGE from alice."""
    return message(
        f"MESSAGE sip:{to}@{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK5536671",
        "Max-Forwards: 69",
        f"To: <sip:{to}@{DOMAIN}>",
        f'From: "Alice" <sip:alice@{DOMAIN}>;tag=0u8npgq3ke',
        "Call-ID: b1dk4gpbdvetak0uqfso",
        "CSeq: 7143 MESSAGE",
        "Content-Type: text/plain",
        "Supported: outbound",
        "User-Agent: JsSIP 3.13.8",
        body=text,
    )


def jssip_options(target: str = f"sip:{DOMAIN}") -> bytes:
    """JsSIP's OPTIONS ping, here in compact form (v, f, t, i) as some stacks send it."""
    return message(
        f"OPTIONS {target} SIP/2.0",
        f"v: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK8161101",
        "Max-Forwards: 69",
        f"t: <{target}>",
        f'f: "Alice" <sip:alice@{DOMAIN}>;tag=o2kq9',
        "i: 4dk1m0sa9vq2lcbn83",
        "CSeq: 2 OPTIONS",
        "Accept: application/sdp",
        "User-Agent: JsSIP 3.13.8",
    )


def jssip_invite(method: str = "INVITE") -> bytes:
    """JsSIP's INVITE from alice to bob (or the CANCEL of it, same branch, RFC 3261 9.1)."""
    invite = method == "INVITE"
    dialog = (
        f"Contact: <{ALICE_CONTACT};ob>",
        "Content-Type: application/sdp",
        "Session-Expires: 90",
        "Supported: timer,ice,replaces,outbound",
    )
    return message(
        f"{method} sip:bob@{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch=z9hG4bK9184312",
        "Max-Forwards: 69",
        f"To: <sip:bob@{DOMAIN}>",
        f'From: "Alice" <sip:alice@{DOMAIN}>;tag=ko5v2ivqjr',
        "Call-ID: nq6pm9hbud2vht2jrhfs",
        f"CSeq: 5231 {method}",
        *(dialog if invite else ()),
        "User-Agent: JsSIP 3.13.8",
        body=SDP if invite else "",
    )


def in_dialog(method: str, target: str, branch: str, cseq: int, from_bob: bool = False) -> bytes:
    """An ACK or BYE inside alice's call to bob (tags ko5v2ivqjr and 9vs4bq), through our Record-Route."""
    alice = f'"Alice" <sip:alice@{DOMAIN}>;tag=ko5v2ivqjr'
    bob = f"<sip:bob@{DOMAIN}>;tag=9vs4bq"
    return message(
        f"{method} {target} SIP/2.0",
        f"Route: {RECORD_ROUTE}",
        f"Via: SIP/2.0/WSS {BOB_HOST if from_bob else ALICE_HOST};branch={branch}",
        "Max-Forwards: 70",
        f"To: {alice if from_bob else bob}",
        f"From: {bob if from_bob else alice}",
        "Call-ID: nq6pm9hbud2vht2jrhfs",
        f"CSeq: {cseq} {method}",
    )
