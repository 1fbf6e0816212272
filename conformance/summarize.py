"""Verdicts of an Autobahn report directory: counts per case group, the cases to explain, PASS/FAIL.

    summarize.py REPORT_DIR [REPORT_DIR ...]

Reads `index.json` (and each case's own report for its description and result). Exit
status: 0 when no case is FAILED or NON-STRICT, 1 otherwise, 2 when a report is missing.
"""

from __future__ import annotations

import argparse
import collections
import html
import json
import pathlib
import re
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Summary", "summarize"]

BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED")
FAILING = ("FAILED", "NON-STRICT")
_CLOSE_OK = ("OK", "INFORMATIONAL")
_TAG = re.compile(r"<[^>]+>")
_COLUMNS = ("group", "cases", *BEHAVIORS, "close!", "case-s")
_WIDTHS = [max(len(name), 6) for name in _COLUMNS]


@dataclass
class Summary:
    """What one report directory says."""

    title: str
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    failing: list[str] = field(default_factory=list)
    """Ids of the FAILED and NON-STRICT cases."""
    lines: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No FAILED and no NON-STRICT case."""
        return not self.failing

    def verdict(self) -> str:
        """One line: the counts and PASS or FAIL."""
        counts = " ".join(f"{name}={self.counts[name]}" for name in BEHAVIORS)
        verdict = "PASS" if self.passed else "FAIL"
        return f"{self.title}: cases={sum(self.counts.values())} {counts} -> {verdict}"


def _case_key(case: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case.split("."))


def _row(values: list[str]) -> str:
    return "  ".join(value.rjust(width) for value, width in zip(values, _WIDTHS, strict=True))


def _text(value: object) -> str:
    """Report text on one line: tags stripped, entities decoded, blanks collapsed."""
    return " ".join(html.unescape(_TAG.sub(" ", str(value))).split())


def summarize(directory: pathlib.Path, title: str) -> Summary:
    """Count and explain the cases of the one agent in `directory/index.json`.
    Raises OSError or ValueError when there is no report."""
    index: dict[str, dict[str, dict[str, Any]]] = json.loads((directory / "index.json").read_text())
    if len(index) != 1:
        raise ValueError(f"{directory}: expected one agent, found {sorted(index)}")
    (agent, cases), *_ = index.items()
    summary = Summary(f"{title} [{agent}]")
    groups: dict[str, collections.Counter[str]] = {}
    seconds: dict[str, float] = collections.defaultdict(float)
    explain: list[str] = []
    for case in sorted(cases, key=_case_key):
        result = cases[case]
        behavior, close = result["behavior"], result["behaviorClose"]
        group = case.split(".")[0]
        groups.setdefault(group, collections.Counter())[behavior] += 1
        groups[group]["close!"] += close not in _CLOSE_OK
        seconds[group] += (result.get("duration") or 0) / 1000
        summary.counts[behavior] += 1
        if behavior in FAILING:
            summary.failing.append(case)
        if behavior != "OK" or close not in _CLOSE_OK:
            report: dict[str, Any] = json.loads((directory / result["reportfile"]).read_text())
            explain += [
                f"  {behavior} {case} (close {close}, remote code {result.get('remoteCloseCode')}): "
                f"{_text(report.get('description', ''))}",
                f"      expected: {_text(report.get('expectation', ''))}",
                f"      result: {_text(report.get('result', ''))}",
                f"      close: {_text(report.get('resultClose', ''))}",
            ]
    summary.lines.append(_row(list(_COLUMNS)))
    totals: collections.Counter[str] = collections.Counter()
    for group in sorted(groups, key=int):
        counts = groups[group]
        totals.update(counts)
        row = [f"{group}.*", str(sum(counts[name] for name in BEHAVIORS))]
        row += [str(counts[name]) for name in (*BEHAVIORS, "close!")] + [f"{seconds[group]:.1f}"]
        summary.lines.append(_row(row))
    row = ["TOTAL", str(sum(summary.counts.values()))]
    row += [str(totals[name]) for name in (*BEHAVIORS, "close!")] + [f"{sum(seconds.values()):.1f}"]
    summary.lines.append(_row(row))
    summary.lines += explain
    return summary


def main() -> int:
    """Print each directory's summary; the exit status tells whether all passed."""
    parser = argparse.ArgumentParser(description="Summarize Autobahn report directories.")
    parser.add_argument("directories", nargs="+", type=pathlib.Path, metavar="REPORT_DIR")
    args = parser.parse_args()
    status = 0
    for directory in args.directories:
        try:
            summary = summarize(directory, directory.name)
        except (OSError, ValueError) as exc:
            print(f"{directory}: no report: {exc}", file=sys.stderr)
            status = 2
            continue
        print("\n".join([f"== {summary.title}", *summary.lines, summary.verdict()]))
        if not summary.passed and status == 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
