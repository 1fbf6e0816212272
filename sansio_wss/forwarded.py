"""The client a chain of trusted HTTP proxies names in `Forwarded` (RFC 7239) or `X-Forwarded-For`.

Each proxy appends the address it received the request from, so the list is read from the
right: while the hop that wrote an entry is trusted, the entry is believed and becomes the
next hop. The first untrusted hop is the client. An entry that names no usable address
(`unknown`, an obfuscated `_name`, a malformed value) stops the walk at the last proxy.
"""

from __future__ import annotations

import ipaddress

from ._lists import split_list, unquote
from .events import Headers
from .proxy import ProxyPolicy
from .table import Address, ip_text

__all__ = ["forwarded_client"]


def forwarded_client(headers: Headers, peer: Address, policy: ProxyPolicy) -> Address | None:
    """The client's (IP, port) per the policy's header (port 0 when the entry names none), or
    None when the policy reads no header, the peer is not trusted, or no entry moves the client
    off the peer."""
    name = policy.forwarded
    if name is None or not policy.trusts(peer[0]):
        return None
    values = [value for field, value in headers if field.lower() == name]
    entries = _forwarded_for(values) if name == "forwarded" else _x_forwarded_for(values)
    client = peer
    for entry in reversed(entries):
        if not policy.trusts(client[0]) or entry is None:
            break
        client = entry
    return None if client == peer else client


def _x_forwarded_for(values: list[str]) -> list[Address | None]:
    """Every hop of every `X-Forwarded-For` field, in order: `IP`, `IP:port` or `[IPv6]:port`."""
    entries: list[Address | None] = []
    for value in values:
        entries += [_node(part.strip(" \t")) for part in value.split(",") if part.strip(" \t")]
    return entries


def _forwarded_for(values: list[str]) -> list[Address | None]:
    """The `for=` node of every element of every `Forwarded` field, in order (None for an
    element without one, or one that is malformed)."""
    entries: list[Address | None] = []
    for value in values:
        elements = split_list(value, ",")
        if elements is None:
            return [None]  # the list's meaning is unknown: believe none of it
        for element in elements:
            if element.strip(" \t"):
                entries.append(_forwarded_element(element))
    return entries


def _forwarded_element(element: str) -> Address | None:
    pairs = split_list(element, ";")
    node = None
    for pair in pairs or ():
        key, sep, value = pair.strip(" \t").partition("=")
        if key.lower() == "for" and sep:
            if node is not None:
                return None  # two `for` in one element
            node = unquote(value)
    return None if node is None else _node(node, bare_ipv6=False)


def _node(text: str, *, bare_ipv6: bool = True) -> Address | None:
    """`IP`, `IP:port`, `[IPv6]` or `[IPv6]:port` (RFC 7239 section 6), and for
    `X-Forwarded-For` a bare IPv6 address, as some proxies write it; None otherwise."""
    port = 0
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        if rest:
            port = _port(rest[1:])
        if ":" not in host:
            return None
    elif text.count(":") == 1:
        host, _, rest = text.partition(":")
        port = _port(rest)
    elif bare_ipv6 or ":" not in text:
        host = text
    else:
        return None
    if port < 0 or "%" in host:
        return None
    try:
        return ip_text(ipaddress.ip_address(host)), port
    except ValueError:
        return None


def _port(text: str) -> int:
    """A port, or -1 for anything else (an obfuscated `_port` among them)."""
    if text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 65535:
        return int(text)
    return -1
