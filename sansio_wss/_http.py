"""A strict HTTP/1.1 head parser and writer for the upgrade, checked against h11 in tests.

Why not h11 at run time: h11 costs more than our whole handshake budget (its
header normalisation runs a regex per header and a state machine per event), and
it accepts things the upgrade has no use for (obs-fold, bare LF, any target).
This parser accepts a subset of what RFC 9112 allows: CRLF line ends only, no
obs-fold, origin-form targets only, token field names, field values of VCHAR,
SP, HTAB and obs-text. `tests/reference/test_http_vs_h11.py` checks that
whatever we accept, h11 accepts with the same fields.
"""

from __future__ import annotations

import re

from .events import Headers

__all__ = ["HttpError", "parse_request_head", "parse_response_head", "render_response"]

_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP/([0-9])\.([0-9])")
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([1-9][0-9]{2}) ([\t !-~\x80-\xff]*)")
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([\t !-~\x80-\xff]*)")
_TARGET = re.compile(rb"/[!-~]*")

REASONS = {
    101: "Switching Protocols",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpError(Exception):
    """The head is not acceptable: `status` is the HTTP status that answers a request,
    or, for a reply, the status it carried (0 when it had none we could read)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _split(head: bytes) -> tuple[bytes, Headers]:
    """Split a head (without its final CRLFCRLF) into its start line and fields."""
    lines = head.split(b"\r\n")
    fields = []
    match = _FIELD.fullmatch
    for line in lines[1:]:
        m = match(line)
        if m is None:
            if line[:1] in (b" ", b"\t"):
                raise HttpError(400, "obsolete line folding in the header section")
            raise HttpError(400, f"malformed header line {line[:60]!r}")
        fields.append((m[1].decode("ascii"), m[2].strip(b" \t").decode("latin-1")))
    return lines[0], tuple(fields)


def parse_request_head(head: bytes) -> tuple[str, str, Headers]:
    """Parse a request head: (method, request target, fields). Raises HttpError."""
    start, fields = _split(head)
    m = _REQUEST_LINE.fullmatch(start)
    if m is None:
        raise HttpError(400, f"malformed request line {start[:60]!r}")
    method, target, major, minor = m.groups()
    if (major, minor) != (b"1", b"1"):
        raise HttpError(400, f"HTTP/{major.decode()}.{minor.decode()} is not HTTP/1.1")
    if _TARGET.fullmatch(target) is None:
        raise HttpError(400, f"request target {target[:60]!r} is not in origin-form")
    return method.decode("ascii"), target.decode("ascii"), fields


def parse_response_head(head: bytes) -> tuple[int, str, Headers]:
    """Parse a response head: (status, reason phrase, fields). Raises HttpError."""
    start = head.partition(b"\r\n")[0]
    m = _STATUS_LINE.fullmatch(start)
    if m is None:
        raise HttpError(0, f"malformed status line {start[:60]!r}")
    major, minor, status, reason = m.groups()
    if major != b"1" or minor == b"0":
        raise HttpError(0, f"HTTP/{major.decode()}.{minor.decode()} reply to an HTTP/1.1 request")
    try:
        _, fields = _split(head)
    except HttpError as exc:
        raise HttpError(int(status), exc.detail) from None
    return int(status), reason.decode("latin-1"), fields


def render_response(status: int, headers: Headers, body: bytes = b"") -> bytes:
    """Serialise a response head (and body) with our reason phrase."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
