"""Fuzz the command line's SIP parsers: `parse_message`, `salvage`, `response_to` and the URI parsers."""

from __future__ import annotations

import contextlib
import time

from _oracle import OracleError, check

from sansio_wss.cli.sipmsg import MAX_MESSAGE_SIZE, SipMessage, parse_message, response_to, salvage
from sansio_wss.cli.sipuri import NameAddr, SipParseError, parse_name_addr, parse_uri, parse_via

TIME_LIMIT = 2.0
"""Seconds one input may take, instrumented: the parsers are linear, ~20 ms for 64 KiB here."""
_ADDRESSES = ("To", "From", "Contact", "Route", "Record-Route")


def _parsed(data: bytes) -> SipMessage | None:
    try:
        return parse_message(data)
    except SipParseError as error:
        check(bool(error.reason) and str(error) == error.reason, "SipParseError without a reason")
        return None


def round_trip(msg: SipMessage, what: str) -> bytes:
    """`msg` serializes to bytes that parse back to an equal message; returns them."""
    wire = msg.serialize()
    try:
        again = parse_message(wire)
    except SipParseError as error:
        raise OracleError(f"{what} serializes to {wire[:200]!r}, which does not parse: {error}") from None
    check(again == msg, lambda: f"{what}: {msg!r} re-parses as {again!r}")
    check(again.serialize() == wire, lambda: f"{what}: serialize is not a fixpoint")
    return wire


def uri(text: str) -> None:
    """`parse_uri` raises only SipParseError; what it returns prints as a URI that parses back."""
    try:
        parsed = parse_uri(text)
    except SipParseError:
        return
    check(parsed.port is None or 0 < parsed.port < 65536, lambda: f"{text!r}: port {parsed.port}")
    check(bool(parsed.host) and parsed.scheme in ("sip", "sips"), lambda: f"{text!r}: {parsed!r}")
    again = parse_uri(str(parsed))
    check(again == parsed, lambda: f"parse_uri({text!r}) = {parsed!r}, str {parsed}, re-parsed {again!r}")


def name_addr(text: str) -> NameAddr | None:
    """`parse_name_addr` raises only SipParseError; what it returns prints as a value that parses back."""
    try:
        parsed = parse_name_addr(text)
    except SipParseError:
        return None
    try:
        again = parse_name_addr(str(parsed))
    except SipParseError as error:
        raise OracleError(f"parse_name_addr({text!r}) prints as {parsed}, which fails: {error}") from None
    check(again == parsed, lambda: f"parse_name_addr({text!r}) = {parsed!r}, re-parsed {again!r}")
    uri(str(parsed.uri))
    return parsed


def via(text: str) -> None:
    """`parse_via` raises only SipParseError and gives a transport token, a host and a valid port."""
    try:
        parsed = parse_via(text)
    except SipParseError:
        return
    check(parsed.port is None or 0 < parsed.port < 65536, lambda: f"Via {text!r}: port {parsed.port}")
    check(bool(parsed.host) and parsed.transport == parsed.transport.upper(), lambda: f"Via {text!r}")


def readers(msg: SipMessage) -> None:
    """Every accessor of a parsed message raises only SipParseError."""
    for read in (msg.top_via, msg.call_id, msg.cseq, msg.to_addr, msg.from_addr, msg.contacts):
        with contextlib.suppress(SipParseError):
            read()
    for number in (msg.expires, msg.max_forwards):
        try:
            value = number()
        except SipParseError:
            continue
        check(value is None or value >= 0, "negative number")
    for text in msg.get_all("Via"):
        via(text)
    for name in _ADDRESSES:
        for text in msg.get_all(name):
            name_addr(text)
    if msg.uri is not None:
        uri(msg.uri)


def answers(request: SipMessage) -> None:
    """`response_to` copies every Via, Call-ID and CSeq, and what it builds parses."""
    response = response_to(request, 180, "Ringing", to_tag="9vs4bq")
    round_trip(response, "response_to")
    check(response.get_all("Via") == request.get_all("Via"), "response_to: Via not copied")
    lost = [name for name in ("Call-ID", "CSeq", "From") if response.get(name) != request.get(name)]
    check(not lost, lambda: f"response_to did not copy {lost}")
    to = request.get("To")
    check(to is None or (response.get("To") or "").startswith(to), "response_to: To not copied")


def run(data: bytes) -> SipMessage | None:
    """`data` as one SIP message and as the text of a URI, a name-addr and a Via; returns the parse."""
    started = time.perf_counter()
    msg = _parsed(data)
    if msg is not None:
        if len(msg.serialize()) <= MAX_MESSAGE_SIZE:
            round_trip(msg, "parse_message")
        readers(msg)
        if msg.method is not None:
            answers(msg)
    rescued = salvage(data)
    check(rescued is None or rescued.method is not None, "salvage returned a response")
    if rescued is not None:
        check(msg is None or msg.method is not None, "salvage of a response")
        round_trip(rescued, "salvage")
        answers(rescued)
    if len(data) <= 4096:
        text = data.decode("utf-8", "replace")
        uri(text)
        name_addr(text)
        via(text)
    elapsed = time.perf_counter() - started
    check(elapsed < TIME_LIMIT, lambda: f"{len(data)} bytes took {elapsed:.2f} s")
    return msg


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the OSS-Fuzz entry point's name)
    """The atheris entry point."""
    run(data)


if __name__ == "__main__":
    from _engine import fuzz

    fuzz(TestOneInput)
