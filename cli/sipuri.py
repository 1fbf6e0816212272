"""SIP URIs, name-addr values and Via elements (an RFC 3261 syntax subset): parse and serialize."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = [
    "NameAddr", "Params", "SipParseError", "SipUri", "Via", "parse_name_addr", "parse_uri", "parse_via",
]  # fmt: skip

Params = tuple[tuple[str, str | None], ...]
"""`;name=value` parameters in order, as written; a flag parameter has the value None."""


class SipParseError(ValueError):
    """Malformed SIP input. `reason` says what is wrong, in a few words that never quote the input."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,252}[A-Za-z0-9_.])?")
_PVALUE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\[\]:]+")
_ESC = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESC})+")
_PASSWORD = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESC})*")
_URI_PARAM = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESC})+")
_URI_HEADERS = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$=&]|{_ESC})+")
_VIA_PROTOCOL = re.compile(r"SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+", re.IGNORECASE)


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
