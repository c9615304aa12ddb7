"""FiniteGame against the loop-by-loop reference of tests/game_reference.py."""

from __future__ import annotations

import pickle

import game_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stochmech import Estimate, FiniteGame


@st.composite
def finite_games(draw, max_players: int = 3, max_types: int = 3):
    n = draw(st.integers(1, max_players))
    k = draw(st.integers(1, max_types))
    a = draw(st.integers(1, 3))
    b = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # integer-valued tables make ties common, which exercises the tie-breaking rules
    integer = draw(st.booleans())
    v = (
        rng.integers(-3, 4, size=(n, k, a, b)).astype(float)
        if integer
        else rng.normal(size=(n, k, a, b))
    )
    c = rng.integers(-2, 3, size=(a, b)).astype(float) if integer else rng.normal(size=(a, b))
    theta = rng.dirichlet(np.ones(k), size=n)
    if draw(st.booleans()):
        theta[0] = np.eye(k)[rng.integers(k)]  # a point mass
    return v, c, theta


@given(finite_games())
def test_rules_and_expectations_match_the_reference(case):
    v, c, theta = case
    game = FiniteGame(v, c)
    n = v.shape[0]
    a, w = ref.first_stage(v, c, theta)
    assert game.first_stage(theta) == a
    assert game.optimal_welfare(theta) == pytest.approx(w, rel=1e-12, abs=1e-12)
    nu = game.expected_valuations(theta)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        assert game.optimal_welfare_without(theta, i) == pytest.approx(
            ref.first_stage(v, c, theta, others)[1], rel=1e-12, abs=1e-12
        )
        assert nu[i] == pytest.approx(ref.expected_valuation(v, c, theta, i), rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(
            game.deviation_payoffs(theta, i), ref.deviation_payoff(v, c, theta, i), atol=1e-12
        )


@given(finite_games(), st.integers(1, 20))
def test_second_stage_and_per_day_values(case, days):
    v, c, _theta = case
    game = FiniteGame(v, c)
    n, k = v.shape[:2]
    rng = np.random.default_rng(days)
    types = rng.integers(0, k, size=(days, n))
    for a in range(c.shape[0]):
        o2 = game.second_stage(a, types)
        expected = [ref.second_stage(v, c, list(range(n)), tuple(row), a) for row in types]
        np.testing.assert_array_equal(o2, expected)
        vals = game.valuations(types, a, o2)
        for row in range(days):
            for i in range(n):
                assert vals[row, i] == v[i, types[row, i], a, o2[row]]
        np.testing.assert_array_equal(game.cost(a, o2), c[a, o2])


def test_monte_carlo_estimates_carry_standard_errors():
    rng = np.random.default_rng(3)
    v = rng.normal(size=(3, 3, 2, 3))
    c = rng.normal(size=(2, 3))
    theta = rng.dirichlet(np.ones(3), size=3)
    exact = FiniteGame(v, c)
    mc = FiniteGame(v, c, expectation="monte-carlo", samples=40_000, seed=5)
    w = mc.optimal_welfare(theta)
    assert isinstance(w, Estimate) and w.stderr > 0
    assert abs(w - exact.optimal_welfare(theta)) < 5 * w.stderr
    nu_mc = mc.expected_valuations(theta)
    nu = exact.expected_valuations(theta)
    for i in range(3):
        assert abs(nu_mc[i] - nu[i]) < 5 * nu_mc[i].stderr
    without = mc.optimal_welfare_without(theta, 1)
    assert abs(without - exact.optimal_welfare_without(theta, 1)) < 5 * without.stderr
    # the same seed gives the same estimate (common random numbers across calls)
    assert mc.optimal_welfare(theta) == w
    assert pickle.loads(pickle.dumps(w)) == w and pickle.loads(pickle.dumps(w)).stderr == w.stderr


def test_exact_expectations_refuse_beyond_the_limit():
    v = np.zeros((12, 4, 1, 1))
    game = FiniteGame(v, np.zeros((1, 1)))
    theta = np.full((12, 4), 0.25)
    with pytest.raises(ValueError, match=r"4\^12 = 16777216 profiles.*monte-carlo"):
        game.optimal_welfare(theta)
    mc = FiniteGame(v, np.zeros((1, 1)), expectation="monte-carlo", samples=1000)
    assert mc.optimal_welfare(theta) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"valuations": np.zeros((2, 2, 2)), "cost": np.zeros((2, 2))}, "4-D"),
        ({"valuations": np.zeros((2, 2, 2, 2)), "cost": np.zeros((2, 3))}, r"cost must have shape"),
        (
            {"valuations": np.full((1, 1, 1, 1), np.nan), "cost": np.zeros((1, 1))},
            r"valuations\[0, 0, 0, 0\] is nan",
        ),
        ({"valuations": np.zeros((1, 1, 1, 1)), "cost": [[np.inf]]}, r"cost\[0, 0\] is inf"),
        (
            {"valuations": np.zeros((1, 2, 1, 1)), "cost": [[0.0]], "type_values": [1.0]},
            "type_values",
        ),
        (
            {"valuations": np.zeros((1, 1, 1, 1)), "cost": [[0.0]], "expectation": "guess"},
            "expectation",
        ),
    ],
)
def test_bad_tables_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FiniteGame(**kwargs)


def test_bad_supertypes_and_types_are_rejected():
    game = FiniteGame(np.zeros((2, 2, 1, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="player 1 sums to"):
        game.optimal_welfare([[0.5, 0.5], [0.5, 0.6]])
    with pytest.raises(ValueError, match=r"type 1 is -0\.5"):
        game.optimal_welfare([[1.5, -0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="shape"):
        game.optimal_welfare([[0.5, 0.5]])
    with pytest.raises(ValueError, match="type 2 of player 1"):
        game.second_stage(0, [[0, 2]])
    with pytest.raises(ValueError, match="first-stage outcome 3"):
        game.second_stage(3, [[0, 1]])
    with pytest.raises(ValueError, match="player 2 does not exist"):
        game.optimal_welfare_without([[0.5, 0.5], [0.5, 0.5]], 2)
