"""`python -m sansio_wss demo` (what `make demo` runs): every step of the transcript, exit 0."""

from __future__ import annotations

import re
import subprocess
import sys


def test_the_demo_runs_through() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sansio_wss", "demo"],
        cwd="/tmp",  # not the source tree, whose sansio_wss/ has no cli/
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stdout
    out = done.stdout
    for user, adapter in (("alice", "asyncio"), ("bob", "trio"), ("carol", "sync")):
        who = f"{user} ({adapter})"
        assert f"{who}: connected: TLSv1.3" in out
        assert re.search(rf"{re.escape(who)}: REGISTER sip:localhost -> 200 OK .*;expires=600", out), out
        assert f"{who}: OPTIONS sip:localhost -> 200 OK" in out
    assert "bob (trio): got MESSAGE from alice: 'hi bob'; answering 200 OK" in out
    assert "alice (asyncio): got MESSAGE from carol: 'hi alice'; answering 200 OK" in out
    assert "alice (asyncio): MESSAGE sip:bob@localhost -> 200 OK" in out
    assert "carol (sync): MESSAGE sip:alice@localhost -> 200 OK" in out
    assert "server: stopped: {'accepted': 3, 'connected': 0, 'open': 0, 'failed': {}" in out
    assert re.search(r"demo done in \d+ ms\n\Z", out), out
