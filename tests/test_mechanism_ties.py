"""FiniteGame breaks ties toward the smallest outcome, also when rounding splits the tie."""

from __future__ import annotations

import numpy as np

from stochmech import FiniteGame
from stochmech.games.finite import _first_max


def test_first_stage_tie_goes_to_the_smallest_outcome_despite_rounding() -> None:
    # E[v | a=0] = 0.15 exactly; E[v | a=1] = 0.5 * 0.1 + 0.5 * 0.2 = 0.15000000000000002
    v = np.zeros((1, 2, 2, 1))
    v[0, :, 0, 0] = [0.15, 0.15]
    v[0, :, 1, 0] = [0.1, 0.2]
    game = FiniteGame(v, np.zeros((2, 1)))
    theta = np.array([[0.5, 0.5]])
    assert 0.5 * 0.1 + 0.5 * 0.2 > 0.15  # the rounding the rule must not follow
    assert game.first_stage(theta) == 0
    assert game.optimal_welfare(theta) == 0.15


def test_second_stage_tie_goes_to_the_smallest_outcome_despite_rounding() -> None:
    # b = 0 is worth 0.3 to player 0; b = 1 is worth 0.1 + 0.2 = 0.30000000000000004
    v = np.zeros((2, 1, 1, 2))
    v[0, 0, 0, :] = [0.3, 0.1]
    v[1, 0, 0, :] = [0.0, 0.2]
    game = FiniteGame(v, np.zeros((1, 2)))
    assert 0.1 + 0.2 > 0.3
    assert game.second_stage(0, np.array([[0, 0]])).tolist() == [0]
    bids = np.ones((2, 1))
    np.testing.assert_allclose(game.expected_valuations(bids), [0.3, 0.0])
    np.testing.assert_allclose(game.deviation_payoffs(bids, 1), [[0.0]])


def test_first_max_is_an_argmax_away_from_ties() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 7))
    np.testing.assert_array_equal(_first_max(x, axis=1), np.argmax(x, axis=1))
    assert _first_max(np.array([1.0, 1.0 + 1e-13, 0.5])) == 0
    assert _first_max(np.array([1.0, 1.0 + 1e-9, 0.5])) == 1
