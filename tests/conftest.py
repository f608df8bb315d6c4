"""Shared test settings: hypothesis profiles and a per-run data cache."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Timing-based deadlines flake on a loaded 2-core machine; speed lives in benchmarks/.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default"))

