"""`Listener`: where a server listens, with TLS (`wss`) or without (`ws`), and the proxies it trusts."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config
from .errors import ConfigError
from .proxy import ProxyPolicy
from .sip import parse_ws_uri

__all__ = ["Listener"]


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening address and how its connections are served.

    `secure` False serves plain `ws://` (OpenSIPS's `proto_ws`): for a proxy in front that
    ends TLS itself, on loopback or a private network, never on the internet. `proxy` says
    which peers are proxies and what of theirs to believe (PROXY header, `Forwarded`).
    """

    host: str
    """An IP address or a name to resolve; `""` or `0.0.0.0` / `::` for every address."""

    port: int | None = None
    """None: `Config.port` for `wss`, 80 for `ws`; 0 for any free port."""

    secure: bool = True
    """TLS (`wss`), the default; False for plain `ws`."""

    proxy: ProxyPolicy | None = None
    """The proxies in front of this listener; None believes none."""

    def __post_init__(self) -> None:
        if not isinstance(self.host, str):
            raise ConfigError(f"Listener.host: a string, not {self.host!r}")
        port = self.port
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535
        ):
            raise ConfigError(f"Listener.port: 0 to 65535 or None, not {port!r}")
        if self.proxy is not None and not isinstance(self.proxy, ProxyPolicy):
            raise ConfigError("Listener.proxy: a ProxyPolicy")

    @classmethod
    def parse(cls, uri: str, *, proxy: ProxyPolicy | None = None) -> Listener:
        """`wss://HOST:PORT` or `ws://HOST:PORT` (IPv6 in brackets; port 0 for any); without a
        port, 443 or 80. Raises ConfigError for anything else (a path, user info, a query)."""
        try:
            target = parse_ws_uri(uri, 443, "/", any_port=True)
        except ValueError as exc:
            raise ConfigError(f"listener {uri!r}: {exc}") from None
        if target.resource != "/":
            raise ConfigError(f"listener {uri!r}: no path (a listener serves every resource)")
        return cls(target.host, target.port, target.secure, proxy)

    @property
    def scheme(self) -> str:
        """`wss` or `ws`."""
        return "wss" if self.secure else "ws"

    def port_with(self, config: Config) -> int:
        """The port to bind: the one given, else `config.port` (wss) or 80 (ws)."""
        if self.port is not None:
            return self.port
        return config.port if self.secure else 80
