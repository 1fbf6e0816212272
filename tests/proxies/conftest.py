"""Every proxy test ends with the threads and file descriptors it started with, as the adapter tests do."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import pytest
from adapter_suite.adapter_helpers import wait_for
from adapter_suite.endpoint_harness import ENDPOINT_ADAPTERS, EndpointHarness, endpoint_harness

LINGER = 5.0  # seconds a test's threads and sockets may take to go once it is over


@pytest.fixture(params=ENDPOINT_ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> EndpointHarness:
    """The endpoint harness of each adapter in turn."""
    return endpoint_harness(request.param)


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


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    threads = set(threading.enumerate())
    fds = _open_fds()
    yield
    assert wait_for(lambda: not _threads(threads), LINGER), f"threads left behind: {_threads(threads)}"
    assert wait_for(lambda: not _fds(fds), LINGER), f"file descriptors left open: {_fds(fds)}"
