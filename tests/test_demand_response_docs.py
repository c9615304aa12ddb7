"""The Examples sections of the supertype and demand-response modules run and hold."""

import doctest

import pytest

import stochmech.markets._inverse_sum as inverse_sum
import stochmech.markets.demand_response.market as demand_response
import stochmech.supertype as supertype


@pytest.mark.parametrize("module", [supertype, demand_response, inverse_sum])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
