"""Run the Autobahn testsuite against our server (fuzzingclient) and our client (fuzzingserver).

    run.py --wstest PY27 quick                 # what `make conformance` runs
    run.py --wstest PY27 full                  # what `make conformance-full` runs
    run.py --wstest PY27 server --adapter trio [--cases 5.*,6.4.*] [--exclude ...]
    run.py --wstest PY27 client [--cases ...] [--exclude ...]

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
"""Every group but 12 and 13 (permessage-deflate, which we do not offer yet). Group 9 (up to
16 MiB a message) takes about 15 s of a run's 25 s, so it stays in `quick`."""

# The suite sends messages of up to 16 MiB (group 9) and writes frames in many small
# pieces, so both sides run with limits far above our defaults (64 KiB messages, 4 reads
# a message, 10 s to write), and without keepalive Pings in the wire logs.
SERVE_LIMITS = (
    "--max-message-size", str(16 << 20),
    "--max-msg-chunks", "0",
    "--send-timeout", "60",
    "--close-timeout", "10",
    "--ping-interval", "0",
)  # fmt: skip
_LISTENING = re.compile(r"^listening on wss://127\.0\.0\.1:(\d+)/", re.M)


@dataclass(frozen=True)
class Run:
    """One suite run: our `role` (server or client), through `adapter`."""

    role: str
    adapter: str
    cases: Sequence[str] = GROUPS
    exclude: Sequence[str] = ()

    @property
    def name(self) -> str:
        return f"{self.role}-{self.adapter}"


PLANS = {
    "quick": (Run("server", "asyncio"), Run("client", "asyncio")),
    "full": (
        Run("server", "asyncio"),
        Run("client", "asyncio"),
        Run("server", "trio"),
        Run("server", "sync"),
    ),
}


class Broken(Exception):
    """A run could not complete (as opposed to a run whose cases failed)."""


@contextlib.contextmanager
def _our_server(adapter: str, log: pathlib.Path) -> Iterator[int]:
    """`python -m sansio_wss serve --app echo` on a free port (yielded); stopped by SIGTERM."""
    command = [sys.executable, "-m", "sansio_wss", "serve", "--app", "echo", "--adapter", adapter]
    command += ["--listen", "wss://127.0.0.1:0", "--origin", ORIGIN, *SERVE_LIMITS, "--verbose"]
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
    with _our_server(run.adapter, outdir / "server.log") as port:
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
    parser.add_argument("--timeout", type=float, default=3600, metavar="SECONDS", help="for each run")
    plans = parser.add_subparsers(dest="plan", required=True)
    plans.add_parser("quick", help="groups 1-10, our asyncio server and client")
    plans.add_parser("full", help="groups 1-10, our asyncio server and client, our trio and sync servers")
    for role in ("server", "client"):
        one = plans.add_parser(role, help=f"one run against our {role}")
        one.add_argument("--adapter", choices=("asyncio", "trio", "sync"), default="asyncio")
        one.add_argument("--cases", default=",".join(GROUPS), help="comma-separated patterns")
        one.add_argument("--exclude", default="", help="comma-separated patterns")
    args = parser.parse_args()
    if not os.access(args.wstest, os.X_OK):
        parser.error(f"--wstest {args.wstest}: not an executable (make .venv-autobahn/.deps)")
    if args.plan in PLANS:
        runs = PLANS[args.plan]
    else:
        if args.plan == "client" and args.adapter != "asyncio":
            parser.error("client: only the asyncio client has a driver")
        cases, exclude = (tuple(filter(None, value.split(","))) for value in (args.cases, args.exclude))
        runs = (Run(args.plan, args.adapter, cases, exclude),)
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
