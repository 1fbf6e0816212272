"""Fuzz the SIP layer: message classification, keepalives, and the ws/wss and SIP URI parsers."""

from __future__ import annotations

import atheris
from _oracle import OracleError, check, valid_utf8
from _samples import CLIENT_KEY

from sansio_wss import ClientConnection, CrlfKeepalive, InvalidSipMessage, SipMessageReceived
from sansio_wss._http import HttpError, parse_request_head
from sansio_wss.sip import check_start_line, is_text, parse_ws_uri, receive, sip_destination

_OUR_FIELDS = ["host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"]


def message(data: bytes, binary: bool) -> None:
    """`receive` never raises and agrees with `check_start_line` and `is_text`."""
    event, reply = receive(data, binary)
    reason = check_start_line(data)
    check(reason is None or isinstance(reason, str), "check_start_line type")
    check(is_text(data) == valid_utf8(data), lambda: f"is_text({data[:40]!r}) is wrong")
    if isinstance(event, SipMessageReceived):
        check(reason is None and reply is None, "SipMessageReceived disagrees with check_start_line")
        check(event.message == data and event.binary == binary, "SipMessageReceived fields")
    elif isinstance(event, CrlfKeepalive):
        check(data in (b"\r\n\r\n", b"\r\n") and reason is not None, "CrlfKeepalive for another message")
        check(reply == (b"\r\n" if event.ping else None), "keepalive answer")
        check(event.ping == (data == b"\r\n\r\n"), "keepalive kind")
    else:
        check(isinstance(event, InvalidSipMessage), lambda: f"receive returned {event!r}")
        assert isinstance(event, InvalidSipMessage)
        check(reason is not None and reply is None, "InvalidSipMessage disagrees with check_start_line")
        check(event.message == data and event.binary == binary and bool(event.detail), "fields")


def request_of(host: str, port: int, resource: str) -> None:
    """A destination a URI parser accepted must give an upgrade request our own server can parse."""
    conn = ClientConnection(host, 0.0, port=port, resource=resource, key=CLIENT_KEY)
    head = conn.data_to_send()[:-4]
    try:
        _, target, fields = parse_request_head(head)
    except HttpError as exc:
        raise OracleError(f"{host!r} {resource!r} gives a bad request: {exc.detail}") from None
    names = [name.lower() for name, _ in fields]
    check(names[:5] == _OUR_FIELDS, lambda: f"{host!r} injects header fields: {names}")
    check(target == resource, lambda: f"request target {target!r} for resource {resource!r}")


def ws_uri(text: str, default_port: int) -> None:
    """`parse_ws_uri` raises only ValueError; what it returns is a usable destination."""
    try:
        uri = parse_ws_uri(text, default_port, "/d")
    except ValueError:
        return
    check(bool(uri.host) and 0 < uri.port < 65536, lambda: f"parse_ws_uri({text!r}) gave {uri!r}")
    check(uri.resource == "/d" or uri.resource.startswith("/"), "resource")
    check(uri.secure == text.lower().startswith("wss://"), "secure")
    request_of(uri.host, uri.port, uri.resource)


def sip_uri(text: str, default_port: int) -> None:
    """`sip_destination` raises only ValueError; what it returns is a usable destination."""
    try:
        dest = sip_destination(text, default_port)
    except ValueError:
        return
    check(isinstance(dest.secure, bool) and isinstance(dest.port, int), "Destination types")
    check("transport" in text.lower(), lambda: f"sip_destination({text!r}) without a transport parameter")
    check(0 < dest.port < 65536, lambda: f"sip_destination({text!r}) gave port {dest.port}")
    check(bool(dest.host), lambda: f"sip_destination({text!r}) gave an empty host")
    request_of(dest.host, dest.port, "/")


def run(data: bytes) -> None:
    """The same bytes as a message, and as a URI decoded two ways."""
    fdp = atheris.FuzzedDataProvider(data)
    binary = fdp.ConsumeBool()
    default_port = fdp.ConsumeIntInRange(1, 65535)
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    message(body, binary)
    for text in dict.fromkeys((body.decode("utf-8", "replace"), body.decode("latin-1"))):
        ws_uri(text, default_port)
        sip_uri(text, default_port)


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the OSS-Fuzz entry point's name)
    """The atheris entry point."""
    run(data)


if __name__ == "__main__":
    from _engine import fuzz

    fuzz(TestOneInput)
