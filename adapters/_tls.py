"""`ssl.SSLContext`s from `TLSDomain`s: one context per domain, built once, shared by every connection."""

from __future__ import annotations

import contextlib
import re
import ssl
import weakref
from collections.abc import Iterable

from sansio_wss import Config, TlsDetails
from sansio_wss.sip import WsUri, parse_ws_uri
from sansio_wss.table import normalize_address
from sansio_wss.tls import TLSDomain, choose_client_domain, choose_server_domain
from sansio_wss.x509 import certificate_names

__all__ = ["TLSContexts", "client_target", "context_for", "tls_details"]

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
# What each context built from a domain says about us: (domain name, our subject, our issuer).
_OURS: weakref.WeakKeyDictionary[ssl.SSLContext, tuple[str, str | None, str | None]] = (
    weakref.WeakKeyDictionary()
)

_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def context_for(domain: TLSDomain) -> ssl.SSLContext:
    """An SSLContext that does what `domain` says, and never verifies less than it asks."""
    server = domain.side == "server"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    if domain.min_version is not None:
        context.minimum_version = _VERSIONS[domain.min_version]
    if domain.max_version is not None:
        context.maximum_version = _VERSIONS[domain.max_version]
    if domain.certificate:
        context.load_cert_chain(domain.certificate, domain.private_key)
    if domain.ciphers:
        context.set_ciphers(domain.ciphers)
    if server:
        if domain.ca_list:
            context.load_verify_locations(domain.ca_list)
        if domain.require_cert:
            context.verify_mode = ssl.CERT_REQUIRED
        elif domain.verify_cert and domain.ca_list:
            context.verify_mode = ssl.CERT_OPTIONAL
        else:
            context.verify_mode = ssl.CERT_NONE
    elif domain.verify_cert:
        if domain.ca_list:
            context.load_verify_locations(domain.ca_list)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    # WebSocket has its own closing handshake; a peer that skips close_notify
    # (OpenSIPS and Kamailio do) is not an attack on us.
    context.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    _OURS[context] = (domain.name, *_own_names(domain.certificate))
    return context


def _own_names(path: str | None) -> tuple[str | None, str | None]:
    """Subject and issuer of the first certificate in a PEM file (the one TLS presents)."""
    if path is None:
        return None, None
    with open(path, "rb") as file:
        found = _PEM.search(file.read())
    return (None, None) if found is None else _names(ssl.PEM_cert_to_DER_cert(found.group().decode("ascii")))


def _names(der: bytes | None) -> tuple[str | None, str | None]:
    if der is not None:
        with contextlib.suppress(ValueError):
            return certificate_names(der)
    return None, None


def tls_details(tls: ssl.SSLObject) -> TlsDetails:
    """What a finished TLS handshake established, for tracing: version, cipher, and both
    certificates' subject and issuer, labelled by TLS role (the client's, the server's)."""
    domain, own_subject, own_issuer = _OURS.get(tls.context, (None, None, None))
    peer_subject, peer_issuer = _names(tls.getpeercert(binary_form=True))
    cipher = tls.cipher()
    if tls.server_side:
        client, server = (peer_subject, peer_issuer), (own_subject, own_issuer)
    else:
        client, server = (own_subject, own_issuer), (peer_subject, peer_issuer)
    return TlsDetails(
        version=tls.version(),
        cipher=cipher[0] if cipher else None,
        client_subject=client[0],
        client_issuer=client[1],
        server_subject=server[0],
        server_issuer=server[1],
        domain=domain,
    )


def client_target(
    uri: str, config: Config, tls: TLSDomain | ssl.SSLContext | None
) -> tuple[WsUri, ssl.SSLContext]:
    """Where `connect(uri)` goes and with which TLS context: the domain's, the one given,
    or the system's CAs (verifying the server's name). Only `wss://` is served."""
    target = parse_ws_uri(uri, config.port, config.resource)
    if not target.secure:
        raise ValueError(f"{uri!r}: the adapters speak wss:// only")
    if isinstance(tls, ssl.SSLContext):
        return target, tls
    return target, context_for(tls) if tls is not None else ssl.create_default_context()


class TLSContexts:
    """The contexts of a set of domains, with the choice rules of `sansio_wss.tls`.

    Server side: `server_context(listener)` is the context to accept with on that
    listener; its SNI callback moves each handshake to the domain chosen by the
    listener and the name the client sent.
    """

    __slots__ = ("_contexts", "_domains", "_listeners")

    def __init__(self, domains: Iterable[TLSDomain]) -> None:
        self._domains = tuple(domains)
        names = [d.name for d in self._domains]
        if len(set(names)) != len(names):
            raise ValueError("TLS domain names must be unique")
        self._contexts = {d.name: context_for(d) for d in self._domains}
        self._listeners: dict[tuple[str, int], ssl.SSLContext | None] = {}

    @property
    def domains(self) -> tuple[TLSDomain, ...]:
        """The domains, in the order given."""
        return self._domains

    def server_context(self, listener: tuple[str, int]) -> ssl.SSLContext | None:
        """The context to accept with on `listener`, or None when no server domain serves it."""
        key = normalize_address(listener)
        if key not in self._listeners:
            self._listeners[key] = self._listener_context(key)
        return self._listeners[key]

    def client_context(
        self, address: tuple[str, int], host: str | None
    ) -> tuple[TLSDomain, ssl.SSLContext] | None:
        """The client domain and its context for a destination, or None."""
        domain = choose_client_domain(self._domains, address, host)
        return None if domain is None else (domain, self._contexts[domain.name])

    def _listener_context(self, listener: tuple[str, int]) -> ssl.SSLContext | None:
        first = choose_server_domain(self._domains, listener, None)
        if first is None:  # only SNI-named domains: start with one, the callback picks
            first = next(
                (
                    d
                    for d in self._domains
                    if d.side == "server" and (not d.addresses or listener in d.addresses)
                ),
                None,
            )
        if first is None:
            return None
        context = context_for(first)

        def on_sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
            domain = choose_server_domain(self._domains, listener, name)
            if domain is not None:
                sock.context = self._contexts[domain.name]

        context.sni_callback = on_sni
        return context
