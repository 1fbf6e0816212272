"""Fuzz the command line's registrar: a script of SIP messages over several flows, answers, closes, time."""

from __future__ import annotations

import atheris
from _oracle import OracleError, check

from sansio_wss.cli.registrar import Counters, Registrar, Send
from sansio_wss.cli.sipmsg import SipMessage, parse_message, salvage
from sansio_wss.cli.sipuri import SipParseError, parse_via

VIA_HOSTS = ("edge.example.com", "[2001:db8::7]:8443", "192.0.2.1:443")
EXPIRES = (1, 60, 600, 3600)
STATUSES = (100, 180, 200, 202, 404, 486, 487, 503)
SLOTS = 4
MAX_OPS = 48
MAX_MESSAGE = 8192
SEND, ANSWER, CLOSE, TIME, REPEAT = range(5)
_ANSWERED = ("via", "record-route", "from", "call-id", "cseq")


def parsed(data: bytes) -> SipMessage | None:
    try:
        return parse_message(data)
    except SipParseError:
        return None


def answer(request: SipMessage, status: int) -> bytes:
    """What a UAS sends back for a relayed `request`, as text (every Via and Record-Route, From, To
    with a tag, Call-ID, CSeq, a Contact on 2xx), independent of `response_to`."""
    lines = [f"SIP/2.0 {status} Whatever"]
    for header in request.headers:
        name = header.name.lower()
        if name in _ANSWERED:
            lines.append(f"{header.name}: {header.value}")
        elif name == "to":
            tagged = ";tag=" in header.value or status == 100
            lines.append(f"To: {header.value}" if tagged else f"To: {header.value};tag=9vs4bq")
    if 200 <= status < 300:
        lines.append("Contact: <sip:6ndr0o7p@fq4b1x5l86qr.invalid;transport=ws>")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


class Script:
    """One registrar, the flows of `SLOTS` browsers (a closed flow's slot gets a fresh id), a clock."""

    def __init__(self, fdp: atheris.FuzzedDataProvider) -> None:
        self.fdp = fdp
        flags = fdp.ConsumeIntInRange(0, 3)
        self.via_host = VIA_HOSTS[fdp.ConsumeIntInRange(0, len(VIA_HOSTS) - 1)]
        self.max_bindings = fdp.ConsumeIntInRange(1, 8)
        self.max_branches = fdp.ConsumeIntInRange(1, 8)
        self.registrar = Registrar(
            None if flags & 1 else "example.com",
            self.via_host,
            default_expires=EXPIRES[fdp.ConsumeIntInRange(0, len(EXPIRES) - 1)],
            max_expires=EXPIRES[fdp.ConsumeIntInRange(0, len(EXPIRES) - 1)],
            max_bindings=self.max_bindings,
            max_branches=self.max_branches,
        )
        self.flows = list(range(1, SLOTS + 1))
        self.next_flow = SLOTS + 1
        self.heard: set[int] = set()
        self.closed: set[int] = set()
        self.now = 1000.0
        self.relayed: list[Send] = []
        self.last: tuple[bytes, int] | None = None
        self.replies = 0
        self.ours = parse_via(f"SIP/2.0/WSS {self.via_host}")
        # Our branch -> the flows requests with it came over, and the flows they went to.
        self.origins: dict[str, set[int]] = {}
        self.targets: dict[str, set[int]] = {}

    def step(self) -> None:
        fdp = self.fdp
        op = fdp.ConsumeIntInRange(0, REPEAT)
        if op == SEND:
            flow = self.flows[fdp.ConsumeIntInRange(0, SLOTS - 1)]
            self.receive(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, MAX_MESSAGE)), flow)
        elif op == ANSWER and self.relayed:
            back = fdp.ConsumeIntInRange(0, 7) % len(self.relayed)
            sent = self.relayed[-1 - back]
            status = STATUSES[fdp.ConsumeIntInRange(0, len(STATUSES) - 1)]
            request = parse_message(sent.message)  # checked when it was sent
            wrong = fdp.ConsumeIntInRange(0, 7) == 7  # a response over another flow than the request's
            flow = self.flows[fdp.ConsumeIntInRange(0, SLOTS - 1)] if wrong else sent.flow_id
            self.receive(answer(request, status), flow)
        elif op == CLOSE:
            slot = fdp.ConsumeIntInRange(0, SLOTS - 1)
            self.registrar.flow_closed(self.flows[slot])
            self.closed.add(self.flows[slot])
            self.flows[slot] = self.next_flow
            self.next_flow += 1
        elif op == TIME:
            self.now += fdp.ConsumeIntInRange(0, 0xFFFF) / 16
            if fdp.ConsumeBool():
                self.registrar.purge(self.now)
        elif op == REPEAT and self.last is not None:
            self.receive(*self.last)
        self.check_tables()

    def receive(self, data: bytes, flow: int) -> None:
        """Feed one message and check what comes out against what went in."""
        self.last = (data, flow)
        before = self.registrar.counters
        if flow not in self.closed:  # flow ids are never reused: a closed flow sends nothing more
            self.heard.add(flow)
        else:
            return
        sends = self.registrar.received(data, flow, self.now)
        after = self.registrar.counters
        check(isinstance(sends, list) and len(sends) <= 1, lambda: f"received returned {sends!r}")
        check(after.received == before.received + 1, "received not counted")
        down = [key for key in Counters.__dataclass_fields__ if getattr(after, key) < getattr(before, key)]
        check(not down, lambda: f"counters went down: {down}")
        for send in sends:
            check(isinstance(send, Send) and isinstance(send.message, bytes), "not a Send")
            check(send.flow_id in self.heard, "sent over a flow never heard from")
            check(send.flow_id not in self.closed, "sent over a closed flow")
            try:
                out = parse_message(send.message)
            except SipParseError as error:
                raise OracleError(f"sent {send.message[:300]!r}, which does not parse: {error}") from None
            self.check_output(data, flow, out, send)

    def check_output(self, data: bytes, flow: int, out: SipMessage, send: Send) -> None:
        msg = parsed(data)
        request = msg if msg is not None and msg.method is not None else None
        if msg is None:
            request = salvage(data)
            check(request is not None, "a message that neither parses nor salvages was answered")
        if request is None:  # a response: relayed to the request's origin without our Via
            assert msg is not None
            check(out.status == msg.status, "relayed response changed status")
            check(out == msg.without_first("Via"), lambda: f"relayed response {out!r} for {msg!r}")
            top = msg.top_via()
            check((top.host, top.port) == (self.ours.host, self.ours.port), "relayed a response not to us")
            branch = top.branch or ""
            check(flow in self.targets.get(branch, ()), "relayed a response from a flow not asked")
            check(send.flow_id in self.origins.get(branch, ()), "relayed a response to a flow not asking")
            return
        if out.status is not None:  # generated here
            self.replies += 1
            check(request.method != "ACK", lambda: f"answered an ACK with {out.status}")
            check(send.flow_id == flow, "reply over another flow")
            check(100 <= out.status <= 699, "status")
            check(out.get("Call-ID") == request.get("Call-ID"), "reply changed Call-ID")
            check(out.get("CSeq") == request.get("CSeq"), "reply changed CSeq")
            check(out.get_all("Via") == request.get_all("Via"), lambda: f"reply Vias {out.get_all('Via')}")
            return
        check(msg is not None, "relayed a request that does not parse")
        assert msg is not None
        check(out.method == msg.method and out.body == msg.body, "relayed request changed")
        changed = [name for name in ("Call-ID", "CSeq", "From") if out.get(name) != msg.get(name)]
        check(not changed, lambda: f"relay changed {changed}")
        vias = out.get_all("Via")
        check(vias[1:] == msg.get_all("Via"), lambda: f"relayed Vias {vias} for {msg.get_all('Via')}")
        ours = parse_via(vias[0])
        check((ours.host, ours.port) == (self.ours.host, self.ours.port), "relayed with another Via host")
        branch = ours.branch or ""
        check(branch.startswith("z9hG4bK"), "our branch lacks the magic cookie")
        self.origins.setdefault(branch, set()).add(flow)
        self.targets.setdefault(branch, set()).add(send.flow_id)
        hops = msg.max_forwards()
        check(out.max_forwards() == (69 if hops is None else hops - 1), "Max-Forwards not decremented")
        if msg.method != "ACK":
            self.relayed.append(send)

    def check_tables(self) -> None:
        bindings = self.registrar.bindings
        count = sum(len(entries) for entries in bindings.values())
        check(count <= self.max_bindings, lambda: f"{count} bindings over the cap {self.max_bindings}")
        check(all(entries for entries in bindings.values()), "an AOR without bindings")
        branches = self.registrar.branch_count
        check(branches <= self.max_branches, lambda: f"{branches} branches over the cap {self.max_branches}")


def run(data: bytes) -> Script:
    """Play `data` as a script; returns it for the seed tests.

    Layout: integers from the end (the configuration, then per step the operation, the flow
    slot, the message length, the status...), message bytes from the front.
    """
    script = Script(atheris.FuzzedDataProvider(data))
    for _ in range(MAX_OPS):
        if script.fdp.remaining_bytes() == 0:
            break
        script.step()
    return script


def TestOneInput(data: bytes) -> None:  # noqa: N802 (the OSS-Fuzz entry point's name)
    """The atheris entry point."""
    run(data)


if __name__ == "__main__":
    from _engine import fuzz

    fuzz(TestOneInput)
