"""`probe` end to end: the command in a subprocess, through each adapter, against servers started here."""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
import trustme
from cryptography import x509

from sansio_wss import Config, ConnectionClosed, Opened, TLSDomain
from sansio_wss.adapters import asyncio as wss
from sansio_wss.cli import probe
from sansio_wss.cli.certs import generate

ADAPTERS = ("asyncio", "trio", "sync")
LIMIT = 20.0  # no probe here may take longer: a hang fails the test instead of stalling the run
STARTUP = 3.0  # seconds an interpreter may take to start and import, over the probe's own timeout
ENTRY = "import sys; from sansio_wss.cli.probe import main; raise SystemExit(main(sys.argv[1:]))"
ALLOWED = "https://good.example.com"

T = TypeVar("T")


@dataclass
class Seen:
    """One connection accepted by the answering server: its handshake, TLS, requests and close."""

    opened: Opened | None
    cipher: str | None
    requests: list[bytes] = field(default_factory=list)
    closed: ConnectionClosed | None = None


@dataclass
class Servers:
    """Every server the tests probe, on 127.0.0.1, served from one event loop in a thread."""

    ca: str
    server_pem: str
    answering: int  # answers each OPTIONS: two strays, 100 Trying, 200 OK
    restricted: int  # accepts only Origin ALLOWED
    silent: int  # completes the upgrade, never answers
    closing: int  # closes (1000) right after the upgrade
    tls_stall: int  # accepts TCP (the kernel does), never speaks TLS
    upgrade_stall: int  # completes TLS, never answers the upgrade request
    hang_up: int  # accepts TCP and closes it at once, in the middle of TLS
    self_signed: int  # answers as `answering` does, with a self-signed certificate
    self_signed_fingerprint: str
    seen: list[Seen]


def answer(request: bytes, status: str, call_id: str | None = None, cseq: str | None = None) -> bytes:
    """A response to `request` (its Via, From, To, Call-ID and CSeq), with the fields given replaced."""
    head = request.split(b"\r\n\r\n", 1)[0].decode()
    copied = [line for line in head.split("\r\n")[1:] if line.split(":")[0] in ("Via", "From", "To", "CSeq")]
    fields = [line + ";tag=srv" if line.startswith("To:") else line for line in copied]
    if cseq is not None:
        fields = [f"CSeq: {cseq}" if line.startswith("CSeq:") else line for line in fields]
    ours = re.search(r"^Call-ID: (.*)$", head, re.MULTILINE)
    assert ours is not None
    fields.append(f"i: {call_id or ours.group(1)}")  # the compact form of Call-ID
    return "\r\n".join([f"SIP/2.0 {status}", *fields, "Content-Length: 0", "", ""]).encode()


async def start_servers(folder: pathlib.Path, seen: list[Seen]) -> tuple[Servers, list[object]]:
    ca = trustme.CA()
    ca_pem, server_pem = str(folder / "ca.pem"), str(folder / "server.pem")
    ca.cert_pem.write_to_path(ca_pem)
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(server_pem)
    tls = [TLSDomain(name="server", side="server", certificate=server_pem)]

    async def answering(conn: wss.Connection) -> None:
        record = Seen(conn.opened, conn.tls.cipher if conn.tls else None)
        seen.append(record)
        async for message in conn:
            record.requests.append(message.message)
            if message.message.startswith(b"OPTIONS "):
                await conn.send(answer(message.message, "486 Busy Here", call_id="another-call"))
                await conn.send(answer(message.message, "487 Request Terminated", cseq="99 OPTIONS"))
                await conn.send(answer(message.message, "100 Trying"))
                await conn.send(answer(message.message, "200 OK"))
        record.closed = conn.closed

    async def silent(conn: wss.Connection) -> None:
        record = Seen(conn.opened, None)
        seen.append(record)
        async for message in conn:
            record.requests.append(message.message)
        record.closed = conn.closed

    async def closing(conn: wss.Connection) -> None:
        pass

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):  # until the probe gives up and closes
            pass
        writer.close()

    generated = generate(folder / "self-signed", ["127.0.0.1"])
    alone = TLSDomain(
        name="alone", side="server", certificate=str(generated.certificate), private_key=str(generated.key)
    )
    local = [("127.0.0.1", 0)]
    restricted = Config(allowed_origins=frozenset({ALLOWED}))
    servers = [
        await wss.serve(answering, local, tls=tls),
        await wss.serve(answering, local, tls=tls, config=restricted),
        await wss.serve(silent, local, tls=tls),
        await wss.serve(closing, local, tls=tls),
        await wss.serve(answering, local, tls=[alone]),
    ]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_pem)
    stall = await asyncio.start_server(never_answer, "127.0.0.1", 0, ssl=context)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    hanging = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # never accepted: connects complete in the backlog
    answering_port, restricted_port, silent_port, closing_port, self_signed_port = (
        server.addresses[0][1] for server in servers
    )
    made = Servers(
        ca=ca_pem,
        server_pem=server_pem,
        answering=answering_port,
        restricted=restricted_port,
        silent=silent_port,
        closing=closing_port,
        tls_stall=listener.getsockname()[1],
        upgrade_stall=stall.sockets[0].getsockname()[1],
        hang_up=hanging.sockets[0].getsockname()[1],
        self_signed=self_signed_port,
        self_signed_fingerprint=generated.fingerprint,
        seen=seen,
    )
    return made, [*servers, stall, hanging, listener]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="probe test servers", daemon=True)
    thread.start()

    def call(coroutine: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), loop).result(LIMIT)

    with tempfile.TemporaryDirectory(prefix="sansio-wss-probe-") as folder:
        (pathlib.Path(folder) / "self-signed").mkdir()
        made, owned = call(start_servers(pathlib.Path(folder), []))
        try:
            yield made
        finally:

            async def stop() -> None:
                for thing in owned:
                    if isinstance(thing, wss.Server):
                        await thing.close()
                    elif isinstance(thing, (asyncio.Server, socket.socket)):
                        thing.close()

            call(stop())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(LIMIT)
            loop.close()


@dataclass
class Result:
    status: int
    out: str
    err: str
    seconds: float


def run_probe(*args: str, trust: str | None = None) -> Result:
    """The command in a fresh interpreter (cwd /tmp: the installed package); `trust`: a CA file."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if trust is not None:
        env["SSL_CERT_FILE"] = trust  # the system store, as the default context loads it
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=LIMIT,
        cwd="/tmp",
        env=env,
    )
    return Result(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def url(port: int, path: str = "/ws") -> str:
    return f"wss://127.0.0.1:{port}{path}"


def wait_closed(record: Seen) -> ConnectionClosed:
    deadline = time.monotonic() + 5.0
    while record.closed is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert record.closed is not None
    return record.closed


def failed(result: Result, status: int, pattern: str) -> None:
    """The probe exited with `status` and one line on stderr matching `pattern`."""
    assert result.status == status, (result.out, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert re.fullmatch(f"probe: {pattern}", lines[0]), lines[0]


# ---------------------------------------------------------------------- success


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_every_options_answered(servers: Servers, adapter: str) -> None:
    before = len(servers.seen)
    result = run_probe(url(servers.answering), "--count", "4", "--adapter", adapter, trust=servers.ca)
    assert result.status == 0, result.err
    assert result.err == ""
    lines = result.out.splitlines()

    record = servers.seen[before]
    assert record.opened is not None
    cert = x509.load_pem_x509_certificate(pathlib.Path(servers.server_pem).read_bytes())
    tls_line = f"TLS: TLSv1.3, cipher {record.cipher}"
    subject = f"certificate subject: {cert.subject.rfc4514_string()}"
    issuer = f"certificate issuer: {cert.issuer.rfc4514_string()}"
    for expected in (tls_line, subject, issuer, "> GET /ws HTTP/1.1", "< HTTP/1.1 101 Switching Protocols"):
        assert expected in lines, result.out
    assert f"> Origin: https://127.0.0.1:{servers.answering}" in lines  # the library's default
    request = record.opened.request.decode("latin-1").rstrip("\r\n").split("\r\n")
    assert [f"> {line}" for line in request] == [line for line in lines if line.startswith("> ")]
    reply = record.opened.response.decode("latin-1").rstrip("\r\n").split("\r\n")
    assert [f"< {line}" for line in reply] == [line for line in lines if line.startswith("< ")]

    final = [re.fullmatch(r"OPTIONS (\d): SIP/2\.0 200 OK  (\d+\.\d\d) ms", line) for line in lines]
    assert [m.group(1) for m in final if m] == ["1", "2", "3", "4"]
    provisional = [
        line for line in lines if re.fullmatch(r"OPTIONS \d: SIP/2\.0 100 Trying  .* \(provisional\)", line)
    ]
    assert len(provisional) == 4
    answers = [line for line in lines if line.startswith("OPTIONS ")]
    assert len(answers) == 8  # not the 486 (another Call-ID) nor the 487 (another CSeq)
    summary = re.fullmatch(r"round trip min/median/max: ([\d.]+)/([\d.]+)/([\d.]+) ms", lines[-2])
    assert summary is not None, lines[-2]
    low, middle, high = (float(value) for value in summary.groups())
    rtts = sorted(float(m.group(2)) for m in final if m)
    assert (low, high) == (rtts[0], rtts[-1]) and low <= middle <= high
    assert lines[-1] == "closed: 1000 (clean)"
    first = next(line for line in lines if line.startswith("OPTIONS 1: "))
    steps = (tls_line, subject, issuer, "> GET /ws HTTP/1.1", "< HTTP/1.1 101 Switching Protocols", first)
    order = [lines.index(step) for step in steps]
    assert order == sorted(order) and order[-1] < len(lines) - 2
    assert wait_closed(record).code == 1000

    assert len(record.requests) == 4
    check_requests(record.requests, f"sip:127.0.0.1:{servers.answering}")


def check_requests(requests: list[bytes], request_uri: str) -> None:
    """Each OPTIONS is RFC 3261-correct: one Call-ID and From tag, CSeq 1..n, a new branch each."""
    branches, call_ids, tags = set(), set(), set()
    for number, raw in enumerate(requests, 1):
        head, body = raw.decode().split("\r\n\r\n", 1)
        start, *lines = head.split("\r\n")
        assert start == f"OPTIONS {request_uri} SIP/2.0"
        fields = dict(line.split(": ", 1) for line in lines)
        via = re.fullmatch(r"SIP/2\.0/WSS [0-9a-f]+\.invalid;branch=(z9hG4bK[0-9a-f]+)", fields["Via"])
        assert via is not None, fields["Via"]
        branches.add(via.group(1))
        assert fields["Max-Forwards"] == "70"
        sender = re.fullmatch(r"<sip:probe@[0-9a-f]+\.invalid>;tag=(\w+)", fields["From"])
        assert sender is not None, fields["From"]
        tags.add(sender.group(1))
        assert fields["To"] == f"<{request_uri}>"
        call_ids.add(fields["Call-ID"])
        assert fields["CSeq"] == f"{number} OPTIONS"
        assert fields["Accept"] == "application/sdp"
        assert fields["Content-Length"] == "0" and body == ""
    assert len(branches) == len(requests) and len(call_ids) == 1 and len(tags) == 1


def test_the_allowed_origin(servers: Servers) -> None:
    result = run_probe(url(servers.restricted, "/"), "--origin", ALLOWED, "--count", "1", trust=servers.ca)
    assert result.status == 0, result.err
    assert f"> Origin: {ALLOWED}" in result.out.splitlines()
    assert re.search(r"^OPTIONS 1: SIP/2\.0 200 OK ", result.out, re.MULTILINE)


def test_insecure_accepts_a_self_signed_certificate(servers: Servers) -> None:
    result = run_probe(url(servers.self_signed), "--insecure", "--count", "1")
    assert result.status == 0, result.err
    lines = result.out.splitlines()
    assert "certificate subject: CN=sansio-wss test server" in lines
    assert "certificate issuer: CN=sansio-wss test server" in lines
    assert f"certificate SHA-256: {servers.self_signed_fingerprint}" in lines


# ---------------------------------------------------------------------- failures


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_untrusted_certificate(servers: Servers, adapter: str) -> None:
    result = run_probe(url(servers.self_signed), "--adapter", adapter, trust=servers.ca)
    failed(result, 4, "TLS handshake failed: self.signed certificate")
    assert "OPTIONS" not in result.out


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_rejected_origin(servers: Servers, adapter: str) -> None:
    result = run_probe(
        url(servers.restricted),
        "--origin",
        "https://evil.example.com",
        "--adapter",
        adapter,
        trust=servers.ca,
    )
    failed(result, 5, "handshake rejected: 403 Forbidden")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_tls_never_answered(servers: Servers, adapter: str) -> None:
    result = run_probe(url(servers.tls_stall), "--timeout", "1", "--adapter", adapter, trust=servers.ca)
    failed(result, 4, r"TLS handshake not done within 1 s")
    assert 1.0 <= result.seconds < 1.0 + STARTUP


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_hang_up_during_tls(servers: Servers, adapter: str) -> None:
    result = run_probe(url(servers.hang_up), "--adapter", adapter, trust=servers.ca)
    failed(result, 4, r"TLS handshake failed: .+")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_upgrade_never_answered(servers: Servers, adapter: str) -> None:
    result = run_probe(url(servers.upgrade_stall), "--timeout", "1", "--adapter", adapter, trust=servers.ca)
    failed(result, 6, r"timeout: no 101 reply within 1 s")
    assert 1.0 <= result.seconds < 1.0 + STARTUP


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_options_never_answered(servers: Servers, adapter: str) -> None:
    before = len(servers.seen)
    result = run_probe(url(servers.silent), "--timeout", "1", "--adapter", adapter, trust=servers.ca)
    failed(result, 6, r"timeout: no final response to OPTIONS 1 within 1 s")
    assert 1.0 <= result.seconds < 1.0 + STARTUP
    assert "< HTTP/1.1 101 Switching Protocols" in result.out.splitlines()
    record = servers.seen[before]
    assert wait_closed(record).code == 1000  # a clean close, even after a timeout
    assert len(record.requests) == 1


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_nothing_listening(adapter: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_probe(url(port), "--adapter", adapter)
    failed(result, 3, f"TCP connect to 127.0.0.1:{port} failed: Connection refused")


def test_name_does_not_resolve() -> None:
    result = run_probe("wss://no-such-host.invalid/")
    failed(result, 3, "cannot resolve no-such-host.invalid: .+")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_closed_after_upgrade(servers: Servers, adapter: str) -> None:
    result = run_probe(url(servers.closing), "--adapter", adapter, trust=servers.ca)
    failed(result, 7, "connection closed before all answers came: code 1000")


# ---------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    "argv",
    [
        ["ws://127.0.0.1/"],
        ["wss://127.0.0.1:99999/"],
        ["wss://127.0.0.1/", "--count", "0"],
        ["wss://127.0.0.1/", "--timeout", "-1"],
        ["wss://127.0.0.1/", "--adapter", "gevent"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        probe.main(argv)
    assert raised.value.code == 2
    assert "usage: python -m sansio_wss probe" in capsys.readouterr().err


def test_an_invalid_origin_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert probe.main(["wss://127.0.0.1/", "--origin", "bad\r\norigin"]) == 2
    assert capsys.readouterr().err.startswith("probe: ")


def test_help_lists_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        probe.main(["--help"])
    shown = capsys.readouterr().out
    for status in (0, 2, 3, 4, 5, 6, 7):
        assert re.search(rf"^  {status}  \S", shown, re.MULTILINE), status
    doc = probe.__doc__
    assert doc is not None
    assert shown.endswith(doc[doc.index("Exit statuses") :])  # the epilog is the docstring's list
