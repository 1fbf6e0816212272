"""Run the Autobahn testsuite against our server (fuzzingclient) and our client (fuzzingserver).

    run.py --wstest PY27 quick                 # what `make conformance` runs
    run.py --wstest PY27 full                  # what `make conformance-full` runs
    run.py --wstest PY27 server --adapter trio [--cases 5.*,6.4.*] [--exclude ...] [--deflate-window-bits N]
    run.py --wstest PY27 client [--cases ...] [--exclude ...] [--deflate-window-bits N]

PY27 is the Python 2.7 of the virtualenv that has autobahntestsuite. Reports go to
`conformance/reports/<role>-<adapter>/` (the suite's HTML, index.json, wstest.log, and
server.log or client.log from our side). Exit status: 0 when every run passed (no FAILED,
no NON-STRICT), 1 when one did not, 2 when one could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from suite import ORIGIN, FuzzingServer, run_fuzzingclient, wait_for_port, write_spec
from summarize import summarize

from sansio_wss.cli.certs import generate

HERE = pathlib.Path(__file__).resolve().parent
REPORTS = HERE / "reports"

GROUPS = ("1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*")
"""Every group but 12 and 13 (permessage-deflate). Group 9 (up to 16 MiB a message) takes
about 15 s of a run's 25 s, so it stays in `quick`."""

DEFLATE = ("12.*", "13.*")
"""permessage-deflate: 216 cases, each echoing 1000 messages of 16 B to 128 KiB; 12.1-12.5
are five data sets (JSON, a bitmap, German text, HTML, a PDF) and 13.1-13.7 seven offer and
answer combinations on the JSON, each subgroup the same 18 sizes and fragmentations
(x.y.1-10: 16 B to 128 KiB whole; 11-15: 8 to 128 KiB in 256-byte frames; 16-18: 128 KiB
in 1, 4 and 32 KiB frames). All of it takes 15 to 30 minutes a run: `full` only."""

DEFLATE_SAMPLE = (
    "12.1.1", "12.1.14", "12.2.5", "12.3.11", "12.4.7", "12.5.3",
    "13.1.6", "13.2.5", "13.3.5", "13.4.7", "13.5.11", "13.6.4", "13.7.6",
)  # fmt: skip
"""What `quick` runs of 12 and 13 (about 22 s a run): every data set and every offer combination
once, at sizes from 16 B to 64 KiB, whole and in 256-byte frames; 12.1.14 (64 KiB against 32 KiB
windows) and 13.3.5, 13.5.11, 13.7.6 (4 to 8 KiB against 512 bytes) outgrow their window, so
that it slides. The slow subgroup 12.5 (a PDF, which hardly compresses: up to 90 s a case)
only at 256 B; 128 KiB messages and 1 to 32 KiB frames only in `full`."""

QUICK = (*GROUPS, *DEFLATE_SAMPLE)
FULL = (*GROUPS, *DEFLATE)

# The suite sends messages of up to 16 MiB (group 9) and writes frames in many small
# pieces, so both sides run with limits far above our defaults (64 KiB messages, 4 reads
# a message, 10 s to write), and without keepalive Pings in the wire logs.
SERVE_LIMITS = (
    "--max-message-size", str(16 << 20),
    "--max-msg-chunks", "0",
    "--send-timeout", "60",
    "--close-timeout", "10",
    "--ping-interval", "0",
    "--deflate",
)  # fmt: skip
# permessage-deflate windows (`deflate_window_bits`, 9-15; 12 by default). In the server role
# the suite makes the offers (13.x: windows of 9 and 15 bits, with and without context
# takeover), and at 15 ours honours each exactly as asked: seven distinct agreements, where
# at 12 the offers for 15 bits (13.4, 13.6) would be narrowed into those of 13.1 and 13.2.
# In the client role the offer is ours: the default, what users run, and the suite's answers
# for a 15-bit client window (13.4, 13.6) exercise our narrowing to 12.
WINDOWS = {"server": 15, "client": 12}
_LISTENING = re.compile(r"^listening on wss://127\.0\.0\.1:(\d+)/", re.M)


@dataclass(frozen=True)
class Run:
    """One suite run: our `role` (server or client), through `adapter`."""

    role: str
    adapter: str
    cases: Sequence[str] = QUICK
    exclude: Sequence[str] = ()
    window: int | None = None
    """Our permessage-deflate window (`deflate_window_bits`); None: WINDOWS[role]."""

    @property
    def name(self) -> str:
        return f"{self.role}-{self.adapter}"

    @property
    def deflate_window_bits(self) -> int:
        return WINDOWS[self.role] if self.window is None else self.window


PLANS = {
    "quick": (Run("server", "asyncio"), Run("client", "asyncio")),
    "full": (
        Run("server", "asyncio", FULL),
        Run("client", "asyncio", FULL),
        Run("server", "trio", FULL),
        Run("server", "sync", FULL),
    ),
}


class Broken(Exception):
    """A run could not complete (as opposed to a run whose cases failed)."""


@contextlib.contextmanager
def _our_server(adapter: str, window: int, log: pathlib.Path) -> Iterator[int]:
    """`python -m sansio_wss serve --app echo` on a free port (yielded); stopped by SIGTERM."""
    command = [sys.executable, "-m", "sansio_wss", "serve", "--app", "echo", "--adapter", adapter]
    command += ["--listen", "wss://127.0.0.1:0", "--origin", ORIGIN, *SERVE_LIMITS, "--verbose"]
    command += ["--deflate-window-bits", str(window)]
    # Out of the repository, where the local sansio_wss/ (without cli/) would shadow the wheel.
    with tempfile.TemporaryDirectory() as cwd, log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield wait_for_port(_LISTENING, log, process)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                status = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                status = process.wait()
    if status != 0:
        raise Broken(f"our server exited with status {status}; see {log}")


def _run_server(run: Run, wstest: str, outdir: pathlib.Path, timeout: float) -> None:
    with _our_server(run.adapter, run.deflate_window_bits, outdir / "server.log") as port:
        spec = outdir / "fuzzingclient.json"
        server = {"agent": f"sansio-wss-{run.adapter}-server", "url": f"wss://127.0.0.1:{port}"}
        write_spec("fuzzingclient", spec, run.cases, run.exclude, outdir=str(outdir), server=server)
        status = run_fuzzingclient(wstest, spec, timeout)
    if status != 0:
        raise Broken(f"wstest exited with status {status}; see {outdir / 'wstest.log'}")


def _run_client(run: Run, wstest: str, outdir: pathlib.Path, timeout: float) -> None:
    made = generate(outdir, ["127.0.0.1"])
    spec = outdir / "fuzzingserver.json"
    keys = {"outdir": str(outdir), "cert": str(made.certificate), "key": str(made.key)}
    write_spec("fuzzingserver", spec, run.cases, run.exclude, **keys)
    with FuzzingServer(wstest, spec) as suite:
        port = suite.port()
        command = [sys.executable, str(HERE / "client.py"), "--url", f"wss://127.0.0.1:{port}"]
        command += ["--agent", f"sansio-wss-{run.adapter}-client"]
        command += ["--deflate-window-bits", str(run.deflate_window_bits)]
        with (outdir / "client.log").open("wb") as out:
            try:
                done = subprocess.run(
                    command, check=False, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
                )
                status = done.returncode
            except subprocess.TimeoutExpired:
                status = 124
    if status != 0:
        raise Broken(f"the client driver exited with status {status}; see {outdir / 'client.log'}")


def execute(run: Run, wstest: str, timeout: float) -> tuple[str, float, bool | None]:
    """Run the suite once, print its summary; (verdict line, seconds, passed or None: broken)."""
    outdir = REPORTS / run.name
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    mode = "fuzzingclient" if run.role == "server" else "fuzzingserver"
    print(f"== {run.name}: our {run.role} ({run.adapter}) against the suite's {mode}", flush=True)
    print(f"   cases {','.join(run.cases)}; excluded {','.join(run.exclude) or 'none'}", flush=True)
    started = time.monotonic()
    try:
        if run.role == "server":
            _run_server(run, wstest, outdir, timeout)
        else:
            _run_client(run, wstest, outdir, timeout)
        summary = summarize(outdir, run.name)
    except (Broken, OSError, RuntimeError, ValueError) as exc:
        seconds = time.monotonic() - started
        line = f"{run.name}: did not complete in {seconds:.1f} s: {exc}"
        print(line, flush=True)
        return line, seconds, None
    seconds = time.monotonic() - started
    text = "\n".join([*summary.lines, f"{summary.verdict()} in {seconds:.1f} s"])
    (outdir / "summary.txt").write_text(text + "\n")
    print(text, flush=True)
    return f"{summary.verdict()} in {seconds:.1f} s", seconds, summary.passed


def main() -> int:
    """Run a plan, or one role; the exit status is the overall verdict."""
    parser = argparse.ArgumentParser(description="Run the Autobahn testsuite against sansio-wss.")
    parser.add_argument("--wstest", required=True, metavar="PY27", help="Python 2.7 with autobahntestsuite")
    parser.add_argument("--timeout", type=float, default=5400, metavar="SECONDS", help="for each run")
    plans = parser.add_subparsers(dest="plan", required=True)
    plans.add_parser("quick", help="groups 1-10 and a sample of 12-13, our asyncio server and client")
    plans.add_parser("full", help="groups 1-13, our asyncio server and client, our trio and sync servers")
    for role in ("server", "client"):
        one = plans.add_parser(role, help=f"one run against our {role}")
        one.add_argument("--adapter", choices=("asyncio", "trio", "sync"), default="asyncio")
        one.add_argument("--cases", default=",".join(QUICK), help="comma-separated patterns")
        one.add_argument("--exclude", default="", help="comma-separated patterns")
        one.add_argument("--deflate-window-bits", type=int, metavar="N", help=f"ours, 9-15 ({WINDOWS[role]})")
    args = parser.parse_args()
    if not os.access(args.wstest, os.X_OK):
        parser.error(f"--wstest {args.wstest}: not an executable (make .venv-autobahn/.deps)")
    if args.plan in PLANS:
        runs = PLANS[args.plan]
    else:
        if args.plan == "client" and args.adapter != "asyncio":
            parser.error("client: only the asyncio client has a driver")
        cases, exclude = (tuple(filter(None, value.split(","))) for value in (args.cases, args.exclude))
        runs = (Run(args.plan, args.adapter, cases, exclude, args.deflate_window_bits),)
    wstest = os.path.abspath(args.wstest)  # not resolved: a virtualenv's python is a symlink
    results = [execute(run, wstest, args.timeout) for run in runs]
    print("== conformance")
    for line, _, _ in results:
        print(f"   {line}")
    total = sum(seconds for _, seconds, _ in results)
    outcomes = [passed for _, _, passed in results]
    verdict = "BROKEN" if None in outcomes else "PASS" if all(outcomes) else "FAIL"
    print(f"conformance {args.plan}: {verdict} in {total:.1f} s (reports in {REPORTS})")
    return 2 if None in outcomes else 0 if all(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
