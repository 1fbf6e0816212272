"""Run every fuzz harness (or one) for a fixed time on its seed corpus; exit 1 on any crash."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"
HARNESSES = sorted(path.stem for path in HERE.glob("fuzz_*.py"))
_STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.MULTILINE)
_ARTIFACT = re.compile(r"(?:Test unit written to|written to) (\S+)")


def merge(name: str, found: Path) -> int:
    """Fold the inputs of `found` that add coverage into the committed corpus; how many were added.

    libFuzzer's merge runs every input once and copies into its first directory (named by
    SHA-1, as `make_corpus.is_grown` expects) only those that reach new features.
    """
    seeds = CORPUS / name
    before = len(list(seeds.iterdir()))
    command = [
        sys.executable,
        str(HERE / f"{name}.py"),
        "-merge=1",
        "-rss_limit_mb=2048",
        str(seeds),
        str(found),
    ]
    subprocess.run(command, capture_output=True, check=True, timeout=1800)
    return len(list(seeds.iterdir())) - before


def run_one(name: str, seconds: int, keep: Path | None, grow: bool = False) -> tuple[bool, str]:
    """Fuzz `name` for `seconds`; (passed, one summary line).

    libFuzzer writes new inputs into the first corpus directory it is given, so
    that is a scratch directory (or `keep`), and the committed corpus comes
    second, where it is only read; with `grow`, a run without crash then merges
    what it found into the committed corpus.
    """
    CRASHES.mkdir(exist_ok=True)
    seeds = CORPUS / name
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as scratch:
        work = keep / name if keep else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            str(HERE / f"{name}.py"),
            str(work),
            str(seeds),
            f"-max_total_time={seconds}",
            "-rss_limit_mb=2048",
            "-timeout=20",
            "-print_final_stats=1",
            f"-artifact_prefix={CRASHES}/{name}-",
        ]
        started = time.monotonic()
        proc = subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=seconds + 300, check=False
        )
        elapsed = time.monotonic() - started
        added = merge(name, work) if grow and proc.returncode == 0 else 0
    log = proc.stdout + proc.stderr
    stats = {key: int(value) for key, value in _STAT.findall(log)}
    summary = (
        f"{name:24} {elapsed:6.1f} s  {stats.get('number_of_executed_units', 0):>9} runs"
        f"  {stats.get('average_exec_per_sec', 0):>6} exec/s  {stats.get('new_units_added', 0):>5} new"
        f"  {stats.get('peak_rss_mb', 0):>4} MB" + (f"  {added} merged into the corpus" if grow else "")
    )
    if proc.returncode == 0:
        return True, summary
    (CRASHES / f"{name}.log").write_text(log)
    artifacts = _ARTIFACT.findall(log)
    tail = "\n".join(log.strip().splitlines()[-40:])
    where = ", ".join(artifacts) or "(no artifact written)"
    return False, f"{summary}\nCRASH in {name} (exit {proc.returncode}): input {where}\n{tail}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="fuzzing time per harness (default 10)")
    parser.add_argument("--harness", action="append", choices=HARNESSES, help="run only this (repeatable)")
    parser.add_argument("--keep", type=Path, help="write new corpus entries under KEEP/<harness>/")
    parser.add_argument(
        "--grow", action="store_true", help="merge new inputs that add coverage into fuzz/corpus/<harness>/"
    )
    args = parser.parse_args()
    failed = []
    for name in args.harness or HARNESSES:
        ok, summary = run_one(name, args.seconds, args.keep, args.grow)
        print(summary, flush=True)
        if not ok:
            failed.append(name)
    if failed:
        names = ", ".join(failed)
        print(f"fuzz: {len(failed)} harness(es) crashed: {names}; see {CRASHES}/", file=sys.stderr)
        return 1
    print(f"fuzz: {len(args.harness or HARNESSES)} harnesses ran {args.seconds} s each, no crash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
