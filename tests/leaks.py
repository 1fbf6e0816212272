"""The check that a test over real sockets ends with the threads and file descriptors it began with
(an autouse fixture: each folder of such tests imports it into its conftest.py)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

__all__ = ["nothing_left_behind"]

LINGER = 5.0  # seconds a test's threads and sockets may take to go once it is over


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _threads(before: set[threading.Thread]) -> list[str]:
    # trio resolves names in its thread cache, whose idle threads stay ~10 s for reuse
    names = (t.name for t in set(threading.enumerate()) - before)
    return sorted(name for name in names if not name.startswith("Trio thread"))


def _fds(before: set[str]) -> dict[str, str]:
    left = {}
    for fd in _open_fds() - before:
        with contextlib.suppress(OSError):  # closed meanwhile
            left[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return left


def _gone(left: Callable[[], object]) -> bool:
    deadline = time.monotonic() + LINGER
    while left():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Fail the test if threads or file descriptors it opened outlive it by LINGER seconds."""
    threads = set(threading.enumerate())
    fds = _open_fds()
    yield
    assert _gone(lambda: _threads(threads)), f"threads left behind: {_threads(threads)}"
    assert _gone(lambda: _fds(fds)), f"file descriptors left open: {_fds(fds)}"
