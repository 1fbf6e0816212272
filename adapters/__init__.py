"""Adapters that drive the sans-IO core over real sockets (asyncio, trio, blocking): see issue #3."""
