"""The README's state diagram is the one drawn from the state tables."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_state_diagram_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "state_diagram.py"), "--check", str(ROOT / "README.md")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
