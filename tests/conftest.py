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


def pytest_terminal_summary(terminalreporter):
    """Prints how many generated bad inputs each API area received (tests/test_contract.py)."""
    import sys

    contract = sys.modules.get("test_contract")
    counts = getattr(contract, "COUNTS", None)
    if counts:
        terminalreporter.write_sep("-", "generated bad inputs per API area (all refused)")
        for area, count in sorted(counts.items()):
            terminalreporter.write_line(f"{area:<28} {count:>6}")
        terminalreporter.write_line(f"{'total':<28} {sum(counts.values()):>6}")
