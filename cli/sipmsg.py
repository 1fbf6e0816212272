"""A small, strict SIP message model (an RFC 3261 syntax subset): parse, read, edit, serialize."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .sipuri import _TOKEN, NameAddr, SipParseError, Via, _split, parse_name_addr, parse_via

__all__ = [
    "MAX_HEADER_FIELDS", "MAX_MESSAGE_SIZE", "Header", "SipMessage", "canonical_name", "delta_seconds",
    "parse_message", "response_to", "salvage",
]  # fmt: skip

MAX_MESSAGE_SIZE = 65536
"""Largest message parsed, in bytes (the core's default `max_message_size`)."""
MAX_HEADER_FIELDS = 100
"""Most header fields parsed; each element of a Via, Contact, Route or Record-Route list counts."""

# RFC 3261 7.3.3 compact forms, and the spelling used for the headers we know.
_COMPACT = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To",
    "u": "Allow-Events", "v": "Via", "x": "Session-Expires", "y": "Identity",
}  # fmt: skip
_KNOWN = (
    "Accept", "Allow", "Authorization", "CSeq", "Expires", "Max-Forwards", "Min-Expires", "Path",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "Record-Route", "Require", "Route",
    "Server", "Unsupported", "User-Agent", "Warning", "WWW-Authenticate",
)  # fmt: skip
_CANONICAL = {name.lower(): name for name in (*_COMPACT.values(), *_KNOWN)} | _COMPACT
_LISTS = frozenset({"via", "contact", "route", "record-route"})  # comma lists we split (RFC 3261 7.3.1)

_BAD_HEAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")


def canonical_name(name: str) -> str:
    """The spelling we keep for a header name: long form for compact ones, ours for known ones."""
    return _CANONICAL.get(name.lower(), name)


def _number(value: str, what: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 10):
        raise SipParseError(f"invalid {what}")
    return int(value)


def delta_seconds(value: str) -> int:
    """An Expires value (header or Contact parameter): up to 10 ASCII digits."""
    return _number(value, "expires value")


@dataclass(frozen=True, slots=True)
class Header:
    """One header field; `name` is spelled as `canonical_name` gives it."""

    name: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SipMessage:
    """A request (method, uri) or a response (status, reason). Content-Length is not a header here:
    `parse_message` checks and drops it, `serialize` writes the body's length."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str | None = None
    headers: tuple[Header, ...] = ()
    body: bytes = b""

    def __post_init__(self) -> None:
        if (self.method is None) != (self.uri is None) or (self.status is None) != (self.reason is None):
            raise ValueError("a request needs method and uri, a response status and reason")
        if (self.method is None) == (self.status is None):
            raise ValueError("a message is either a request or a response")

    def get(self, name: str) -> str | None:
        """The first value of header `name` (any case, compact forms too), or None."""
        return next(iter(self.get_all(name)), None)

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of header `name`, in order."""
        key = canonical_name(name).lower()
        return tuple(h.value for h in self.headers if h.name.lower() == key)

    def _required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise SipParseError(f"missing {name}")
        return value

    def top_via(self) -> Via:
        """The first Via."""
        return parse_via(self._required("Via"))

    def call_id(self) -> str:
        """The Call-ID."""
        value = self._required("Call-ID")
        if not value or " " in value or "\t" in value:
            raise SipParseError("invalid Call-ID")
        return value

    def cseq(self) -> tuple[int, str]:
        """The CSeq: (sequence number, method)."""
        parts = self._required("CSeq").split()
        if len(parts) != 2 or _TOKEN.fullmatch(parts[1]) is None:
            raise SipParseError("invalid CSeq")
        number = _number(parts[0], "CSeq")
        if number >= 2**31:
            raise SipParseError("CSeq number too large")
        return number, parts[1]

    def to_addr(self) -> NameAddr:
        """The To header."""
        return parse_name_addr(self._required("To"))

    def from_addr(self) -> NameAddr:
        """The From header."""
        return parse_name_addr(self._required("From"))

    def contacts(self) -> tuple[NameAddr, ...]:
        """Every Contact; raises for `*` (see `get_all`)."""
        return tuple(parse_name_addr(value) for value in self.get_all("Contact"))

    def expires(self) -> int | None:
        """The Expires header in seconds, or None."""
        value = self.get("Expires")
        return None if value is None else delta_seconds(value)

    def max_forwards(self) -> int | None:
        """The Max-Forwards header, or None."""
        value = self.get("Max-Forwards")
        return None if value is None else _number(value, "Max-Forwards")

    def with_uri(self, uri: str) -> SipMessage:
        """The same request with another Request-URI."""
        return replace(self, uri=uri)

    def _first(self, key: str, default: int) -> int:
        return next((i for i, h in enumerate(self.headers) if h.name.lower() == key), default)

    def with_first(self, name: str, value: str) -> SipMessage:
        """A field added before the first of its name (so same-name fields stay together), or on top."""
        name = canonical_name(name)
        index = self._first(name.lower(), 0)
        return replace(self, headers=(*self.headers[:index], Header(name, value), *self.headers[index:]))

    def without_first(self, name: str) -> SipMessage:
        """The first field of header `name` removed."""
        index = self._first(canonical_name(name).lower(), len(self.headers))
        return replace(self, headers=self.headers[:index] + self.headers[index + 1 :])

    def with_header(self, name: str, value: str) -> SipMessage:
        """Header `name` set to one field: in place of the first, or appended."""
        name = canonical_name(name)
        index = self._first(name.lower(), len(self.headers))
        kept = [h for h in self.headers if h.name.lower() != name.lower()]
        return replace(self, headers=(*kept[:index], Header(name, value), *kept[index:]))

    def serialize(self) -> bytes:
        """The message on the wire, with a Content-Length that matches the body."""
        if self.method is not None:
            start = f"{self.method} {self.uri} SIP/2.0"
        else:
            start = f"SIP/2.0 {self.status} {self.reason}"
        lines = [start, *(f"{h.name}: {h.value}" for h in self.headers), f"Content-Length: {len(self.body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def _start_line(line: str) -> tuple[str | None, str | None, int | None, str | None]:
    """(method, uri, None, None) for a request line, (None, None, status, reason) for a status line."""
    if line[:8].upper() == "SIP/2.0 ":
        code, _, reason = line[8:].partition(" ")
        if len(code) != 3 or not (code.isascii() and code.isdigit()) or not 100 <= int(code) <= 699:
            raise SipParseError("invalid status code")
        return None, None, int(code), reason
    parts = line.split(" ")
    if len(parts) != 3 or parts[2].upper() != "SIP/2.0":
        raise SipParseError("start line is not 'METHOD URI SIP/2.0' nor 'SIP/2.0 CODE REASON'")
    if _TOKEN.fullmatch(parts[0]) is None:
        raise SipParseError("invalid method")
    if ":" not in parts[1]:
        raise SipParseError("Request-URI is not an absolute URI")
    return parts[0], parts[1], None, None


def _fields(lines: list[str]) -> list[tuple[str, str]]:
    """(name, value) per header field, continuation lines unfolded."""
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not fields:
                raise SipParseError("continuation line before any header")
            name, value = fields[-1]
            folded = line.strip(" \t")
            fields[-1] = (name, " ".join(part for part in (value, folded) if part))
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise SipParseError("invalid header line")
        fields.append((name, value.strip(" \t")))
    return fields


def parse_message(data: bytes) -> SipMessage:
    """Parse one whole SIP message (one WebSocket message). Raises SipParseError only.

    Strict: CRLF line ends only, UTF-8 header, a token for every header name, at most
    `MAX_HEADER_FIELDS` fields. A body longer than Content-Length is cut to it (RFC 3261 18.3
    for framed transports); a shorter one is an error. Work is linear in the input's size.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError(f"message larger than {MAX_MESSAGE_SIZE} bytes")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipParseError("no empty line after the header")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header is not UTF-8") from None
    if _BAD_HEAD.search(head) is not None:
        raise SipParseError("control character or bare CR/LF in the header")
    lines = head.split("\r\n")
    if len(lines) > 2 * MAX_HEADER_FIELDS:
        raise SipParseError("too many header lines")
    method, uri, status, reason = _start_line(lines[0])
    headers: list[Header] = []
    length: str | None = None
    for raw_name, value in _fields(lines[1:]):
        name = canonical_name(raw_name)
        key = name.lower()
        if key == "content-length":
            if length is not None and value != length:
                raise SipParseError("conflicting Content-Length")
            length = value
            continue
        values = _split(value, ",") if key in _LISTS else [value]
        if key in _LISTS and "" in values:
            raise SipParseError(f"empty element in {name}")
        headers.extend(Header(name, item) for item in values)
        if len(headers) > MAX_HEADER_FIELDS:
            raise SipParseError(f"more than {MAX_HEADER_FIELDS} header fields")
    body = data[end + 4 :]
    if length is not None:
        size = _number(length, "Content-Length")
        if size > len(body):
            raise SipParseError("body shorter than Content-Length")
        body = body[:size]
    return SipMessage(method=method, uri=uri, status=status, reason=reason, headers=tuple(headers), body=body)


_SALVAGED = frozenset({"via", "from", "to", "call-id", "cseq"})


def salvage(data: bytes) -> SipMessage | None:
    """A malformed request's Via, From, To, Call-ID and CSeq, enough to answer it with 400;
    None when the start line is not a request line. Lines that do not parse are skipped."""
    lines = data[: min(len(data), MAX_MESSAGE_SIZE)].split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    try:
        start = lines[0].decode("utf-8")
        if _BAD_HEAD.search(start) is not None:  # a control character in the start line
            return None
        method, uri, _, _ = _start_line(start)
    except (UnicodeDecodeError, SipParseError):
        return None
    if method is None:
        return None
    headers: list[Header] = []
    for raw in lines[1 : 2 * MAX_HEADER_FIELDS]:
        try:
            line = raw.decode("utf-8")
            if _BAD_HEAD.search(line) is not None:
                continue
            (name, value), *_ = _fields([line])
            name = canonical_name(name)
            if name.lower() in _SALVAGED:
                items = _split(value, ",") if name == "Via" else [value]
                headers.extend(Header(name, item) for item in items if item)
        except (UnicodeDecodeError, SipParseError):
            continue
    return SipMessage(method=method, uri=uri, headers=tuple(headers[:MAX_HEADER_FIELDS]))


def response_to(
    request: SipMessage, status: int, reason: str, headers: tuple[Header, ...] = (), to_tag: str | None = None
) -> SipMessage:
    """A response to `request` as RFC 3261 8.2.6.2 builds it: every Via, From, To (with `to_tag`
    added when it has none and the status is above 100), Call-ID, CSeq, then `headers`; no body."""
    copied = [h for h in request.headers if h.name == "Via"]
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.get(name)
        if value is None:
            continue
        if name == "To" and to_tag is not None and status > 100:
            try:
                tagged = parse_name_addr(value).tag is not None
            except SipParseError:
                tagged = True  # copied as it came: we cannot tell where a tag would go
            value = value if tagged else f"{value};tag={to_tag}"
        copied.append(Header(name, value))
    return SipMessage(status=status, reason=reason, headers=(*copied, *headers))
