"""Adapters that run the sans-IO core over sockets and TLS: `.asyncio`, `.trio` (its extra), `.sync`;
and the HEP collector every adapter's tracing can ship its packets to."""

from ._collector import CollectorStats, HepCollector, check_destination
from ._driver import TLSInfo

__all__ = ["CollectorStats", "HepCollector", "TLSInfo", "check_destination"]
