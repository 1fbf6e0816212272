"""Our strict HTTP head parser against h11: what we accept, h11 accepts alike; we refuse more by choice."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import h11
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from wire import BASE_FIELDS, KEY, REQUEST, examples

from sansio_wss import (
    ClientConnection,
    Config,
    ConnectionClosed,
    HandshakeRejected,
    Opened,
    ServerConnection,
)
from sansio_wss._handshake import accept_token
from sansio_wss._http import HttpError, parse_request_head, parse_response_head

Fields = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class H11Request:
    method: bytes
    target: bytes
    version: bytes
    headers: Fields


@dataclass(frozen=True)
class H11Response:
    status: int
    reason: bytes
    version: bytes
    headers: Fields


def h11_request(raw: bytes) -> H11Request | None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    try:
        ev = conn.next_event()
    except h11.ProtocolError:
        return None
    if not isinstance(ev, h11.Request):
        return None  # NEED_DATA: h11 did not find the end of a head
    return H11Request(ev.method, ev.target, ev.http_version, [(n, v) for n, v in ev.headers.raw_items()])


def h11_response(raw: bytes) -> H11Response | None:
    conn = h11.Connection(h11.CLIENT)
    conn.send(
        h11.Request(
            method="GET",
            target="/ws",
            headers=[("Host", "a"), ("Connection", "Upgrade"), ("Upgrade", "websocket")],
        )
    )
    conn.receive_data(raw)
    try:
        ev = conn.next_event()
    except h11.ProtocolError:
        return None
    if not isinstance(ev, (h11.Response, h11.InformationalResponse)):
        return None
    return H11Response(
        ev.status_code, ev.reason, ev.http_version, [(n, v) for n, v in ev.headers.raw_items()]
    )


def h11_normal_form(name: bytes, value: bytes) -> bytes:
    """A field value as h11 reports it: it folds a Content-Length list of equal values into one
    (RFC 9110 section 8.6 allows that) and lower-cases Transfer-Encoding."""
    if name == b"content-length" and value and len({v.strip(b" \t") for v in value.split(b",")}) == 1:
        return value.split(b",")[0].strip(b" \t")
    if name == b"transfer-encoding":
        return value.lower()
    return value


def same_fields(ours: tuple[tuple[str, str], ...], theirs: Fields) -> bool:
    """Names compared case-insensitively, values exactly (up to h11's normal form), order kept."""
    mine = [(n.lower().encode("ascii"), v.encode("latin-1")) for n, v in ours]
    return [(n, h11_normal_form(n, v)) for n, v in mine] == [(n.lower(), v) for n, v in theirs]


def our_request_head(raw: bytes) -> tuple[str, str, tuple[tuple[str, str], ...]] | None:
    """parse_request_head on what our server takes as the head (up to the first CRLFCRLF), or
    None when it refuses it or the bytes are not exactly one head."""
    end = raw.find(b"\r\n\r\n")
    if end < 0 or end + 4 != len(raw):
        return None
    try:
        return parse_request_head(raw[:end])
    except HttpError:
        return None


def our_server(raw: bytes) -> tuple[Opened | None, int | None]:
    """(Opened or None, the HTTP status of a refusal)."""
    conn = ServerConnection(0.0, Config())
    conn.receive_data(raw, 0.0)
    events = conn.events()
    opened = next((e for e in events if isinstance(e, Opened)), None)
    closed = next((e for e in events if isinstance(e, ConnectionClosed)), None)
    return opened, None if closed is None else closed.status


def valid_sip_upgrade(fields: Fields, *, framing: bool = True) -> bool:
    """RFC 6455 section 4.2.1 and RFC 7118, read from h11's fields, with our default policy
    (Origin required, any Origin and resource): an independent oracle for the semantic checks."""

    def values(name: bytes) -> list[bytes]:
        return [v for n, v in fields if n.lower() == name]

    def tokens(name: bytes) -> list[bytes]:
        return [t.strip(b" \t") for v in values(name) for t in v.split(b",")]

    hosts, keys, versions, origins = (
        values(n) for n in (b"host", b"sec-websocket-key", b"sec-websocket-version", b"origin")
    )
    if len(hosts) != 1 or not hosts[0] or len(keys) != 1 or len(versions) != 1 or len(origins) != 1:
        return False
    if b"websocket" not in [t.lower() for t in tokens(b"upgrade")]:
        return False
    if b"upgrade" not in [t.lower() for t in tokens(b"connection")]:
        return False
    try:
        if len(keys[0]) != 24 or len(base64.b64decode(keys[0], validate=True)) != 16:
            return False
    except (ValueError, binascii.Error):
        return False
    if versions[0] != b"13" or b"sip" not in tokens(b"sec-websocket-protocol"):
        return False
    if not framing:
        return True
    return not values(b"transfer-encoding") and all(v == b"0" for v in values(b"content-length"))


# ------------------------------------------------------------------ documented strictness

STRICTNESS: dict[str, str] = {
    "bare LF line end": "RFC 9112 section 2.2 lets a recipient accept a bare LF; we refuse it (400 at once): "
    "an upgrade from a browser or SIP stack never has one, and lenient line ends are a smuggling vector",
    "obs-fold": "RFC 9112 section 5.2: obsolete line folding; a server MAY reject it with 400, we do",
    "leading empty line": "RFC 9112 section 2.2: a server SHOULD ignore at least one empty line before the "
    "request line; we refuse it (h11 refuses it too)",
    "target not origin-form": "RFC 6455 section 4.1: the upgrade's target is origin-form (a resource name); "
    "absolute-, authority- and asterisk-form are refused",
    "not HTTP/1.1": "RFC 6455 section 4.1: the upgrade is HTTP/1.1 or later; 1.0, 1.2, 2.0 are refused",
    "method not GET": "RFC 6455 section 4.1: the method is GET (case-sensitive, RFC 9110 section 9.1)",
    "control character in a field value": "RFC 9110 section 5.5: a field value is VCHAR, obs-text, SP, HTAB; "
    "h11 lets other controls through, we refuse them",
    "body framing on the upgrade": "RFC 6455 defines no body: a Content-Length other than exactly 0 "
    "(a list such as '0, 0' too, which RFC 9110 section 8.6 lets a recipient reject and h11 folds "
    "into 0) or any Transfer-Encoding on the GET is refused (request smuggling)",
    "duplicate single-valued field": "RFC 6455 section 11.3: Sec-WebSocket-Key, -Version and Origin appear "
    "once; h11 does not check them",
    "not a SIP WebSocket upgrade": "h11 parses any HTTP request; RFC 6455 section 4.2.1 and RFC 7118 ask for "
    "Upgrade, Connection, a 16-byte key, version 13, the sip subprotocol; our policy asks for an Origin",
}
"""Why we refuse a request h11 accepts: every such input must fall in one of these."""

_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def strictness(raw: bytes, theirs: H11Request) -> set[str]:
    """The documented categories `raw` falls in, judged from the bytes and h11's reading of them."""
    found = set()
    if re.search(rb"(?<!\r)\n", raw):
        found.add("bare LF line end")
    lines = raw.split(b"\n")
    if any(line[:1] in (b" ", b"\t") for line in lines[1:]):
        found.add("obs-fold")
    if raw[:1] in (b"\r", b"\n"):
        found.add("leading empty line")
    if not theirs.target.startswith(b"/"):
        found.add("target not origin-form")
    if theirs.version != b"1.1":
        found.add("not HTTP/1.1")
    if theirs.method != b"GET":
        found.add("method not GET")
    if any(_CTL.search(v) for _, v in theirs.headers):
        found.add("control character in a field value")
    names = [n.lower() for n, _ in theirs.headers]
    raw_lengths = re.findall(rb"(?im)^content-length:[ \t]*(.*?)[ \t]*\r?$", raw)  # before h11 folds them
    if b"transfer-encoding" in names or any(v != b"0" for v in raw_lengths):
        found.add("body framing on the upgrade")
    if any(names.count(n) > 1 for n in (b"sec-websocket-key", b"sec-websocket-version", b"origin")):
        found.add("duplicate single-valued field")
    if not valid_sip_upgrade(theirs.headers, framing=False):
        found.add("not a SIP WebSocket upgrade")
    return found


# ------------------------------------------------------------------ generated requests

TOKEN = st.from_regex(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,16}", fullmatch=True)
VALUE_CHARS = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))
VALUES = st.builds(
    b" ".join,
    st.lists(
        st.binary(min_size=1, max_size=8).map(lambda b: bytes(VALUE_CHARS[x % len(VALUE_CHARS)] for x in b)),
        max_size=3,
    ),
)
OWS = st.sampled_from([b"", b" ", b" ", b"  ", b"\t", b" \t"])
MUTATIONS = [
    "bare LF",
    "bare CR",
    "CR CR LF",
    "obs-fold",
    "invalid name character",
    "missing colon",
    "space before colon",
    "control character in a value",
    "non-origin target",
    "non-ASCII target",
    "other version",
    "other method",
    "duplicate Host",
    "missing Host",
    "empty Host",
    "duplicate WebSocket field",
    "drop a field",
    "Content-Length",
    "Transfer-Encoding",
    "leading empty line",
    "request line spacing",
    "empty field name",
    "bad key",
    "other subprotocol",
]


def random_case(draw: st.DrawFn, name: bytes) -> bytes:
    how = draw(st.sampled_from(["as is", "lower", "upper", "mixed"]))
    if how == "lower":
        return name.lower()
    if how == "upper":
        return name.upper()
    if how == "mixed":
        flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
        return bytes(c ^ 0x20 if f and chr(c).isalpha() else c for c, f in zip(name, flips, strict=True))
    return name


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A request head: the browser-like base, with random case, whitespace and extra fields,
    then up to three mutations. Returns (bytes, the mutations applied)."""
    method, target, version = (
        b"GET",
        draw(st.sampled_from([b"/ws", b"/", b"/a/b?c=d&e=%20", b"/~x"])),
        b"HTTP/1.1",
    )
    fields = [(random_case(draw, n.encode()), v.encode()) for n, v in BASE_FIELDS]
    fields += draw(st.lists(st.tuples(TOKEN, VALUES), max_size=3))
    fields = draw(st.permutations(fields))
    applied = draw(st.lists(st.sampled_from(MUTATIONS), max_size=3, unique=True))
    odd_endings: list[tuple[int, bytes]] = []  # (any int: which line, modulo), line ending
    extra: list[tuple[int, bytes]] = []  # (index, raw line) inserted before field index
    raw_lines: dict[int, bytes] = {}  # field index -> raw line replacing "name: value"
    prefix = b""
    sep = (b" ", b" ")
    for m in applied:
        i = draw(st.integers(0, len(fields) - 1))
        name, value = fields[i]
        if m in ("bare LF", "bare CR", "CR CR LF"):
            ending = {"bare LF": b"\n", "bare CR": b"\r", "CR CR LF": b"\r\r\n"}[m]
            odd_endings.append((draw(st.integers(0, 1000)), ending))
        elif m == "obs-fold":
            extra.append((i + 1, draw(st.sampled_from([b" ", b"\t", b"  "])) + b"folded"))
        elif m == "invalid name character":
            bad = draw(st.sampled_from(list(b'"(),/;<=>?@[\\]{} \x00\x7f\x80\xff')))
            at = draw(st.integers(0, len(name)))
            fields[i] = (name[:at] + bytes([bad]) + name[at:], value)
        elif m == "missing colon":
            raw_lines[i] = name + b" " + value
        elif m == "space before colon":
            raw_lines[i] = name + draw(st.sampled_from([b" ", b"\t"])) + b": " + value
        elif m == "control character in a value":
            ctl = draw(st.sampled_from([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]))
            at = draw(st.integers(0, len(value)))
            fields[i] = (name, value[:at] + bytes([ctl]) + value[at:])
        elif m == "non-origin target":
            target = draw(
                st.sampled_from([b"http://sip.example.com/ws", b"*", b"sip.example.com:443", b"ws"])
            )
        elif m == "non-ASCII target":
            target = b"/w\x80s"
        elif m == "other version":
            version = draw(st.sampled_from([b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"http/1.1"]))
        elif m == "other method":
            method = draw(st.sampled_from([b"get", b"Get", b"POST", b"HEAD", b"CONNECT"]))
        elif m == "duplicate Host":
            fields.append((b"Host", draw(st.sampled_from([b"sip.example.com:8443", b"evil.example"]))))
        elif m in ("missing Host", "empty Host"):
            for j, (n, _) in enumerate(fields):
                if n.lower() == b"host":
                    fields[j] = (n, b"") if m == "empty Host" else (b"X-Was-Host", b"1")
        elif m == "duplicate WebSocket field":
            fields.append(draw(st.sampled_from([(n.encode(), v.encode()) for n, v in BASE_FIELDS[1:]])))
        elif m == "drop a field":
            fields[i] = (b"X-Dropped", b"1")
        elif m == "Content-Length":
            fields.append(
                (b"Content-Length", draw(st.sampled_from([b"0", b"5", b"abc", b"0, 0", b"-1", b""])))
            )
        elif m == "Transfer-Encoding":
            fields.append(
                (b"Transfer-Encoding", draw(st.sampled_from([b"chunked", b"gzip, chunked", b"identity"])))
            )
        elif m == "leading empty line":
            prefix = draw(st.sampled_from([b"\r\n", b"\n", b"\r\n\r\n"]))
        elif m == "request line spacing":
            sep = draw(st.sampled_from([(b"  ", b" "), (b" ", b"\t"), (b"\t", b" ")]))
        elif m == "empty field name":
            raw_lines[i] = b": " + value
        elif m == "bad key":
            for j, (n, _) in enumerate(fields):
                if n.lower() == b"sec-websocket-key":
                    fields[j] = (
                        n,
                        draw(st.sampled_from([KEY[:-2].encode(), b"x" * 24, KEY.encode() + b"AA", b"AAAA"])),
                    )
        else:
            for j, (n, _) in enumerate(fields):
                if n.lower() == b"sec-websocket-protocol":
                    fields[j] = (n, draw(st.sampled_from([b"SIP", b"xmpp", b"sips", b"xmpp, sip"])))
    lines = [method + sep[0] + target + sep[1] + version]
    for i, (name, value) in enumerate(fields):
        lines += [line for at, line in extra if at == i]
        lines.append(raw_lines.get(i, name + b":" + draw(OWS) + value + draw(OWS)))
    lines += [line for at, line in extra if at >= len(fields)]
    lines.append(b"")  # the empty line that ends the head
    endings = [b"\r\n"] * len(lines)
    for which, ending in odd_endings:
        endings[which % len(lines)] = ending
    return prefix + b"".join(line + end for line, end in zip(lines, endings, strict=True)), applied


@settings(max_examples=examples(3.0))
@given(requests())
def test_whatever_we_accept_h11_accepts_alike(built: tuple[bytes, list[str]]) -> None:
    raw, applied = built
    for m in applied:
        event(f"mutation: {m}")
    theirs = h11_request(raw)
    parsed = our_request_head(raw)
    opened, status = our_server(raw)
    event(f"ours {'accepts' if opened else status}, h11 {'accepts' if theirs else 'rejects'}")
    if opened is not None:
        assert parsed is not None and same_fields(
            opened.headers, [(n.encode(), v.encode("latin-1")) for n, v in parsed[2]]
        )
        assert theirs is not None, f"we accept what h11 rejects: {raw!r}"
        assert (theirs.method, theirs.target, theirs.version) == (b"GET", parsed[1].encode(), b"1.1")
        assert same_fields(opened.headers, theirs.headers)
        assert valid_sip_upgrade(theirs.headers), f"we accept an upgrade RFC 6455 refuses: {raw!r}"
    elif status is None:  # still waiting for the end of the head
        assert b"\r\n\r\n" not in raw
    else:
        assert 400 <= status < 500
    if parsed is not None:
        if theirs is not None:
            assert (theirs.method, theirs.target) == (parsed[0].encode(), parsed[1].encode())
            assert same_fields(parsed[2], theirs.headers)
        else:  # h11 checks Host and body framing while parsing; we do it in check_request
            names = [n.lower() for n, _ in parsed[2]]
            assert opened is None
            assert names.count("host") != 1 or "content-length" in names or "transfer-encoding" in names, raw
    if opened is None and theirs is not None:
        categories = strictness(raw, theirs)
        for c in categories:
            event(f"strictness: {c}")
        assert categories, f"we refuse ({status}) what h11 accepts, for no documented reason: {raw!r}"
        assert categories <= STRICTNESS.keys()


SMUGGLING = b"GET /ws HTTP/1.1\r\n" + b"".join(f"{n}: {v}\r\n".encode() for n, v in BASE_FIELDS)


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    status: int | None  # ours: None when we accept (101)
    h11_accepts: bool
    category: str | None  # when we refuse and h11 accepts


CASES = [
    Case("CRLF throughout", REQUEST, None, True, None),
    Case("bare LF throughout", REQUEST.replace(b"\r\n", b"\n"), 400, True, "bare LF line end"),
    Case("one bare LF", REQUEST.replace(b"\r\nUpgrade", b"\nUpgrade"), 400, True, "bare LF line end"),
    Case("bare LF ends the head", REQUEST[:-2] + b"\n", 400, True, "bare LF line end"),
    Case("LF CR LF ends the head", REQUEST[:-4] + b"\n\r\n", 400, True, "bare LF line end"),
    Case("bare CR", REQUEST.replace(b"\r\nUpgrade", b"\rUpgrade"), 400, False, None),
    Case("CR CR LF", REQUEST.replace(b"\r\nUpgrade", b"\r\r\nUpgrade"), 400, False, None),
    Case(
        "obs-fold",
        REQUEST.replace(b"Upgrade: websocket\r\n", b"Upgrade: websocket\r\n ,websocket\r\n"),
        400,
        True,
        "obs-fold",
    ),
    Case("obs-fold with a tab", REQUEST.replace(b"\r\nOrigin", b"\r\n\tx\r\nOrigin"), 400, True, "obs-fold"),
    Case(
        "fold before the first field",
        REQUEST.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\n folded\r\n"),
        400,
        False,
        None,
    ),
    Case("leading CRLF", b"\r\n" + REQUEST, 400, False, None),
    Case(
        "duplicate Sec-WebSocket-Key",
        REQUEST[:-2] + f"Sec-WebSocket-Key: {KEY}\r\n\r\n".encode(),
        400,
        True,
        "duplicate single-valued field",
    ),
    Case(
        "two different keys",
        REQUEST[:-2] + b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\r\n",
        400,
        True,
        "duplicate single-valued field",
    ),
    Case("Content-Length: 0", SMUGGLING + b"Content-Length: 0\r\n\r\n", None, True, None),
    Case(
        "Content-Length with a body",
        SMUGGLING + b"Content-Length: 5\r\n\r\n",
        400,
        True,
        "body framing on the upgrade",
    ),
    Case(
        "Transfer-Encoding: chunked",
        SMUGGLING + b"Transfer-Encoding: chunked\r\n\r\n",
        400,
        True,
        "body framing on the upgrade",
    ),
    Case(
        "Content-Length and Transfer-Encoding",
        SMUGGLING + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        True,
        "body framing on the upgrade",
    ),
    Case(
        "two Content-Lengths", SMUGGLING + b"Content-Length: 0\r\nContent-Length: 5\r\n\r\n", 400, False, None
    ),
    Case(
        "Transfer-Encoding with a space before the colon",
        SMUGGLING + b"Transfer-Encoding : chunked\r\n\r\n",
        400,
        False,
        None,
    ),
    Case("Transfer-Encoding: gzip", SMUGGLING + b"Transfer-Encoding: gzip\r\n\r\n", 400, False, None),
    Case(
        "absolute-form target",
        REQUEST.replace(b"/ws", b"http://sip.example.com/ws", 1),
        400,
        True,
        "target not origin-form",
    ),
    Case("HTTP/1.0", REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0"), 400, True, "not HTTP/1.1"),
    Case("lowercase method", REQUEST.replace(b"GET", b"get"), 400, True, "method not GET"),
    Case("duplicate Host", REQUEST[:-2] + b"Host: evil.example\r\n\r\n", 400, False, None),
    Case("NUL in a value", REQUEST.replace(b"https://app", b"https://\x00app"), 400, False, None),
    Case(
        "DEL in a value",
        REQUEST.replace(b"https://app", b"https://\x7fapp"),
        400,
        True,
        "control character in a field value",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_strictness_case(case: Case) -> None:
    opened, status = our_server(case.raw)
    assert status == case.status and (opened is None) == (case.status is not None)
    theirs = h11_request(case.raw)
    assert (theirs is not None) == case.h11_accepts
    if theirs is not None and case.status is not None:
        assert case.category in strictness(case.raw, theirs)
        assert case.category in STRICTNESS
    else:
        assert case.category is None


# ------------------------------------------------------------------ responses

RESPONSE_STRICTNESS: dict[str, str] = {
    "bare LF line end": STRICTNESS["bare LF line end"],
    "obs-fold": STRICTNESS["obs-fold"],
    "no SP after the status code": "RFC 9112 section 4: status-line = HTTP-version SP status-code SP "
    "[reason-phrase]; the second SP is not optional, h11 lets it go",
    "not HTTP/1.1 or later 1.x": "an HTTP/1.0 (or 2.0, 0.9) reply cannot answer an HTTP/1.1 upgrade",
    "control character": "RFC 9110 section 5.5 and RFC 9112 section 4: no controls in a field value or "
    "reason phrase; h11 lets them through",
}


def response_strictness(raw: bytes, theirs: H11Response) -> set[str]:
    found = set()
    if re.search(rb"(?<!\r)\n", raw):
        found.add("bare LF line end")
    if any(line[:1] in (b" ", b"\t") for line in raw.split(b"\n")[1:]):
        found.add("obs-fold")
    if re.fullmatch(rb"HTTP/[0-9]\.[0-9] [0-9]{3}", raw.split(b"\n")[0].rstrip(b"\r")):
        found.add("no SP after the status code")
    if not re.fullmatch(rb"1\.[1-9]", theirs.version):
        found.add("not HTTP/1.1 or later 1.x")
    if _CTL.search(theirs.reason) or any(_CTL.search(v) for _, v in theirs.headers):
        found.add("control character")
    return found


REPLY_FIELDS = [
    (b"Upgrade", b"websocket"),
    (b"Connection", b"Upgrade"),
    (b"Sec-WebSocket-Accept", accept_token(KEY).encode()),
    (b"Sec-WebSocket-Protocol", b"sip"),
]
REASON_CHARS = bytes(range(0x20, 0x7F)) + b"\t" + bytes(range(0x80, 0x100))


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0"]))
    status = draw(
        st.one_of(st.just(101), st.sampled_from([200, 301, 401, 403, 426, 503]), st.integers(100, 999))
    )
    reason = draw(
        st.one_of(
            st.just(b"Switching Protocols"),
            st.binary(max_size=12).map(lambda b: bytes(REASON_CHARS[x % len(REASON_CHARS)] for x in b)),
        )
    )
    if draw(st.integers(0, 9)) == 0:
        reason = reason[:1] + bytes([draw(st.sampled_from([0x00, 0x01, 0x1F, 0x7F]))]) + reason[1:]
    start = version + b" " + str(status).encode() + (b"" if draw(st.integers(0, 9)) == 0 else b" " + reason)
    fields = list(REPLY_FIELDS) if status == 101 else [(b"WWW-Authenticate", b'Digest realm="x"')]
    fields += draw(st.lists(st.tuples(TOKEN, VALUES), max_size=2))
    fields = [(random_case(draw, n), v) for n, v in draw(st.permutations(fields))]
    lines = [start] + [n + b":" + draw(OWS) + v + draw(OWS) for n, v in fields]
    mutation = draw(
        st.sampled_from(
            [None, None, None, "bare LF", "obs-fold", "control", "space before colon", "missing colon"]
        )
    )
    endings = [b"\r\n"] * (len(lines) + 1)
    at = draw(st.integers(1, len(lines) - 1)) if len(lines) > 1 else 0
    if mutation == "bare LF":
        endings[draw(st.integers(0, len(endings) - 1))] = b"\n"
    elif mutation == "obs-fold":
        lines.insert(at + 1, b" folded")
        endings.append(b"\r\n")
    elif mutation == "control":
        lines[at] += b"\x01"
    elif mutation == "space before colon":
        lines[at] = lines[at].replace(b":", b" :", 1)
    elif mutation == "missing colon":
        lines[at] = lines[at].replace(b":", b"", 1)
    return b"".join(line + end for line, end in zip(lines, endings, strict=False)) + endings[-1]


def our_response_head(raw: bytes) -> tuple[int, str, tuple[tuple[str, str], ...]] | None:
    end = raw.find(b"\r\n\r\n")
    if end < 0 or end + 4 != len(raw):
        return None
    try:
        return parse_response_head(raw[:end])
    except HttpError:
        return None


@settings(max_examples=examples(2.0))
@given(responses())
def test_whatever_reply_we_accept_h11_accepts_alike(raw: bytes) -> None:
    theirs = h11_response(raw)
    parsed = our_response_head(raw)
    client = ClientConnection("sip.example.com", 0.0, key=KEY)
    client.data_to_send()
    client.receive_data(raw, 0.0)
    events = client.events()
    event(f"ours {'accepts' if parsed else 'rejects'}, h11 {'accepts' if theirs else 'rejects'}")
    if parsed is not None:
        assert theirs is not None, f"we accept a reply h11 rejects: {raw!r}"
        assert (theirs.status, theirs.reason) == (parsed[0], parsed[1].encode("latin-1"))
        assert same_fields(parsed[2], theirs.headers)
    for e in events:
        if isinstance(e, (Opened, HandshakeRejected)):  # the client took the reply as well-formed
            assert parsed is not None and theirs is not None and same_fields(e.headers, theirs.headers)
            if isinstance(e, HandshakeRejected):
                assert (e.status, e.reason.encode("latin-1")) == (theirs.status, theirs.reason)
    if parsed is None and theirs is not None:
        categories = response_strictness(raw, theirs)
        for c in categories:
            event(f"strictness: {c}")
        assert categories, f"we refuse a reply h11 accepts, for no documented reason: {raw!r}"
        assert categories <= RESPONSE_STRICTNESS.keys()


@pytest.mark.parametrize("status", [b"000", b"099"])
def test_status_below_100_is_not_a_well_formed_reply(status: bytes) -> None:
    raw = b"HTTP/1.1 " + status + b" Nope\r\nContent-Length: 0\r\n\r\n"
    assert h11_response(raw) is None  # RFC 9110 section 15: valid codes are 100 to 599
    client = ClientConnection("sip.example.com", 0.0, key=KEY)
    client.receive_data(raw, 0.0)
    events = client.events()
    assert not any(isinstance(e, HandshakeRejected) for e in events), events  # today: HandshakeRejected(0)
    assert our_response_head(raw) is None
