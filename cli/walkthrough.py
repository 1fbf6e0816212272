"""`python -m sansio_wss walkthrough`: a client and a server core driven by hand, step by step."""

from __future__ import annotations

from sansio_wss import ClientConnection, Config, Connection, ServerConnection

REGISTER = (
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n"
    "From: <sip:alice@example.com>;tag=65bnmj\r\nTo: <sip:alice@example.com>\r\n"
    "Call-ID: aiuy7k9njasd\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
)
OK = (
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n"
    "CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
)


def _pump(label: str, source: Connection, sink: Connection, now: float) -> None:
    data = source.data_to_send()
    if data:
        shown = data if len(data) < 90 else data[:87] + b"..."
        print(f"  {label}: {len(data)} bytes {shown!r}")
        sink.receive_data(data, now)
    for event in sink.events():
        print(f"    -> {type(event).__name__}: {_brief(event)}")
    if sink.transport_action.name != "NONE":
        print(f"    transport action: {sink.transport_action.name}")


def _brief(event: object) -> str:
    text = repr(event)
    return text if len(text) < 110 else text[:107] + "..."


def main() -> None:
    """Run the exchange: upgrade, REGISTER and 200 OK, CRLF keepalive, ping, close."""
    config = Config(ping_interval=30.0)
    now = 0.0
    client = ClientConnection("sip.example.com", now, config=config)
    server = ServerConnection(now, config)
    steps = [
        ("upgrade request", client, server),
        ("101 reply", server, client),
    ]
    print("== handshake")
    for label, source, sink in steps:
        _pump(label, source, sink, now)
    print("== SIP over the connection")
    now = 1.0
    client.send(REGISTER, now)
    _pump("REGISTER (text frame, masked)", client, server, now)
    server.send(OK, now)
    _pump("200 OK (text frame)", server, client, now)
    client.send(b"\r\n\r\n", now)
    _pump("CRLF keepalive ping", client, server, now)
    _pump("CRLF keepalive answer", server, client, now)
    print("== timers as data")
    print(f"  server's next deadline: {server.get_timer()} (keepalive ping due 30 s after the last read)")
    now = server.get_timer() or now
    server.handle_timer(now)
    _pump("server's keepalive Ping", server, client, now)
    _pump("client's automatic Pong", client, server, now)
    print("== closing handshake")
    client.close(now, 1000, "bye")
    _pump("client's Close", client, server, now)
    _pump("server's Close", server, client, now)
    client.receive_eof(now)
    print(f"  client after the server's EOF: {client.transport_action.name}")
