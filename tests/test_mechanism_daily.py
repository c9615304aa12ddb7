"""``simulate(..., daily=True)`` keeps every day's figures, consistent with the averages."""

from __future__ import annotations

import numpy as np
import pytest

from stochmech import DNBEMechanism, FiniteGame, simulate
from stochmech.strategies import FixedBid, StationaryMisreport, Truthful, shift_kernel


@pytest.fixture
def game() -> FiniteGame:
    rng = np.random.default_rng(11)
    return FiniteGame(rng.normal(size=(3, 3, 2, 3)), rng.normal(size=(2, 3)))


def test_daily_series_match_the_averages(game: FiniteGame) -> None:
    theta = np.array([[0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8]])
    strategies = [StationaryMisreport(shift_kernel(3, 1)), FixedBid(0), Truthful()]
    res = simulate(game, theta, strategies, days=3000, seed=4, chunk=700, daily=True)
    assert res.daily_utility.shape == (3000, 3) and res.daily_flags.shape == (3000, 3)
    np.testing.assert_allclose(res.daily_utility.mean(axis=0), res.average_utility, rtol=1e-12)
    np.testing.assert_array_equal(res.daily_flags.sum(axis=0), res.penalty_days)
    assert res.daily_welfare.mean() == pytest.approx(res.average_welfare, rel=1e-12)
    assert res.daily_budget.mean() == pytest.approx(res.budget, rel=1e-12)
    last = [int(np.flatnonzero(f)[-1]) + 1 if f.any() else 0 for f in res.daily_flags.T]
    assert last == res.last_penalty_day.tolist()
    # the running averages at the checkpoints are prefix means of the daily series
    for row, day in enumerate(res.checkpoints):
        np.testing.assert_allclose(
            res.utility_path[row], res.daily_utility[:day].mean(axis=0), rtol=1e-9, atol=1e-12
        )


def test_daily_is_off_by_default_and_does_not_change_results(game: FiniteGame) -> None:
    theta = np.full((3, 3), 1 / 3)
    plain = simulate(game, theta, days=2000, seed=1)
    traced = simulate(game, theta, days=2000, seed=1, daily=True)
    assert plain.daily_utility is None and plain.daily_flags is None
    np.testing.assert_array_equal(plain.average_utility, traced.average_utility)
    # truthful days without a penalty pay exactly W*(theta) - W*(theta_-i)
    mech = DNBEMechanism(game)
    opening = mech.opening(theta)
    quiet = ~traced.daily_flags.any(axis=1)
    expected = opening.welfare - opening.welfare_without
    np.testing.assert_allclose(
        traced.daily_utility[quiet], np.broadcast_to(expected, (quiet.sum(), 3))
    )
