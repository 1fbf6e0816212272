"""`ConnectionTable`: open connections by remote address and local listener, with OpenSIPS's reuse rules.

Pure bookkeeping for the transport level of the adapters (and any integrator
with its own loop): the adapter resolves names and owns the sockets; the table
decides which existing connection a new send may reuse.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Address", "ConnectionTable", "Flow", "ip_text", "normalize_address"]

T = TypeVar("T")

Address = tuple[str, int]
"""(IP literal, port); IPv6 without brackets, in compressed form."""


def ip_text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address in canonical text form, the same on every Python: RFC 5952 for IPv6, with an
    IPv4-mapped one as `::ffff:192.0.2.7` (before 3.13, `str()` writes `::ffff:c000:207`)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def normalize_address(address: tuple[str, int]) -> Address:
    """`address` with its IP in canonical text form (so `::0001` and `::1` match); raises ValueError."""
    host, port = address[0], address[1]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
        raise ValueError(f"invalid port {port!r}")
    return ip_text(ipaddress.ip_address(host.split("%", 1)[0])), port


@dataclass(frozen=True, slots=True)
class Flow(Generic[T]):
    """One entry: a connection, where it goes, and how it was made.

    `flow_id` is unique for the table's life and is what an application keeps
    to send over this exact connection (RFC 5626 flows: a browser can be
    reached no other way). `tls_domain` is the name of the TLS client domain an
    outbound connection was made with (None for accepted ones).
    """

    flow_id: int
    connection: T
    remote: Address
    listener: Address
    accepted: bool
    tls_domain: str | None


class ConnectionTable(Generic[T]):
    """Connections by flow id and by (remote address, local listener)."""

    __slots__ = ("_by_id", "_by_remote", "_next_id")

    def __init__(self) -> None:
        self._by_id: dict[int, Flow[T]] = {}
        self._by_remote: dict[Address, list[int]] = {}
        self._next_id = 1

    def add(
        self,
        connection: T,
        remote: tuple[str, int],
        listener: tuple[str, int],
        *,
        accepted: bool,
        tls_domain: str | None = None,
    ) -> Flow[T]:
        """Record a connection; returns its flow."""
        flow = Flow(
            self._next_id,
            connection,
            normalize_address(remote),
            normalize_address(listener),
            accepted,
            None if accepted else tls_domain,
        )
        self._next_id += 1
        self._by_id[flow.flow_id] = flow
        self._by_remote.setdefault(flow.remote, []).append(flow.flow_id)
        return flow

    def remove(self, flow_id: int) -> Flow[T] | None:
        """Forget a connection (closed or failed); returns its flow, None if unknown."""
        flow = self._by_id.pop(flow_id, None)
        if flow is not None:
            ids = self._by_remote[flow.remote]
            ids.remove(flow_id)
            if not ids:
                del self._by_remote[flow.remote]
        return flow

    def get(self, flow_id: int) -> Flow[T] | None:
        """The flow with this id, if it is still open."""
        return self._by_id.get(flow_id)

    def find(
        self,
        remote: tuple[str, int],
        listener: tuple[str, int] | None = None,
        *,
        tls_domain: str | None = None,
        check_domain: bool = False,
    ) -> Flow[T] | None:
        """The connection a send to `remote` may reuse, newest first, or None.

        `listener` restricts the match to connections on that local socket.
        With `check_domain` (OpenSIPS `cert_check_on_conn_reusage`), an outbound
        connection matches only if it was made with `tls_domain`, the client
        domain chosen for this destination; accepted connections always match,
        as in OpenSIPS, and so does everything when no domain was chosen.
        """
        key = normalize_address(remote)
        wanted = None if listener is None else normalize_address(listener)
        for flow_id in reversed(self._by_remote.get(key, ())):
            flow = self._by_id[flow_id]
            if wanted is not None and flow.listener != wanted:
                continue
            if (
                check_domain
                and tls_domain is not None
                and not flow.accepted
                and flow.tls_domain != tls_domain
            ):
                continue
            return flow
        return None

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Flow[T]]:
        return iter(list(self._by_id.values()))
