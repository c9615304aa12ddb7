"""The Examples sections of the mechanism, game, strategy, simulation and ledger modules run
and give the documented output (three of them were wrong before this test existed)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "stochmech",
    "stochmech.games.finite",
    "stochmech.ledger",
    "stochmech.mechanism",
    "stochmech.simulation",
    "stochmech.strategies",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
