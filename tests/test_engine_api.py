"""The engine's small public pieces: docstring examples, r(l) vectorized, argument validation."""

from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pytest

import stochmech
from stochmech._validate import PMF_TOLERANCE, integer, player, pmf, pmf_rows


@pytest.mark.parametrize(
    "name",
    ["stochmech.schemes", "stochmech._validate", "stochmech._window", "stochmech.simulation"],
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_window_array_is_the_scalar_window_day_by_day():
    days = np.array([1, 2, 3, 10, 999, 10**6, 2**40])
    for gamma in (0.1, 0.5, 2.0):
        got = stochmech.window(days, gamma)
        assert got.dtype == np.float64 and got.shape == days.shape
        assert got.tolist() == [stochmech.window(int(d), gamma) for d in days]
        # eq. (11), to rounding
        ref = [math.sqrt(math.log(2.0 * float(d) ** (1 + gamma)) / (2.0 * float(d))) for d in days]
        np.testing.assert_allclose(got, ref, rtol=1e-14)
    assert stochmech.window(np.array([[1, 2], [3, 4]])).shape == (2, 2)
    assert stochmech.window(np.array([4.0]))[0] == stochmech.window(4)


@pytest.mark.parametrize(
    ("day", "gamma", "match"),
    [
        (0, 0.5, "day must be >= 1"),
        (3.7, 0.5, "day must be an integer, got 3.7"),
        (np.array([1, 0]), 0.5, "at index 1"),
        (np.array([1.5]), 0.5, "integers"),
        (1, 0.0, "gamma"),
        (1, math.nan, "gamma"),
        (True, 0.5, "day must be an integer"),
    ],
)
def test_window_rejects_bad_arguments(day, gamma, match):
    with pytest.raises(ValueError, match=match):
        stochmech.window(day, gamma)


def test_validation_names_the_argument_and_the_value():
    assert integer(1e6, "days") == 1_000_000 and integer(np.int64(3), "days") == 3
    for bad in (3.7, "3", None, math.inf, True):
        with pytest.raises(ValueError, match="days must be an integer"):
            integer(bad, "days")
    with pytest.raises(ValueError, match="chunk must be >= 1, got 0"):
        integer(0, "chunk", minimum=1)
    with pytest.raises(ValueError, match=r"player must be in 0\.\.2, got -1"):
        player(-1, 3)
    with pytest.raises(ValueError, match="sums to"):
        pmf([0.5, 0.5 + 10 * PMF_TOLERANCE], 2, "declared")
    assert pmf([0.5, 0.5 + PMF_TOLERANCE / 10], 2, "declared").shape == (2,)
    with pytest.raises(ValueError, match="probability of type 1 is nan"):
        pmf([0.5, math.nan], 2, "declared")
    with pytest.raises(ValueError, match=r"supertype bid of player 1 sums to 0\.9"):
        pmf_rows([[1.0, 0.0], [0.4, 0.5]], (2, 2))
    with pytest.raises(ValueError, match=r"must have shape \(2, 2\)"):
        pmf_rows([[1.0, 0.0]], (2, 2))


def test_public_entries_reject_non_integer_days_and_seeds():
    game = stochmech.FiniteGame(np.zeros((1, 2, 1, 1)), [[0.0]])
    with pytest.raises(ValueError, match=r"days must be an integer, got 3\.7"):
        stochmech.simulate(game, [[0.5, 0.5]], days=3.7)
    with pytest.raises(ValueError, match="seed must be an integer"):
        stochmech.Simulation(game, [[0.5, 0.5]], seed=1.5)
    with pytest.raises(ValueError, match="payment scheme"):
        stochmech.Simulation(game, [[0.5, 0.5]], mechanism="posted price")
    with pytest.raises(ValueError, match="does not define price_response"):
        stochmech.Simulation(game, [[0.5, 0.5]], mechanism=stochmech.PostedPrice(1.0))
