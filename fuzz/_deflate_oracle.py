"""permessage-deflate (RFC 7692) for the oracles, written from the RFCs and not with our core: the
`Sec-WebSocket-Extensions` grammar, which offer a server honours and which answers RFC 7692 allows
for it, which answers our client keeps, a structure-aware generator of such headers, and a
reference receiver (zlib, window and context per the agreement) for compressed messages."""

from __future__ import annotations

import codecs
import zlib
from dataclasses import dataclass

import atheris

__all__ = [
    "Element",
    "Negotiated",
    "Reference",
    "agreement_of",
    "candidates",
    "allowed_answer",
    "generate",
    "honoured",
    "keepable",
    "parse",
]

NAME = "permessage-deflate"
KNOWN = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)
TAIL = b"\x00\x00\xff\xff"
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

Element = tuple[str, list[tuple[str, str | None]]]
"""One list element: the extension name and its parameters in order (a value, or None)."""


def _token(text: str, pos: int) -> tuple[str, int]:
    end = pos
    while end < len(text) and ord(text[end]) < 128 and ord(text[end]) in _TCHAR:
        end += 1
    return text[pos:end], end


def _ows(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _quoted(text: str, pos: int) -> tuple[str | None, int]:
    """A quoted-string at `pos` (RFC 9110 5.6.4): its content, quoted-pairs unescaped; None when
    unterminated."""
    out: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\":  # a quoted-pair (RFC 9110 5.6.4): the character after the backslash
            if pos + 1 == len(text):
                return None, pos
            pos += 1
            char = text[pos]
        if (ord(char) < 0x20 and char != "\t") or char == "\x7f":
            return None, pos
        out.append(char)
        pos += 1
    return None, pos


def parse(values: list[str]) -> list[Element | None]:
    """The elements of `#extension` (RFC 6455 9.1, RFC 9110 5.6.1) over all the header's lines:
    name and parameters (lower-cased; a parameter value unquoted), None for a malformed element.
    Empty elements are skipped, as the list rule allows."""
    elements: list[Element | None] = []
    for value in values:
        pos = 0
        while pos <= len(value):
            pos = _ows(value, pos)
            if pos == len(value):
                break
            if value[pos] == ",":
                pos += 1
                continue
            element, pos = _element(value, pos)
            elements.append(element)
            # skip to the next comma outside quotes after a malformed element
            while pos < len(value) and value[pos] != ",":
                if value[pos] == '"':
                    _, pos = _quoted(value, pos)
                else:
                    pos += 1
            pos += 1
    return elements


def _element(text: str, pos: int) -> tuple[Element | None, int]:
    name, pos = _token(text, pos)
    if not name:
        return None, pos
    params: list[tuple[str, str | None]] = []
    while True:
        pos = _ows(text, pos)
        if pos == len(text) or text[pos] == ",":
            return (name.lower(), params), pos
        if text[pos] != ";":
            return None, pos
        pos = _ows(text, pos + 1)
        key, pos = _token(text, pos)
        if not key:
            return None, pos
        pos = _ows(text, pos)
        found: str | None = None
        if pos < len(text) and text[pos] == "=":
            pos = _ows(text, pos + 1)
            if pos < len(text) and text[pos] == '"':
                found, pos = _quoted(text, pos)
                if found is None:
                    return None, pos
            else:
                found, pos = _token(text, pos)
                if not found:
                    return None, pos
        params.append((key.lower(), found))


def _bits(value: str | None) -> int | None:
    """RFC 7692 7.1.2: 1*DIGIT, no leading zero, 8 to 15."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    if value.startswith("0"):
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


@dataclass(frozen=True)
class Negotiated:
    """A valid permessage-deflate offer or answer; bits None: the parameter is absent, 0: present
    without a value (client_max_window_bits in an offer only)."""

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int | None
    client_max_window_bits: int | None

    def terms(self) -> tuple[bool, bool, int, int]:
        """What it means for the two compressors: an absent window is 15 bits (RFC 7692 7.1.2)."""
        server, client = self.server_max_window_bits, self.client_max_window_bits
        return (self.server_no_context_takeover, self.client_no_context_takeover, server or 15, client or 15)


def _valid(element: Element | None, offer: bool) -> Negotiated | None:
    """The element as permessage-deflate parameters RFC 7692 section 7.1 allows, or None."""
    if element is None or element[0] != NAME:
        return None
    params = dict(element[1])
    if len(params) != len(element[1]) or not params.keys() <= set(KNOWN):
        return None
    for flag in KNOWN[:2]:
        if flag in params and params[flag] is not None:
            return None
    bits: list[int | None] = []
    for name in KNOWN[2:]:
        if name not in params:
            bits.append(None)
        elif params[name] is None and offer and name == "client_max_window_bits":
            bits.append(0)
        else:
            value = _bits(params[name])
            if value is None:
                return None
            bits.append(value)
    return Negotiated(KNOWN[0] in params, KNOWN[1] in params, bits[0], bits[1])


def candidates(values: list[str]) -> list[Negotiated] | None:
    """None when every element is well-formed (then `honoured` says which offer is taken);
    otherwise the valid offers under any reading: of our grammar, which skips a malformed element
    to the next comma outside quotes, or of a split at every comma (RFC 9110 leaves a malformed
    list's meaning open, so a server may take any, or none)."""
    elements = parse(values)
    naive = [
        _element(part.strip(" \t"), 0)[0]
        for value in values
        for part in value.split(",")
        if part.strip(" \t")
    ]
    if None not in elements:
        return None
    found = [_valid(element, offer=True) for element in elements + naive]
    return [offer for offer in found if offer is not None and offer.server_max_window_bits != 8]


def honoured(values: list[str]) -> Negotiated | None:
    """The offer our server takes: the first valid one, but for a server window of 8, which zlib
    cannot compress with (declining an offer is always allowed)."""
    for element in parse(values):
        offer = _valid(element, offer=True)
        if offer is not None and offer.server_max_window_bits != 8:
            return offer
    return None


def allowed_answer(offer: Negotiated, answer: Negotiated, window: int) -> str | None:
    """Why `answer` is not one RFC 7692 allows for `offer` from a server compressing with at most
    `window` bits; None when it is."""
    if offer.server_no_context_takeover and not answer.server_no_context_takeover:
        return "server_no_context_takeover offered and not echoed (7.1.1.1)"
    if offer.server_max_window_bits is not None:
        if answer.server_max_window_bits is None:
            return "server_max_window_bits offered and not in the answer (7.1.2.1)"
        if (answer.server_max_window_bits or 15) > offer.server_max_window_bits:
            return "server_max_window_bits over the offer (7.1.2.1)"
    if answer.server_max_window_bits is not None and answer.server_max_window_bits > window:
        return "server_max_window_bits over our own window"
    if answer.client_max_window_bits is not None:
        if offer.client_max_window_bits is None:
            return "client_max_window_bits answered but not offered (7.1.2.2)"
        if offer.client_max_window_bits and answer.client_max_window_bits > offer.client_max_window_bits:
            return "client_max_window_bits over the offer (7.1.2.2)"
    return None


def agreement_of(values: list[str]) -> Negotiated | None:
    """A server's answer (the 101's header values) when it is exactly one valid permessage-deflate."""
    elements = parse(values)
    return _valid(elements[0], offer=False) if len(elements) == 1 else None


def keepable(values: list[str], window: int) -> Negotiated | None:
    """The answer our client keeps, to its offer `server_max_window_bits=window;
    client_max_window_bits`: one valid element, a server window not over ours (absent: 15, inflated
    with a bigger window, a documented leniency) and a client window zlib can compress with."""
    answer = agreement_of(values)
    if answer is None:
        return None
    if answer.server_max_window_bits is not None and answer.server_max_window_bits > window:
        return None
    if answer.client_max_window_bits == 8:
        return None
    return answer


# ------------------------------------------------------------------------------- the generator

_NAMES = (NAME, "PerMessage-Deflate", "x-webkit-deflate-frame", "permessage-deflat", "foo", "")
_PARAMS = (*KNOWN, "Server_Max_Window_Bits", "CLIENT_NO_CONTEXT_TAKEOVER", "max_window_bits", "x")
_VALUES = ("8", "9", "10", "12", "15", "16", "0", "09", "7", "-9", "1x", "", "15.0", "\uff11\uff10")


def generate(fdp: atheris.FuzzedDataProvider) -> list[str]:
    """1 to 3 header values of 1 to 4 elements each: names, parameters, values (tokens, quoted,
    escaped, empty, out of range), whitespace, stray commas and quotes, duplicates."""
    values = []
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        elements = []
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            pick = fdp.ConsumeIntInRange(0, len(_NAMES))
            name = _NAMES[pick] if pick < len(_NAMES) else fdp.ConsumeUnicode(6)
            parts = [name]
            for _ in range(fdp.ConsumeIntInRange(0, 5)):
                pick = fdp.ConsumeIntInRange(0, len(_PARAMS))
                key = _PARAMS[pick] if pick < len(_PARAMS) else fdp.ConsumeUnicode(6)
                parts.append(key + _value(fdp))
            glue = (";", "; ", " ;", ";\t", ";;", "")[fdp.ConsumeIntInRange(0, 5)]
            elements.append(glue.join(parts) if glue else "; ".join(parts))
        comma = (", ", ",", " , ", ",,", ', "')[fdp.ConsumeIntInRange(0, 4)]
        values.append(comma.join(elements))
    return values


def _value(fdp: atheris.FuzzedDataProvider) -> str:
    form = fdp.ConsumeIntInRange(0, 7)
    if form == 0:
        return ""
    pick = fdp.ConsumeIntInRange(0, len(_VALUES))
    value = _VALUES[pick] if pick < len(_VALUES) else fdp.ConsumeUnicode(4)
    if form == 1:
        return f"={value}"
    if form == 2:
        return f'="{value}"'
    if form == 3:
        return f' = "{value}" '
    if form == 4:
        return '="' + "".join("\\" + c for c in value) + '"'
    if form == 5:
        return f'="{value}, {NAME}, x"'
    if form == 6:
        return f"={value}="
    return f' = {value}"'


# ------------------------------------------------------------------- the reference receiver


class Reference:
    """Receives compressed messages as RFC 7692 section 7.2.2 says, with zlib: a window of the
    agreed bits (9 at least: zlib inflates nothing smaller, and a bigger window reads a smaller
    one's output), context kept across messages unless the agreement resets it or a message ended
    its stream (BFINAL), the 4 octets of 7.2.2 appended, inflated no further than `limit` + 1."""

    def __init__(self, bits: int, reset: bool, limit: int) -> None:
        self.bits = max(bits, 9)
        self.reset = reset
        self.limit = limit
        self.inflater: zlib._Decompress | None = None

    def frame(self, data: bytes, fin: bool, got: int) -> bytes | int:
        """One frame of a message that has `got` bytes so far: its inflated bytes, or a close code."""
        if self.inflater is None:
            self.inflater = zlib.decompressobj(-self.bits)
        inflater = self.inflater
        room = self.limit - got
        try:
            out = inflater.decompress(data + (TAIL if fin else b""), room + 1)
        except zlib.error:
            self.inflater = None
            return 1002
        if len(out) > room or inflater.unconsumed_tail:
            self.inflater = None
            return 1009
        if fin and (self.reset or inflater.eof):
            self.inflater = None
        return out

    def message(self, frames: list[bytes], text: bool) -> bytes | int:
        """A whole message's frames: the message, or the code that fails it (first failure wins)."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        parts: list[bytes] = []
        got = 0
        bound = self.limit + (self.limit >> 8) + 64
        for index, data in enumerate(frames):
            fin = index == len(frames) - 1
            if len(data) > bound:
                self.inflater = None
                return 1009
            out = self.frame(data, fin, got)
            if isinstance(out, int):
                return out
            got += len(out)
            if text:
                try:
                    decoder.decode(out, fin)
                except UnicodeDecodeError:
                    self.inflater = None
                    return 1007
            parts.append(out)
        return b"".join(parts)
