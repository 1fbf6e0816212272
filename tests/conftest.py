"""Test-wide setup: this folder is on sys.path (so `wire` imports everywhere) and the hypothesis profiles.

"ci" (the default) keeps tests/properties and tests/reference under a minute on 2 cores;
HYPOTHESIS_PROFILE=hunt runs ten times as many examples to look for bugs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("hunt", settings.get_profile("ci"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
