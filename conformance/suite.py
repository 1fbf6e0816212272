"""The Autobahn testsuite's side: spec files, and `wstest` (Python 2.7) with our three patches."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["ORIGIN", "SUBPROTOCOL", "FuzzingServer", "run_fuzzingclient", "wait_for_port", "write_spec"]

HERE = pathlib.Path(__file__).resolve().parent
ORIGIN = "https://autobahn.test"
SUBPROTOCOL = "sip"

# autobahntestsuite 25.10.1 is Python 2 code, so this launcher is Python 2 too; it is run
# with `python -c`. It works around three flaws of wstest, all of them in fuzzingserver:
# - it binds 0.0.0.0: ours binds 127.0.0.1, and prints the port (the spec asks for port 0);
# - it never selects a subprotocol, so a client that requires `sip` (ours) fails the
#   handshake: ours answers with the first of the spec's "protocols" the client offers;
# - `-c/-k` are ignored: the certificate and key go in the spec ("cert", "key").
# `-u 0` keeps it from also serving its report pages on 0.0.0.0:8080.
_LAUNCHER = """
import sys
import autobahntestsuite.wstest as wstest  # installs the epoll reactor
import autobahntestsuite.fuzzing as fuzzing

_listen = fuzzing.listenWS


def listen_on_loopback(factory, context_factory=None, backlog=50, interface=''):
    port = _listen(factory, context_factory, backlog, '127.0.0.1')
    sys.stdout.write('listening on port %d\\n' % port.getHost().port)
    sys.stdout.flush()
    return port


fuzzing.listenWS = listen_on_loopback
_on_connect = fuzzing.FuzzingServerProtocol.onConnect


def select_subprotocol(self, request):
    chosen = _on_connect(self, request)
    if chosen is None:
        for protocol in self.factory.protocols or []:
            if protocol in request.protocols:
                return str(protocol)
    return chosen


fuzzing.FuzzingServerProtocol.onConnect = select_subprotocol
sys.argv[0] = 'wstest'
wstest.run()
"""


def write_spec(
    template: str, path: pathlib.Path, cases: Sequence[str], exclude: Sequence[str], **keys: Any
) -> None:
    """Write `spec/<template>.json` with its case lists and `keys` set; a key `server` updates
    the one entry of `servers` (fuzzingclient)."""
    spec: dict[str, Any] = json.loads((HERE / "spec" / f"{template}.json").read_text())
    server = keys.pop("server", None)
    if server is not None:
        spec["servers"][0].update(server)
    spec.update(keys, cases=list(cases), **{"exclude-cases": list(exclude)})
    path.write_text(json.dumps(spec, indent=2) + "\n")


def wait_for_port(pattern: re.Pattern[str], log: pathlib.Path, process: subprocess.Popen[bytes]) -> int:
    """The port that `process` announces in `log` (group 1 of `pattern`), within a minute.
    Raises RuntimeError when it exits or stays silent."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = pattern.search(log.read_text(errors="replace"))
        if found:
            return int(found[1])
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"no listener; see {log}")


def _wstest(python: str, mode: str, spec: pathlib.Path, log: pathlib.Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [python, "-u", "-c", _LAUNCHER, "-m", mode, "-s", str(spec), "-u", "0"],
            cwd=spec.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run_fuzzingclient(python: str, spec: pathlib.Path, timeout: float) -> int:
    """Run the suite as the client against the server in `spec`; its exit status (124 when
    it ran out of time). Its output goes to `wstest.log` beside the spec."""
    process = _wstest(python, "fuzzingclient", spec, spec.parent / "wstest.log")
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return 124


class FuzzingServer:
    """The suite as the server, on 127.0.0.1 (a context manager that stops it)."""

    def __init__(self, python: str, spec: pathlib.Path) -> None:
        self.log = spec.parent / "wstest.log"
        self._process = _wstest(python, "fuzzingserver", spec, self.log)

    def port(self) -> int:
        """The port it listens on, once it does."""
        return wait_for_port(re.compile(r"^listening on port (\d+)$", re.M), self.log, self._process)

    def __enter__(self) -> FuzzingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
