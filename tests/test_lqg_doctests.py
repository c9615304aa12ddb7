"""The Examples sections of the public LQG API run and give the documented output."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "stochmech.lqg.agents",
    "stochmech.lqg.deterministic",
    "stochmech.lqg.examples",
    "stochmech.lqg.layered",
    "stochmech.lqg.plots",
    "stochmech.lqg.rationality",
    "stochmech.lqg.reference",
    "stochmech.lqg.riccati",
    "stochmech.lqg.scenario",
    "stochmech.lqg.static",
    "stochmech.lqg.verification",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
