"""Every proxy test ends with the threads and file descriptors it started with, as the adapter tests do."""

from __future__ import annotations

import pytest
from adapter_suite.endpoint_harness import ENDPOINT_ADAPTERS, EndpointHarness, endpoint_harness
from leaks import nothing_left_behind

__all__ = ["adapter", "nothing_left_behind"]


@pytest.fixture(params=ENDPOINT_ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> EndpointHarness:
    """The endpoint harness of each adapter in turn."""
    return endpoint_harness(request.param)
