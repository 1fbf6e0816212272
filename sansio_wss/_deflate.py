"""permessage-deflate (RFC 7692): the offer, the agreement, and each connection's compressor and
bounded decompressor, allocated at their first message and small (windows of 2**12 by default)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ._frames import Violation
from ._lists import list_elements, parse_element

__all__ = ["Agreement", "PerMessageDeflate", "accept_offer", "client_offer", "read_response"]

EXTENSION = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"  # what every sync-flushed message ends with, left off the wire
_LEVEL = 6  # zlib's default: SIP compresses to about a third of its size with it
_MEM_LEVEL = 5  # 39 KB of compressor state with 4 KiB windows (268 KB at zlib's defaults);
# measured: memLevel 4 is 20% slower on a 4.5 KB WebRTC INVITE for 8 KB less (bench/deflate_bench.py)
_PARAMS = frozenset((
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Agreement:
    """What both ends agreed to, as the server's answer states it."""

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int
    client_max_window_bits: int

    def header(self) -> str:
        """The `Sec-WebSocket-Extensions` value of the server's answer."""
        parts = [EXTENSION]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        # Always named: it is how a server accepts an offer naming it (RFC 7692 section 7.1.2.1),
        # and naming it unasked is allowed.
        parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits != 15:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)


def _bits(value: str | None) -> int | None:
    """A window size parameter's value, 8 to 15 without a leading zero as RFC 7692 section 7.1.2
    allows; None otherwise."""
    if value is None or not (value.isascii() and value.isdigit() and len(value) <= 2) or value[0] == "0":
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


def accept_offer(values: list[str], window: int) -> Agreement | None:
    """Server: the first permessage-deflate offer in the request's `Sec-WebSocket-Extensions`
    we can honour, narrowed to our `window` (9-15); None declines them all (no extension)."""
    for element in list_elements(values) or ():
        found = parse_element(element)
        if found is None or found[0] != EXTENSION or not found[1].keys() <= _PARAMS:
            continue
        agreement = _agree(found[1], window)
        if agreement is not None:
            return agreement
    return None


def _agree(params: dict[str, str | None], window: int) -> Agreement | None:
    for flag in ("server_no_context_takeover", "client_no_context_takeover"):
        if flag in params and params[flag] is not None:
            return None
    server_bits = window
    if "server_max_window_bits" in params:
        asked = _bits(params["server_max_window_bits"])
        if asked is None or asked < 9:  # zlib cannot compress with a 256-byte window
            return None
        server_bits = min(asked, window)
    client_reset = "client_no_context_takeover" in params
    if "client_max_window_bits" in params:
        value = params["client_max_window_bits"]
        offered = 15 if value is None else _bits(value)
        if offered is None:
            return None
        client_bits = min(offered, window)
    else:
        # The client will compress with 32 KiB windows: rather than keep a decompressor that big,
        # ask it to start every message afresh (a server may, RFC 7692 section 7.1.1.2).
        client_bits, client_reset = 15, True
    return Agreement("server_no_context_takeover" in params, client_reset, server_bits, client_bits)


def client_offer(window: int) -> str:
    """Client: our offer: the server compresses with at most `window` bits, and may narrow ours."""
    return f"{EXTENSION}; server_max_window_bits={window}; client_max_window_bits"


def read_response(values: list[str], window: int) -> Agreement:
    """Client: the server's answer to `client_offer(window)`; ValueError for one we cannot accept."""
    elements = list_elements(values)
    if elements is None:
        raise ValueError("101 names its extensions in a list that is not well formed (quotes)")
    if len(elements) != 1:
        raise ValueError("101 names more than the one extension we offered")
    found = parse_element(elements[0])
    if found is None or found[0] != EXTENSION:
        raise ValueError("101 names an extension we did not offer")
    params = found[1]
    if not params.keys() <= _PARAMS:
        raise ValueError(f"101 names permessage-deflate parameters we do not know: {sorted(params)}")
    for flag in ("server_no_context_takeover", "client_no_context_takeover"):
        if flag in params and params[flag] is not None:
            raise ValueError(f"101 gives {flag} a value")
    # A server should confirm the window we asked for; one that does not compresses with 32 KiB
    # windows, which we inflate rather than fail (a bigger window reads a smaller one's output).
    server_bits = _bits(params.get("server_max_window_bits", "15"))
    if server_bits is None or ("server_max_window_bits" in params and server_bits > window):
        raise ValueError("101 names a server window we did not offer")
    client_bits = _bits(params.get("client_max_window_bits", "15"))
    if client_bits is None or client_bits < 9:
        raise ValueError("101 names a client window zlib cannot compress with")
    return Agreement(
        "server_no_context_takeover" in params,
        "client_no_context_takeover" in params,
        server_bits,
        client_bits,
    )


class PerMessageDeflate:
    """One connection's compression: each side's zlib object is made at its first message and,
    when the agreement says the side does not take over context, dropped after each message."""

    __slots__ = (
        "_compressor",
        "_decompressor",
        "_inflated",
        "_own_bits",
        "_own_reset",
        "_peer_bits",
        "_peer_reset",
    )

    def __init__(self, agreement: Agreement, client: bool, window: int) -> None:
        server = (agreement.server_max_window_bits, agreement.server_no_context_takeover)
        client_side = (agreement.client_max_window_bits, agreement.client_no_context_takeover)
        own, peer = (client_side, server) if client else (server, client_side)
        self._own_bits = min(own[0], window)  # a smaller window than agreed is always fine
        self._own_reset = own[1]
        self._peer_bits = max(peer[0], 9)  # inflating with a bigger window is fine too
        self._peer_reset = peer[1]
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        self._inflated = 0  # bytes of the message being received, inflated so far

    def compress(self, payload: bytes) -> bytes:
        """One message's payload, compressed as RFC 7692 section 7.2.1 says."""
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -self._own_bits, _MEM_LEVEL)
            if not self._own_reset:
                self._compressor = compressor
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return data[:-4] if data.endswith(_TAIL) else data

    def decompress(self, data: bytes, fin: bool, limit: int) -> bytes:
        """Inflate one frame's payload of a compressed message; the message may reach `limit`
        bytes inflated, and inflating stops (1009) one byte past it."""
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(-self._peer_bits)
        room = limit - self._inflated
        try:
            out = decompressor.decompress(data, room + 1)
            if fin and len(out) <= room and not decompressor.unconsumed_tail:
                out += decompressor.decompress(_TAIL, room + 1 - len(out))
        except zlib.error as exc:
            self.end_message()
            raise Violation(1002, f"compressed message does not inflate: {exc}") from None
        if len(out) > room or decompressor.unconsumed_tail:
            self.end_message()
            raise Violation(1009, f"message over max_message_size ({limit} bytes) once inflated")
        self._inflated += len(out)
        if fin:
            self.end_message(decompressor.eof)
        return out

    def end_message(self, reset: bool = True) -> None:
        """A received message ended (or failed): forget the decompressor unless it carries over."""
        self._inflated = 0
        if reset or self._peer_reset:
            self._decompressor = None
