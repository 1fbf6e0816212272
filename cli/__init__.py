"""`python -m sansio_wss`: the command line (walkthrough of the core; more commands follow)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="python -m sansio_wss", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("walkthrough", help="drive a client and a server core by hand, printing every step")
    args = parser.parse_args(argv)
    if args.command == "walkthrough":
        from .walkthrough import main as walkthrough  # noqa: PLC0415 (each command loads what it needs)

        walkthrough()
        return 0
    parser.print_help()
    return 2
