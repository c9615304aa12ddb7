"""Shared test configuration: hypothesis profiles chosen by an environment variable.

``STOCHMECH_HYPOTHESIS=slow pytest`` runs many more examples; the default profile is fast.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "slow", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("STOCHMECH_HYPOTHESIS", "fast"))


def pytest_configure(config):
    # hypothesis formats a failing example with black, whose import of mypy_extensions emits a
    # DeprecationWarning; under filterwarnings=error that hides the real failure.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )
