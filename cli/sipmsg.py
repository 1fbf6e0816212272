"""A small, strict SIP message model (an RFC 3261 syntax subset): parse, read, edit, serialize."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

__all__ = [
    "MAX_HEADER_FIELDS", "MAX_MESSAGE_SIZE", "Header", "NameAddr", "Params", "SipMessage", "SipParseError",
    "SipUri", "Via", "canonical_name", "delta_seconds", "parse_message", "parse_name_addr", "parse_uri",
    "parse_via", "response_to", "salvage",
]  # fmt: skip

MAX_MESSAGE_SIZE = 65536
"""Largest message parsed, in bytes (the core's default `max_message_size`)."""
MAX_HEADER_FIELDS = 100
"""Most header fields parsed; each element of a Via, Contact, Route or Record-Route list counts."""

Params = tuple[tuple[str, str | None], ...]
"""`;name=value` parameters in order, as written; a flag parameter has the value None."""


class SipParseError(ValueError):
    """Malformed SIP input. `reason` says what is wrong, in a few words that never quote the input."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_BAD_HEAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,252}[A-Za-z0-9_.])?")
_PVALUE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\[\]:]+")
_ESC = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESC})+")
_PASSWORD = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESC})*")
_URI_PARAM = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESC})+")
_URI_HEADERS = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$=&]|{_ESC})+")
_VIA_PROTOCOL = re.compile(r"SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+", re.IGNORECASE)


def canonical_name(name: str) -> str:
    """The spelling we keep for a header name: long form for compact ones, ours for known ones."""
    return _CANONICAL.get(name.lower(), name)


def _param(params: Params, name: str) -> str | None:
    name = name.lower()
    return next((value for key, value in params if key.lower() == name), None)


def _params_text(params: Params) -> str:
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params)


@dataclass(frozen=True, slots=True)
class SipUri:
    """A `sip:` or `sips:` URI (RFC 3261 19.1); `host` is an IPv6 literal without its brackets."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    params: Params = ()
    headers: str | None = None

    def param(self, name: str) -> str | None:
        """The value of URI parameter `name` (case-insensitive); None when absent or a flag."""
        return _param(self.params, name)

    @property
    def host_text(self) -> str:
        """The host as written in a URI: an IPv6 literal in brackets."""
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        userinfo = "" if self.user is None else self.user
        if self.password is not None:
            userinfo += f":{self.password}"
        port = "" if self.port is None else f":{self.port}"
        headers = "" if self.headers is None else f"?{self.headers}"
        at = "@" if self.user is not None else ""
        return f"{self.scheme}:{userinfo}{at}{self.host_text}{port}{_params_text(self.params)}{headers}"


def _hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or "%" in text[:end]:
            raise SipParseError("invalid IPv6 reference")
        host, rest = text[1:end], text[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SipParseError("invalid IPv6 reference") from None
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
        if _HOST.fullmatch(host) is None:
            raise SipParseError("invalid host")
    if not rest:
        return host, None
    digits = rest[1:]
    if rest[0] != ":" or not (digits.isascii() and digits.isdigit() and len(digits) <= 5):
        raise SipParseError("invalid port")
    if not 0 < int(digits) < 65536:
        raise SipParseError("port out of range")
    return host, int(digits)


def parse_uri(text: str) -> SipUri:
    """Parse a `sip:`/`sips:` URI; raises SipParseError for anything else."""
    scheme, colon, rest = text.partition(":")
    if not colon or scheme.lower() not in ("sip", "sips"):
        raise SipParseError("not a sip: or sips: URI")
    user = password = None
    if "@" in rest:
        userinfo, _, rest = rest.partition("@")
        user, colon, secret = userinfo.partition(":")
        password = secret if colon else None
        if "@" in rest or _USER.fullmatch(user) is None:
            raise SipParseError("invalid user part in URI")
        if password is not None and _PASSWORD.fullmatch(password) is None:
            raise SipParseError("invalid password in URI")
    rest, question, headers = rest.partition("?")
    if question and _URI_HEADERS.fullmatch(headers) is None:
        raise SipParseError("invalid URI headers")
    hostport, *param_texts = rest.split(";")
    host, port = _hostport(hostport)
    params: list[tuple[str, str | None]] = []
    for item in param_texts:
        name, equals, value = item.partition("=")
        if _URI_PARAM.fullmatch(name) is None or (equals and _URI_PARAM.fullmatch(value) is None):
            raise SipParseError("invalid URI parameter")
        params.append((name, value if equals else None))
    return SipUri(scheme.lower(), user, password, host, port, tuple(params), headers if question else None)


def _quoted_end(text: str, start: int) -> int:
    """The index after the quoted string that opens at `start`."""
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            return i + 1
        i += 1
    raise SipParseError("unterminated quoted string")


def _split(text: str, separator: str) -> list[str]:
    """Split on `separator` outside quoted strings and <...>, stripping each part; linear time."""
    if '"' not in text and "<" not in text:
        parts = text.split(separator)
    else:
        parts, start, i, angle = [], 0, 0, False
        while i < len(text):
            char = text[i]
            if char == '"' and not angle:
                i = _quoted_end(text, i)
                continue
            if char == "<":
                angle = True
            elif char == ">":
                angle = False
            elif char == separator and not angle:
                parts.append(text[start:i])
                start = i + 1
            i += 1
        if angle:
            raise SipParseError("unterminated <URI>")
        parts.append(text[start:])
    return [part.strip(" \t") for part in parts]


def _header_params(text: str) -> Params:
    text = text.strip(" \t")
    if not text:
        return ()
    if text[0] != ";":
        raise SipParseError("junk before header parameters")
    params: list[tuple[str, str | None]] = []
    for item in _split(text[1:], ";"):
        name, equals, value = item.partition("=")
        name, value = name.rstrip(" \t"), value.lstrip(" \t")
        if _TOKEN.fullmatch(name) is None:
            raise SipParseError("invalid header parameter name")
        quoted = value.startswith('"') and _quoted_end(value, 0) == len(value)
        if equals and not quoted and _PVALUE.fullmatch(value) is None:
            raise SipParseError("invalid header parameter value")
        params.append((name, value if equals else None))
    return tuple(params)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A To, From, Contact, Route or Record-Route value: display name, URI, header parameters."""

    display: str | None
    uri: SipUri
    params: Params = ()

    def param(self, name: str) -> str | None:
        """The value of header parameter `name` (case-insensitive); None when absent or a flag."""
        return _param(self.params, name)

    @property
    def tag(self) -> str | None:
        """The `tag` parameter (To and From)."""
        return self.param("tag")

    def __str__(self) -> str:
        display = "" if self.display is None else f"{self.display} "
        return f"{display}<{self.uri}>{_params_text(self.params)}"


def parse_name_addr(value: str) -> NameAddr:
    """Parse `"Name" <uri>;params`, `Name <uri>;params` or `uri;params` (RFC 3261 20.10)."""
    if value.startswith('"'):
        end = _quoted_end(value, 0)
        display: str | None = value[:end]
        rest = value[end:].lstrip(" \t")
    else:
        less = value.find("<")
        if less < 0:
            uri_text, semicolon, params = value.partition(";")
            if "?" in uri_text or "," in uri_text:
                raise SipParseError("a URI with '?' or ',' needs <>")
            return NameAddr(None, parse_uri(uri_text.strip(" \t")), _header_params(semicolon + params))
        display = value[:less].strip(" \t") or None
        if display is not None and not all(_TOKEN.fullmatch(word) for word in display.split()):
            raise SipParseError("invalid display name")
        rest = value[less:]
    greater = rest.find(">")
    if not rest.startswith("<") or greater < 0:
        raise SipParseError("expected <URI>")
    return NameAddr(display, parse_uri(rest[1:greater]), _header_params(rest[greater + 1 :]))


@dataclass(frozen=True, slots=True)
class Via:
    """One Via element: `SIP/2.0/<transport> host[:port];params`."""

    transport: str
    host: str
    port: int | None
    params: Params = ()

    @property
    def branch(self) -> str | None:
        """The `branch` parameter."""
        return _param(self.params, "branch")


def parse_via(value: str) -> Via:
    """Parse one Via element (a Via header field holding a list is split by `parse_message`)."""
    match = _VIA_PROTOCOL.match(value)
    if match is None:
        raise SipParseError("invalid Via protocol")
    sent_by, _, _ = value[match.end() :].partition(";")
    host, port = _hostport(sent_by.rstrip(" \t"))
    return Via(match.group(1).upper(), host, port, _header_params(value[match.end() + len(sent_by) :]))


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
        method, uri, _, _ = _start_line(lines[0].decode("utf-8"))
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
