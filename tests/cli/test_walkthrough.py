"""`python -m sansio_wss walkthrough` prints the core's exchange end to end."""

from __future__ import annotations

import pytest

from sansio_wss.cli.walkthrough import main


def test_demo_prints_the_whole_exchange(capsys: pytest.CaptureFixture[str]) -> None:
    main()
    out = capsys.readouterr().out
    for needle in (
        "-> Opened",
        "-> SipMessageReceived",
        "CrlfKeepalive(ping=True)",
        "keepalive Ping: 2 bytes",
        "-> PongReceived",
        "cause=<Cause.PEER_CLOSED",
        "client after the server's EOF: CLOSE",
    ):
        assert needle in out
