"""A sans-IO SIP registrar and relay over WebSocket flows: the `registrar` app of `serve`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType

from .sipmsg import (
    MAX_HEADER_FIELDS,
    MAX_MESSAGE_SIZE,
    Header,
    SipMessage,
    delta_seconds,
    parse_message,
    response_to,
    salvage,
)
from .sipuri import NameAddr, Params, SipParseError, SipUri, parse_name_addr, parse_uri

__all__ = ["ALLOW", "BRANCH_LINGER", "BRANCH_TIMEOUT", "Binding", "Counters", "Registrar", "Send"]

ALLOW = "REGISTER, OPTIONS"
"""What the registrar answers itself (a Request-URI without a user part); the rest is relayed."""
BRANCH_TIMEOUT = 200.0
"""Seconds a relayed request's branch waits for a final response (above INVITE's Timer C, 180 s)."""
BRANCH_LINGER = 32.0
"""Seconds a branch is kept after its final response, for retransmitted 2xx and a non-2xx ACK
(RFC 3261 Timer D)."""
_DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})


MAX_CONTACTS = 10
"""Bindings one address of record keeps (tabs, devices); a newer one evicts the oldest, as
Kamailio's `max_contacts` does. The 200 to a REGISTER lists them all."""
MAX_CONTACT_LENGTH = 1024
"""Characters of one Contact a REGISTER may bind (longer: 400)."""


@dataclass(frozen=True, slots=True)
class Send:
    """One SIP message to send over one flow."""

    message: bytes
    flow_id: int
    binary: bool | None = None
    """The frame type; None chooses by content (RFC 7118 section 4.2)."""


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered Contact of an address of record, reached over `flow_id`."""

    flow_id: int
    contact: SipUri
    expires_at: float
    params: Params = ()
    """The Contact's header parameters but `expires` (`reg-id`, `+sip.instance`...), echoed in the 200."""


@dataclass(frozen=True, slots=True)
class Counters:
    """Totals since the registrar started, for a status line."""

    received: int = 0
    replies: int = 0
    """Responses generated here (200 to REGISTER and OPTIONS, 4xx)."""
    relayed_requests: int = 0
    relayed_responses: int = 0
    dropped_malformed: int = 0
    """Messages that do not parse and could not be answered with 400."""
    dropped_acks: int = 0
    """ACKs that go nowhere (ACKs are never answered)."""
    dropped_responses: int = 0
    """Responses not to us, to an unknown or expired branch, from another flow than the one the
    request went to, or whose origin flow is gone."""
    evicted_bindings: int = 0
    evicted_branches: int = 0


@dataclass(frozen=True, slots=True)
class _Branch:
    origin: int
    target: int
    uri: str
    deadline: float
    final: bool = False


def _digest(*parts: object) -> str:
    return hashlib.blake2s("\x00".join(map(str, parts)).encode(), digest_size=10).hexdigest()


def _aor(uri: SipUri) -> str:
    return f"{uri.user}@{uri.host_text.lower()}"


def _contact_key(uri: SipUri) -> str:
    # Parameters are left out: JsSIP registers `...;transport=ws` and puts `...;transport=ws;ob`
    # in its INVITE's Contact, the URI its peer then sends in-dialog requests to.
    return f"{uri.user or ''}@{uri.host_text.lower()}:{uri.port or ''}"


def _wire(message: SipMessage) -> bytes | None:
    """`message` as bytes, or None when our own parser (and a peer with our limits) would refuse it."""
    if len(message.headers) > MAX_HEADER_FIELDS:
        return None
    data = message.serialize()
    return data if len(data) <= MAX_MESSAGE_SIZE else None


def _printable(text: str) -> str:
    return "".join(char if " " <= char <= "~" else "?" for char in text[:120])


class Registrar:
    """A registrar and relay for SIP user agents that sit behind WebSocket flows (browsers).

    Feed it every SIP message with the id of the flow (connection) it came over; it returns
    what to send where. It reads no clock: `now` is the caller's monotonic time in seconds.

    - REGISTER binds the To address of record (`user@host`) to each Contact over that flow.
      One AOR may have several Contacts (tabs, devices); requests go to the newest live one
      (no forking). The 200 lists every binding with `;expires=N`, plus `Expires`.
    - Requests to a registered user (or in-dialog to a registered Contact) are relayed over
      the callee's flow with our Via on top, responses come back over the caller's flow.
      A branch is forgotten `BRANCH_LINGER` seconds after its first final response (so 2xx
      retransmissions and the ACK of a non-2xx still pass), or `BRANCH_TIMEOUT` after the
      request when none comes.
    - Memory is bounded: at most `max_bindings` bindings and `max_branches` remembered
      branches; past that the least recently refreshed binding, or the oldest branch, goes.
      Expired entries are dropped lazily. Flow ids must not be reused (the adapters' are not).
    - There is no authentication: anyone who reaches the listener may register any AOR.
    """

    def __init__(
        self,
        domain: str | None,
        via_host: str,
        default_expires: int = 600,
        max_expires: int = 3600,
        *,
        max_bindings: int = 10_000,
        max_branches: int = 10_000,
    ) -> None:
        """`domain`: the only domain registered (None: any). `via_host`: `host[:port]` for our
        Via and Record-Route (an IPv6 literal with or without brackets). Expires: default and
        cap in seconds. Raises ValueError."""
        if via_host.count(":") > 1 and not via_host.startswith("["):
            via_host = f"[{via_host}]"
        try:
            self._via = parse_uri(f"sip:{via_host}")
            self._domain = None if domain is None else parse_uri(f"sip:{domain}").host_text.lower()
        except SipParseError as error:
            raise ValueError(f"invalid via_host or domain: {error.reason}") from None
        if self._via.params or self._via.headers is not None or self._via.user is not None:
            raise ValueError("via_host is host[:port]")
        if min(default_expires, max_expires, max_bindings, max_branches) <= 0:
            raise ValueError("expires and limits must be positive")
        self._via_host = via_host
        self._default_expires = min(default_expires, max_expires)
        self._max_expires = max_expires
        self._max_bindings = max_bindings
        self._max_branches = max_branches
        self._table: dict[tuple[str, str], Binding] = {}  # (AOR, contact key), oldest refresh first
        self._by_aor: dict[str, dict[str, None]] = {}  # AOR -> contact keys, oldest first
        self._by_contact: dict[str, str] = {}  # contact key -> AOR
        self._branches: dict[tuple[str, str], _Branch] = {}  # (branch, method), oldest first
        self._live: set[int] = set()  # flows heard from and not closed
        self._counts = dict.fromkeys((f.name for f in fields(Counters)), 0)

    @property
    def bindings(self) -> Mapping[str, tuple[Binding, ...]]:
        """A snapshot: AOR -> its bindings, newest first (expired ones may linger until used)."""
        return MappingProxyType(
            {
                aor: tuple(self._table[aor, key] for key in reversed(keys))
                for aor, keys in self._by_aor.items()
            }
        )

    @property
    def counters(self) -> Counters:
        """A snapshot of the totals."""
        return Counters(**self._counts)

    @property
    def branch_count(self) -> int:
        """How many relayed requests' branches are remembered."""
        return len(self._branches)

    def flow_closed(self, flow_id: int) -> None:
        """A flow is gone: its bindings stay until they expire (requests to them get 480), and
        responses for requests that came over it are dropped."""
        self._live.discard(flow_id)

    def purge(self, now: float) -> None:
        """Drop every expired binding and branch now, rather than when next met."""
        for (aor, key), binding in list(self._table.items()):
            if binding.expires_at <= now:
                self._unbind(aor, key)
        self._branches = {k: v for k, v in self._branches.items() if v.deadline >= now}

    def received(self, message: bytes, flow_id: int, now: float, binary: bool = False) -> list[Send]:
        """Handle one SIP message that came over `flow_id` (in a binary frame when `binary`, which
        changes nothing here); returns what to send. Never raises."""
        self._counts["received"] += 1
        self._live.add(flow_id)
        try:
            msg = parse_message(message)
        except SipParseError as error:
            rescued = salvage(message)
            if rescued is None:
                self._counts["dropped_malformed"] += 1
                return []
            return self._bad_request(rescued, error.reason, flow_id)
        if msg.method is None:
            return self._response(msg, flow_id, now)
        try:
            return self._request(msg, flow_id, now)
        except SipParseError as error:
            return self._bad_request(msg, error.reason, flow_id)

    # Requests

    def _request(self, msg: SipMessage, flow: int, now: float) -> list[Send]:
        via = msg.top_via()
        if via.branch is None:
            raise SipParseError("Via has no branch")
        if msg.cseq()[1] != msg.method:
            raise SipParseError("CSeq method differs from the request's")
        msg.call_id()
        msg.from_addr()
        msg.max_forwards()
        to = msg.to_addr()
        if msg.method == "REGISTER":
            return self._register(msg, flow, now)
        branch = "z9hG4bK" + _digest(flow, via.host, via.port, via.branch)
        routes = msg.get_all("Route")
        route = parse_name_addr(routes[0]).uri if routes else None
        if route is not None and route.user is None and self._is_us(route.host, route.port):
            msg = msg.without_first("Route")
        if msg.method in ("CANCEL", "ACK"):
            invite = self._branches.get((branch, "INVITE"))
            if invite is not None and invite.deadline >= now:
                return self._relay(msg, flow, invite.target, invite.uri, branch, to.tag, now)
            if msg.method == "CANCEL":
                return self._reply(msg, flow, 481, "Call/Transaction Does Not Exist")
        assert msg.uri is not None
        if msg.uri.partition(":")[0].lower() not in ("sip", "sips"):
            return self._reply(msg, flow, 416, "Unsupported URI Scheme")
        uri = parse_uri(msg.uri)
        binding = self._contact_binding(uri, now)
        if binding is not None:
            return self._relay(msg, flow, binding.flow_id, msg.uri, branch, to.tag, now)
        if uri.user is None:
            if msg.method == "OPTIONS":
                return self._options(msg, flow)
            return self._reply(msg, flow, 405, "Method Not Allowed", Header("Allow", ALLOW))
        bindings = self._lookup(_aor(uri), now)
        if not bindings:
            if msg.method == "OPTIONS" and self._is_us(uri.host, uri.port):
                return self._options(msg, flow)
            return self._reply(msg, flow, 404, "Not Found")
        live = next((b for b in bindings if b.flow_id in self._live), bindings[0])
        return self._relay(msg, flow, live.flow_id, str(live.contact), branch, to.tag, now)

    def _relay(
        self, msg: SipMessage, origin: int, target: int, uri: str, branch: str, to_tag: str | None, now: float
    ) -> list[Send]:
        hops = msg.max_forwards()
        hops = 70 if hops is None else hops
        if hops <= 0:
            return self._reply(msg, origin, 483, "Too Many Hops")
        if target not in self._live:
            return self._reply(msg, origin, 480, "Temporarily Unavailable")
        out = msg.with_uri(uri).with_header("Max-Forwards", str(hops - 1))
        if msg.method in _DIALOG_CREATING and to_tag is None:
            out = out.with_first("Record-Route", f"<sip:{self._via_host};transport=ws;lr>")
        out = out.with_first("Via", f"SIP/2.0/WSS {self._via_host};branch={branch}")
        wire = _wire(out)
        if wire is None:  # our Via (and Record-Route) took it past what a peer accepts
            return self._reply(msg, origin, 513, "Message Too Large")
        assert msg.method is not None
        if msg.method != "ACK":
            self._remember((branch, msg.method), _Branch(origin, target, uri, now + BRANCH_TIMEOUT), now)
        self._counts["relayed_requests"] += 1
        return [Send(wire, target)]

    def _register(self, msg: SipMessage, flow: int, now: float) -> list[Send]:
        to_uri = msg.to_addr().uri
        if to_uri.user is None:
            raise SipParseError("To has no user part")
        if self._domain is not None and to_uri.host_text.lower() != self._domain:
            return self._reply(msg, flow, 404, "Not Found")
        aor, expires = _aor(to_uri), msg.expires()
        granted: int | None = None
        if "*" in msg.get_all("Contact"):
            if msg.get_all("Contact") != ("*",) or expires != 0:
                raise SipParseError("Contact * needs Expires: 0 and no other Contact")
            for key in list(self._by_aor.get(aor, ())):
                self._unbind(aor, key)
            granted = 0
        else:
            plan = []
            for contact in msg.contacts():
                if len(str(contact)) > MAX_CONTACT_LENGTH:
                    raise SipParseError(f"a Contact over {MAX_CONTACT_LENGTH} characters")
                text = contact.param("expires")
                seconds = expires if text is None else delta_seconds(text)
                seconds = self._default_expires if seconds is None else min(seconds, self._max_expires)
                params = tuple(p for p in contact.params if p[0].lower() != "expires")
                plan.append((_contact_key(contact.uri), Binding(flow, contact.uri, now + seconds, params)))
            for key, binding in plan:
                if binding.expires_at > now:
                    self._bind(aor, key, binding)
                elif (aor, key) in self._table:
                    self._unbind(aor, key)
            granted = round(plan[0][1].expires_at - now) if plan else None
        extra = [
            Header(
                "Contact",
                str(NameAddr(None, b.contact, (*b.params, ("expires", str(round(b.expires_at - now)))))),
            )
            for b in self._lookup(aor, now)
        ]
        if granted is not None:
            extra.append(Header("Expires", str(granted)))
        return self._reply(msg, flow, 200, "OK", *extra)

    def _options(self, msg: SipMessage, flow: int) -> list[Send]:
        return self._reply(
            msg, flow, 200, "OK", Header("Allow", ALLOW), Header("Accept", "*/*"), Header("Supported", "")
        )

    def _bad_request(self, msg: SipMessage, reason: str, flow: int) -> list[Send]:
        try:
            msg.top_via()
            msg.cseq()
            msg.call_id()
        except SipParseError:
            self._counts["dropped_malformed"] += 1
            return []
        return self._reply(msg, flow, 400, f"Bad Request ({_printable(reason)})")

    def _reply(self, msg: SipMessage, flow: int, status: int, reason: str, *headers: Header) -> list[Send]:
        if msg.method == "ACK":
            self._counts["dropped_acks"] += 1
            return []
        # The same tag for a retransmission: derived from what identifies the request.
        tag = _digest(msg.get("Call-ID"), msg.get("From"), msg.get("Via"), msg.get("CSeq"))[:12]
        wire = _wire(response_to(msg, status, reason, headers, tag))
        if wire is None:
            self._counts["dropped_malformed"] += 1
            return []
        self._counts["replies"] += 1
        return [Send(wire, flow)]

    def _is_us(self, host: str, port: int | None) -> bool:
        return host.lower() == self._via.host.lower() and port == self._via.port

    # Responses

    def _response(self, msg: SipMessage, flow: int, now: float) -> list[Send]:
        key, entry = ("", ""), None
        try:
            via, (_, method) = msg.top_via(), msg.cseq()
            if via.branch is not None and self._is_us(via.host, via.port):
                key = (via.branch, method)
                entry = self._branches.get(key)
        except SipParseError:
            pass
        rest = msg.without_first("Via")
        if entry is None or entry.target != flow or entry.deadline < now or entry.origin not in self._live:
            entry = None
        if entry is None or rest.get("Via") is None:
            self._counts["dropped_responses"] += 1
            return []
        assert msg.status is not None
        wire = _wire(rest)
        if wire is None:
            self._counts["dropped_responses"] += 1
            return []
        if msg.status >= 200 and not entry.final:
            self._branches[key] = replace(entry, deadline=now + BRANCH_LINGER, final=True)
        self._counts["relayed_responses"] += 1
        return [Send(wire, entry.origin)]

    # Tables

    def _remember(self, key: tuple[str, str], entry: _Branch, now: float) -> None:
        if key in self._branches:
            return
        while self._branches:
            oldest, first = next(iter(self._branches.items()))
            if first.deadline >= now and len(self._branches) < self._max_branches:
                break
            if first.deadline >= now:
                self._counts["evicted_branches"] += 1
            del self._branches[oldest]
        self._branches[key] = entry

    def _lookup(self, aor: str, now: float) -> list[Binding]:
        """The AOR's bindings, newest first, dropping expired ones."""
        found = []
        for key in reversed(list(self._by_aor.get(aor, ()))):
            binding = self._table[aor, key]
            if binding.expires_at <= now:
                self._unbind(aor, key)
            else:
                found.append(binding)
        return found

    def _contact_binding(self, uri: SipUri, now: float) -> Binding | None:
        key = _contact_key(uri)
        aor = self._by_contact.get(key)
        if aor is None:
            return None
        binding = self._table[aor, key]
        if binding.expires_at <= now:
            self._unbind(aor, key)
            return None
        return binding

    def _bind(self, aor: str, key: str, binding: Binding) -> None:
        if self._table.pop((aor, key), None) is None:
            while len(self._table) >= self._max_bindings:
                self._counts["evicted_bindings"] += 1
                self._unbind(*next(iter(self._table)))
        self._table[aor, key] = binding
        keys = self._by_aor.setdefault(aor, {})
        keys.pop(key, None)
        keys[key] = None
        self._by_contact[key] = aor
        while len(keys) > MAX_CONTACTS:  # one AOR's 200 lists them all: keep it small
            self._counts["evicted_bindings"] += 1
            self._unbind(aor, next(iter(keys)))

    def _unbind(self, aor: str, key: str) -> None:
        del self._table[aor, key]
        keys = self._by_aor[aor]
        del keys[key]
        if not keys:
            del self._by_aor[aor]
        if self._by_contact.get(key) == aor:
            del self._by_contact[key]
