"""TLS domains as OpenSIPS's tls_mgm describes them, and the rules that pick one: pure data.

The adapters turn a `TLSDomain` into an `ssl.SSLContext`; the core only
describes and selects. A server domain is chosen by the listener a
connection arrived on, then by the SNI name the client sent; a client domain
by the destination's address or name. A domain with no match criteria is the
default for its side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from .errors import ConfigError
from .table import Address, normalize_address

__all__ = ["TLS_VERSIONS", "TLSDomain", "choose_client_domain", "choose_server_domain", "parse_tls_method"]

TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
"""Protocol versions in order; `TLSDomain.min_version` and `max_version` name one of them."""

# OpenSIPS tls_mgm `tls_method` words: one version, or a range "A-B", "A-" or "-B".
_METHOD_WORDS = {
    "tlsv1": "TLSv1",
    "tlsv1_1": "TLSv1.1",
    "tlsv1_2": "TLSv1.2",
    "tlsv1_3": "TLSv1.3",
    "sslv23": None,
    "any": None,
}


def parse_tls_method(method: str) -> tuple[str | None, str | None]:
    """(min_version, max_version) from an OpenSIPS `tls_method` such as `TLSv1_2`,
    `TLSv1_2-TLSv1_3`, `TLSv1_2-` or `SSLv23` (any); None means unbounded.

    A single version means exactly that version, as in tls_mgm. Raises ConfigError.
    """
    text = method.strip().lower()
    low, sep, high = text.partition("-")
    try:
        lo = _METHOD_WORDS[low] if low else None
        hi = _METHOD_WORDS[high] if high else None
    except KeyError:
        raise ConfigError(f"unknown tls_method {method!r}") from None
    if not sep:
        hi = lo
    if lo is not None and hi is not None and TLS_VERSIONS.index(lo) > TLS_VERSIONS.index(hi):
        raise ConfigError(f"tls_method {method!r}: the range is empty")
    return lo, hi


_NAME = re.compile(r"(\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?")


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSDomain:
    """One tls_mgm domain: who we are and whom we trust, for one side.

    Paths point to PEM files. Each field names its tls_mgm parameter.
    """

    name: str
    """The domain's name (tls_mgm `server_domain` / `client_domain`); used by the
    connection table's `cert_check_on_conn_reuse` rule."""

    side: Literal["server", "client"]
    """Whether the domain serves accepted connections or outbound ones."""

    certificate: str | None = None
    """Our certificate chain (tls_mgm `certificate`). Required on a server domain."""

    private_key: str | None = None
    """Its private key (tls_mgm `private_key`); None when it is in the certificate file."""

    ca_list: str | None = None
    """CA certificates to verify the peer with (tls_mgm `ca_list`); None: the system's
    default CAs on a client domain, no client-certificate CAs on a server domain."""

    min_version: str | None = "TLSv1.2"
    """Lowest protocol version (tls_mgm `tls_method`, see `from_tls_method`)."""

    max_version: str | None = None
    """Highest protocol version; None: whatever the TLS library supports."""

    verify_cert: bool = True
    """Verify the peer's certificate (tls_mgm `verify_cert`, default 1). A client
    checks the server's chain and host name; a server checks client certificates
    when they are sent."""

    require_cert: bool = False
    """Server: refuse clients without a certificate (tls_mgm `require_cert`, default 0)."""

    ciphers: str | None = None
    """OpenSSL cipher list for TLS 1.2 and below (tls_mgm `ciphers_list`); None: the
    library's secure default."""

    addresses: frozenset[Address] = field(default_factory=frozenset)
    """Server: listeners (ip, port) this domain serves; client: destinations (ip, port)
    it is for (tls_mgm `match_ip_address`). Empty: any."""

    names: frozenset[str] = field(default_factory=frozenset)
    """Server: SNI names; client: destination host names (tls_mgm `match_sip_domain`).
    `*.example.com` matches one label. Empty: any."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.isprintable():
            raise ConfigError("TLSDomain.name: a printable, non-empty name")
        if self.side not in ("server", "client"):
            raise ConfigError(f"TLSDomain.side: 'server' or 'client', not {self.side!r}")
        if self.side == "server" and not self.certificate:
            raise ConfigError(f"TLS server domain {self.name!r} needs a certificate")
        for version in (self.min_version, self.max_version):
            if version is not None and version not in TLS_VERSIONS:
                raise ConfigError(f"TLS version {version!r}: one of {', '.join(TLS_VERSIONS)}")
        if (
            self.min_version is not None
            and self.max_version is not None
            and TLS_VERSIONS.index(self.min_version) > TLS_VERSIONS.index(self.max_version)
        ):
            raise ConfigError(f"TLS domain {self.name!r}: min_version above max_version")
        if self.require_cert and self.side == "client":
            raise ConfigError("require_cert applies to server domains")
        try:
            addresses = frozenset(normalize_address(a) for a in self.addresses)
        except (ValueError, TypeError, IndexError) as exc:
            raise ConfigError(f"TLS domain {self.name!r}: invalid address ({exc})") from None
        object.__setattr__(self, "addresses", addresses)
        names: object = self.names
        if isinstance(names, str):
            raise ConfigError("TLSDomain.names: a set of names, not one string")
        lowered = frozenset(str(n).lower().rstrip(".") for n in self.names)
        for name in lowered:
            if _NAME.fullmatch(name) is None:
                raise ConfigError(f"TLS domain {self.name!r}: invalid name {name!r}")
        object.__setattr__(self, "names", lowered)

    @classmethod
    def from_tls_method(cls, tls_method: str, **fields: object) -> TLSDomain:
        """A domain whose version range comes from an OpenSIPS `tls_method` string."""
        low, high = parse_tls_method(tls_method)
        return cls(min_version=low, max_version=high, **fields)  # type: ignore[arg-type]

    def matches_name(self, host: str | None) -> bool:
        """Does `host` match `names` (always true when `names` is empty)?"""
        if not self.names:
            return True
        if host is None:
            return False
        host = host.lower().rstrip(".")
        if host in self.names:
            return True
        label, _, parent = host.partition(".")
        return bool(label and parent) and f"*.{parent}" in self.names


def _choose(domains: Iterable[TLSDomain], side: str, address: Address, host: str | None) -> TLSDomain | None:
    """Most specific first: address and name, then address only, then name only, then a default."""
    ranked: list[tuple[int, int, TLSDomain]] = []
    for order, domain in enumerate(domains):
        if domain.side != side:
            continue
        by_address = address in domain.addresses
        if domain.addresses and not by_address:
            continue
        if not domain.matches_name(host):
            continue
        score = (2 if by_address else 0) + (1 if domain.names else 0)
        ranked.append((-score, order, domain))
    return min(ranked, key=lambda item: item[:2])[2] if ranked else None


def choose_server_domain(
    domains: Iterable[TLSDomain], listener: tuple[str, int], sni: str | None
) -> TLSDomain | None:
    """The server domain for a connection on `listener` whose client sent `sni` (or none)."""
    return _choose(domains, "server", normalize_address(listener), sni)


def choose_client_domain(
    domains: Iterable[TLSDomain], address: tuple[str, int], host: str | None = None
) -> TLSDomain | None:
    """The client domain for a destination: its resolved `address` and the `host` name dialled."""
    return _choose(domains, "client", normalize_address(address), host)
