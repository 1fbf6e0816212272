"""Listeners, the same for every adapter: their sockets (trio, blocking), the driver of each
connection they accept, and the warning a plain one on a public address gets."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Iterable

from sansio_wss import Config, Listener, ServerConnection

from ._driver import Driver
from ._tls import TLSContexts

__all__ = ["accept_driver", "as_listener", "listen_sockets", "warn_if_exposed"]


def as_listener(item: Listener | tuple[str, int]) -> Listener:
    """A `Listener` as given, or a `wss` one for a (host, port) pair."""
    return item if isinstance(item, Listener) else Listener(item[0], item[1])


def accept_driver(
    listener: Listener, contexts: TLSContexts, config: Config, local: tuple[str, int], now: float
) -> Driver | None:
    """The driver of a connection accepted at `local` on `listener`: plain, or TLS with the
    context of the domain that serves the listener (None when none does: close the socket)."""
    context = None
    if listener.secure:
        context = contexts.server_context(local)
        if context is None:
            return None
    proxy = listener.proxy
    return Driver(context, ServerConnection(now, config, proxy=proxy), now, proxy=proxy)


def warn_if_exposed(listener: Listener, addresses: Iterable[tuple[str, int]], logger: logging.Logger) -> None:
    """Warn when a plain `ws` listener is bound to an address that is not loopback: what it
    carries (SIP credentials' digests, calls' keys in SDP) crosses the network in clear."""
    if listener.secure:
        return
    for host, port in addresses:
        if not ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
            shown = f"[{host}]" if ":" in host else host
            logger.warning(
                "plain ws:// listener on %s:%s, which is not loopback: SIP crosses the network "
                "unencrypted; put it behind a TLS proxy on a private network",
                shown,
                port,
            )


def listen_sockets(host: str, port: int, backlog: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """Listening, non-blocking sockets for every address `host` resolves to (IPv6 ones are
    IPv6-only). `reuse_port` lets several processes listen on one port (SO_REUSEPORT: the
    kernel spreads connections over them)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
