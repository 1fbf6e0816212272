"""SIP messages as JsSIP 3.13 and SIP.js 0.21 send them over WSS, and a UAS reply builder, for the cli tests.

Shapes follow research/browsers.md and the traces in JsSIP#680, SIP.js#531, routr#129: a random
`*.invalid` Via host without rport, `transport=ws` Contacts (JsSIP adds `+sip.ice;reg-id;+sip.instance`
to REGISTER and `;ob` to its dialog Contact), `expires=600`.
"""

from __future__ import annotations

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
    """Header lines joined with CRLF, an empty line, then the body, with a matching Content-Length."""
    data = body.encode()
    return ("\r\n".join((*lines, f"Content-Length: {len(data)}")) + "\r\n\r\n").encode() + data


def jssip_register(
    expires: int | None = 600,
    header_expires: int | None = 600,
    cseq: int = 1,
    branch: str = "z9hG4bK2741817",
    contact: str = ALICE_CONTACT,
    user: str = "alice",
) -> bytes:
    """JsSIP's REGISTER: `expires` on the Contact and an `Expires` header (None leaves either out)."""
    contact_expires = "" if expires is None else f";expires={expires}"
    return message(
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch={branch}",
        "Max-Forwards: 69",
        f"To: <sip:{user}@{DOMAIN}>",
        f'From: "Alice" <sip:{user}@{DOMAIN}>;tag=ih6t6a2pmq',
        "Call-ID: 3qd1mbk7fbvdvhv3eg46ae",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <{contact}>;+sip.ice;reg-id=1;{ALICE_INSTANCE}{contact_expires}",
        *(() if header_expires is None else (f"Expires: {header_expires}",)),
        "Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY",
        "Supported: path,gruu,outbound",
        "User-Agent: JsSIP 3.13.8",
    )


def sipjs_register(expires: int = 600, cseq: int = 1, branch: str = "z9hG4bK4044892") -> bytes:
    """SIP.js's REGISTER: `expires` only on the Contact, no `Expires` header."""
    return message(
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {BOB_HOST};branch={branch}",
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


def jssip_message(
    to: str = "bob",
    branch: str = "z9hG4bK5536671",
    max_forwards: str | None = "69",
    text: str = "hello, bob!",
) -> bytes:
    """JsSIP's MESSAGE from alice."""
    return message(
        f"MESSAGE sip:{to}@{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch={branch}",
        *(() if max_forwards is None else (f"Max-Forwards: {max_forwards}",)),
        f"To: <sip:{to}@{DOMAIN}>",
        f'From: "Alice" <sip:alice@{DOMAIN}>;tag=0u8npgq3ke',
        "Call-ID: b1dk4gpbdvetak0uqfso",
        "CSeq: 7143 MESSAGE",
        "Content-Type: text/plain",
        "Supported: outbound",
        "User-Agent: JsSIP 3.13.8",
        body=text,
    )


def jssip_invite(method: str = "INVITE", branch: str = "z9hG4bK9184312") -> bytes:
    """JsSIP's INVITE from alice to bob (or the CANCEL of it, same branch, RFC 3261 9.1)."""
    invite = method == "INVITE"
    return message(
        f"{method} sip:bob@{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/WSS {ALICE_HOST};branch={branch}",
        "Max-Forwards: 69",
        f"To: <sip:bob@{DOMAIN}>",
        f'From: "Alice" <sip:alice@{DOMAIN}>;tag=ko5v2ivqjr',
        "Call-ID: nq6pm9hbud2vht2jrhfs",
        f"CSeq: 5231 {method}",
        *(
            (
                f"Contact: <{ALICE_CONTACT};ob>",
                "Content-Type: application/sdp",
                "Session-Expires: 90",
                "Supported: timer,ice,replaces,outbound",
            )
            if invite
            else ()
        ),
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


def answer(
    request: bytes, status: int, reason: str, *extra: str, tag: str = "9vs4bq", body: str = ""
) -> bytes:
    """What a UAS sends back for `request` (as SIP.js does): every Via and Record-Route, From,
    To with `tag`, Call-ID, CSeq, then `extra` lines. Plain text work, independent of cli.sipmsg."""
    lines = request.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]
    kept = []
    for line in lines:
        name = line.partition(":")[0].lower()
        if name in ("via", "record-route", "from", "call-id", "cseq"):
            kept.append(line)
        elif name == "to":
            kept.append(line if ";tag=" in line or status == 100 else f"{line};tag={tag}")
    return message(f"SIP/2.0 {status} {reason}", *kept, *extra, body=body)


def head(data: bytes) -> list[str]:
    """The start line and header lines of a serialized message."""
    return data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
