"""Adapters that run the sans-IO core over sockets and TLS: `.asyncio`, `.trio` (its extra), `.sync`."""

from ._driver import TLSInfo

__all__ = ["TLSInfo"]
