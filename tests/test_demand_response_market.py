"""The demand-response market: the game interface, posted prices, scale, Monte Carlo, bad input."""

import math
import pickle

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from stochmech.games.base import TwoStageGame
from stochmech.markets import DemandResponseMarket, betaprime_supertype
from stochmech.markets._inverse_sum import LaplaceQuadrature
from stochmech.supertype import Supertype, point_mass


def heterogeneous_market(n, levels, seed, shortage=1.0):
    rng = np.random.default_rng(seed)
    providers = [
        betaprime_supertype(m, v, levels)
        for m, v in zip(rng.uniform(0.3, 4.0, n), rng.uniform(0.2, 4.0, n), strict=True)
    ]
    return DemandResponseMarket(providers, betaprime_supertype(1.0, 2.0, levels), shortage)


SMALL = DemandResponseMarket(
    [Supertype([0.5, 2.0], [0.5, 0.5]), Supertype([1.0, 3.0], [0.3, 0.7]), 4.0],
    reserve=Supertype([1.0, 2.0], [0.4, 0.6]),
    shortage=Supertype([0.5, 1.5], [0.5, 0.5]),
)


# ----- the game interface -----
def test_is_a_two_stage_game_with_the_documented_layout():
    m = SMALL
    assert isinstance(m, TwoStageGame)
    assert m.n_players == 3
    # each provider's type space is its own levels (no grid shared with the others)
    assert [lv.tolist() for lv in m.levels] == [[0.5, 2.0], [1.0, 3.0], [4.0]]
    assert m.type_counts.tolist() == [2, 2, 1] and m.n_types == 2
    assert m.type_values is None and m.values_of(1).tolist() == [1.0, 3.0]
    bids = m.supertype_bids()
    assert bids.shape == (3, 2) and bids[2].tolist() == [1.0, 0.0]
    np.testing.assert_allclose(bids.sum(axis=1), 1.0)
    assert m.first_stage(bids) == 0
    rng = np.random.default_rng(3)
    types = m.sample_types(rng, 7)
    states = m.sample_states(rng, 7)
    assert types.shape == (7, 3) and states.shape == (7, 2)
    o2 = m.second_stage(0, types, states)
    assert o2.shape == (7, 4)
    np.testing.assert_allclose(o2.sum(axis=1), states[:, 0], rtol=1e-13)
    assert m.valuations(types, 0, o2, states).shape == (7, 3)
    assert m.cost(0, o2, states).shape == (7,)
    welfare = m.valuations(types, 0, o2, states).sum(axis=1) - m.cost(0, o2, states)
    deltas = np.array([[m.levels[i][t] for i, t in enumerate(row)] for row in types])
    np.testing.assert_array_equal(m.level_values(types), deltas)
    s = (1 / deltas).sum(axis=1) + 1 / states[:, 1]
    np.testing.assert_allclose(-welfare, states[:, 0] ** 2 / (2 * s), rtol=1e-13)


def test_second_stage_beats_every_feasible_perturbation():
    m = SMALL
    rng = np.random.default_rng(5)
    types = m.sample_types(rng, 50)
    states = m.sample_states(rng, 50)
    o2 = m.second_stage(0, types, states)
    best = m.valuations(types, 0, o2, states).sum(axis=1) - m.cost(0, o2, states)
    for _ in range(20):
        z = rng.normal(size=o2.shape)
        z -= z.mean(axis=1, keepdims=True)  # keeps the balance constraint
        other = o2 + 0.1 * z
        w = m.valuations(types, 0, other, states).sum(axis=1) - m.cost(0, other, states)
        assert np.all(w < best)


def test_sampled_types_follow_the_supertypes():
    m = SMALL
    types = m.sample_types(np.random.default_rng(11), 100_000)
    bids = m.supertype_bids()
    for i in range(m.n_players):
        freq = np.bincount(types[:, i], minlength=m.n_types) / types.shape[0]
        se = np.sqrt(bids[i] * (1 - bids[i]) / types.shape[0])
        assert np.all(np.abs(freq - bids[i]) <= 5 * se + 1e-12)


def test_state_support_lists_the_product_law():
    states, probs = SMALL.state_support()
    assert states.shape == (4, 2)
    assert math.isclose(probs.sum(), 1.0)
    assert math.isclose(probs @ states[:, 0] ** 2, SMALL.shortage.moment(2))
    assert math.isclose(probs @ states[:, 1], SMALL.reserve.mean())


def test_explicit_type_space_and_zero_probability_values():
    theta = Supertype([1.0, 2.0, 8.0], [0.5, 0.5, 0.0])
    m = DemandResponseMarket([theta], reserve=1.0, type_values=[4.0, 2.0, 1.0])
    np.testing.assert_array_equal(m.supertype_bids(), [[0.0, 0.5, 0.5]])
    default = DemandResponseMarket([theta], reserve=1.0)
    np.testing.assert_array_equal(default.type_values, [1.0, 2.0, 8.0])
    np.testing.assert_array_equal(default.levels[0], [1.0, 2.0, 8.0])
    assert math.isclose(m.expected_social_cost(), default.expected_social_cost(), rel_tol=1e-15)


def test_results_do_not_depend_on_the_cache():
    m = heterogeneous_market(20, 4, seed=1)
    bids = m.supertype_bids()
    first = m.optimal_welfare(bids)
    other = bids.copy()
    other[0] = np.roll(other[0], 1)
    m.optimal_welfare(other)
    assert m.optimal_welfare(bids) == first
    fresh = heterogeneous_market(20, 4, seed=1)
    assert fresh.optimal_welfare(bids) == first


def test_pickle_round_trip_keeps_the_numbers():
    """Markets travel to process-pool workers for parameter sweeps."""
    m = heterogeneous_market(12, 4, seed=8)
    e = m.expectations()
    back = pickle.loads(pickle.dumps(m))
    assert back.expected_social_cost() == e.social_cost
    np.testing.assert_array_equal(back.expected_payments(), e.payment_received)
    with pytest.raises(ValueError):
        e.payment_received[0] = 0.0  # results are read-only


# ----- posted price -----
def test_posted_price_is_vectorized():
    prices = np.linspace(0.0, 2.0, 12).reshape(3, 4)
    got = SMALL.posted_price_social_cost(prices)
    assert got.shape == (3, 4)
    for p, c in zip(prices.ravel(), got.ravel(), strict=True):
        assert c == SMALL.posted_price_social_cost(float(p))
    assert isinstance(SMALL.posted_price_social_cost(0.5), float)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_posted_price_agrees_with_numerical_minimization(seed):
    m = heterogeneous_market(8, 5, seed, shortage=Supertype([0.5, 1.0, 2.0], [0.2, 0.5, 0.3]))
    opt = m.best_posted_price()
    res = minimize_scalar(
        lambda p: m.posted_price_social_cost(p),
        bounds=(0.0, 10.0),
        method="bounded",
        options={"xatol": 1e-12},
    )
    assert math.isclose(opt.price, res.x, rel_tol=1e-6)
    assert opt.social_cost <= res.fun + 1e-15
    assert math.isclose(opt.optimal_social_cost, m.expected_social_cost(), rel_tol=1e-15)
    # posted prices cannot beat the optimal dispatch; with random costs they lose strictly
    assert opt.gap > 1e-6 * opt.social_cost


def test_posted_price_matches_the_optimum_when_nothing_is_random():
    m = DemandResponseMarket([1.0, 2.0, 5.0], reserve=3.0, shortage=2.0)
    opt = m.best_posted_price()
    s = 1 + 1 / 2 + 1 / 5 + 1 / 3
    assert math.isclose(opt.price, 2.0 / s, rel_tol=1e-14)
    assert abs(opt.gap) <= 1e-14 * opt.social_cost


# ----- scale -----
def test_large_market_identities_and_step_halving():
    """n = 1000, 16 levels: shares sum to one, costs add up, and a finer rule agrees."""
    m = heterogeneous_market(1000, 16, seed=4)
    e = m.expectations()
    fine = DemandResponseMarket(
        m.providers, m.reserve, m.shortage, quadrature=LaplaceQuadrature(step=0.1, eps=1e-20)
    ).expectations()
    assert math.isclose(e.curtailment.sum() + e.reserve_output, 1.0, rel_tol=1e-13)
    assert math.isclose(e.provider_cost.sum() + e.reserve_cost, e.social_cost, rel_tol=1e-13)
    assert math.isclose(e.social_cost, fine.social_cost, rel_tol=1e-13)
    np.testing.assert_allclose(e.payment_received, fine.payment_received, rtol=1e-12)
    np.testing.assert_allclose(e.utility, fine.utility, rtol=1e-12)
    assert np.all(e.utility > 0)
    assert math.isclose(e.planner_budget, -e.payment_received.sum())


def test_large_market_agrees_with_monte_carlo():
    m = heterogeneous_market(200, 16, seed=9, shortage=Supertype([0.5, 1.0, 1.5], [0.3, 0.4, 0.3]))
    e = m.expectations()
    mc = m.monte_carlo(20_000, seed=2)
    assert mc.days == 20_000
    assert abs(mc.social_cost - e.social_cost) <= 4 * mc.social_cost_se
    z_pay = (mc.payment_received - e.payment_received) / mc.payment_received_se
    z_cur = (mc.curtailment - e.curtailment) / mc.curtailment_se
    assert np.max(np.abs(z_pay)) < 5 and np.max(np.abs(z_cur)) < 5


def test_monte_carlo_detects_a_wrong_expectation():
    """The Monte Carlo comparison has power: a 5 % error in the payments is outside 5 SE."""
    m = heterogeneous_market(50, 8, seed=3)
    mc = m.monte_carlo(20_000, seed=5)
    z = (mc.payment_received - 1.05 * m.expected_payments()) / mc.payment_received_se
    assert np.max(np.abs(z)) > 5


def test_monte_carlo_is_reproducible():
    a = SMALL.monte_carlo(1000, seed=4)
    b = SMALL.monte_carlo(1000, seed=4)
    assert a.social_cost == b.social_cost
    np.testing.assert_array_equal(a.payment_received, b.payment_received)


def test_deviation_payoffs_for_a_large_type_space_shape():
    m = heterogeneous_market(30, 3, seed=6)
    c = m.deviation_payoffs(m.supertype_bids(), 3)
    assert c.shape == (3, 3) == (m.type_counts[3],) * 2
    bids = m.supertype_bids()
    assert math.isclose(bids[3, :3] @ np.diag(c), m.expected_valuations(bids)[3], rel_tol=1e-12)


# ----- bad input -----
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(providers=[Supertype([1.0, -1.0], [0.5, 0.5])], reserve=1.0),
            r"providers\[0\] has non-positive cost parameter -1\.0",
        ),
        (
            dict(providers=[2.0, 0.0], reserve=1.0),
            r"providers\[1\] has non-positive cost parameter 0\.0",
        ),
        (dict(providers=[2.0, float("nan")], reserve=1.0), r"providers\[1\] = nan is not finite"),
        (dict(providers=[2.0], reserve=-3.0), r"reserve has non-positive cost parameter -3\.0"),
        (dict(providers=[2.0], reserve=1.0, shortage=float("inf")), r"shortage = inf"),
        (dict(providers=[], reserve=1.0), "at least one provider"),
        (dict(providers=Supertype([1.0], [1.0]), reserve=1.0), "sequence of Supertypes"),
        (dict(providers=["a"], reserve=1.0), r"providers\[0\] must be a Supertype or a number"),
        (
            dict(providers=[2.0], reserve=1.0, type_values=[1.0, 3.0]),
            r"providers\[0\] value 2\.0 is not among its levels",
        ),
        (dict(providers=[2.0], reserve=1.0, type_values=[2.0, -1.0]), r"type_values\[1\] = -1\.0"),
        (dict(providers=[2.0], reserve=1.0, type_values=[2.0, 2.0]), r"repeated value 2\.0"),
        (dict(providers=[2.0], reserve=1.0, type_values=[[[2.0]]]), r"type_values\[0\].*1-D"),
        (
            dict(providers=[2.0], reserve=1.0, type_values=[[2.0], [3.0]]),
            r"one array of levels per provider \(1\), got 2",
        ),
        (
            dict(providers=[2.0, 3.0], reserve=1.0, type_values=[[2.0], [2.0]]),
            r"providers\[1\] value 3\.0 is not among its levels",
        ),
    ],
)
def test_bad_market_names_the_offender(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DemandResponseMarket(**kwargs)


def test_bad_bids_types_states_and_players():
    m = SMALL
    bids = m.supertype_bids()
    with pytest.raises(ValueError, match=r"shape \(3, 2\) .* got shape \(2, 2\)"):
        m.optimal_welfare(bids[:2])
    wrong = bids.copy()
    wrong[1, 0] += 0.1
    with pytest.raises(ValueError, match=r"player 1 sums to 1\.1"):
        m.optimal_welfare(wrong)
    wrong = bids.copy()
    wrong[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"player 2: probability of type 0 is nan"):
        m.expected_valuations(wrong)
    wrong = bids.copy()
    wrong[0, :2] = [1.5, -0.5]
    with pytest.raises(ValueError, match=r"player 0: probability of type 1 is -0\.5"):
        m.first_stage(wrong)
    # provider 2 has a single level: mass on a second type is outside its type space
    wrong = bids.copy()
    wrong[2] = [0.5, 0.5]
    with pytest.raises(ValueError, match=r"player 2 gives probability 0\.5 to type 1, outside"):
        m.optimal_welfare(wrong)
    # a ragged row that is not a pmf over the provider's own levels
    with pytest.raises(ValueError, match=r"bids\[1\] must be a pmf over player 1's 2 types"):
        m.optimal_welfare([[0.5, 0.5], [1.0], [1.0]])
    with pytest.raises(ValueError, match=r"player 1 sums to 0\.8999"):
        m.optimal_welfare([[0.5, 0.5], [0.2, 0.7], [1.0]])
    ragged = [[0.5, 0.5], [0.3, 0.7], [1.0]]
    assert m.optimal_welfare(ragged) == m.optimal_welfare(bids)
    with pytest.raises(ValueError, match="player 3 is out of range"):
        m.optimal_welfare_without(bids, 3)
    with pytest.raises(ValueError, match="player must be an integer"):
        m.deviation_payoffs(bids, 1.0)
    states = np.array([[1.0, 1.0]])
    with pytest.raises(ValueError, match=r"types\[0, 2\] = 1 is outside provider 2's levels"):
        m.second_stage(0, np.array([[0, 1, 1]]), states)
    with pytest.raises(ValueError, match=r"shape \(L, 3\), got \(3,\)"):
        m.second_stage(0, np.array([0, 1, 0]), states)
    with pytest.raises(ValueError, match="integer type indices"):
        m.second_stage(0, np.array([[0.0, 1.0, 0.0]]), states)
    with pytest.raises(ValueError, match="pass states"):
        m.second_stage(0, np.array([[0, 1, 0]]))
    with pytest.raises(ValueError, match=r"states must have shape \(1, 2\), got \(2, 2\)"):
        m.second_stage(0, np.array([[0, 1, 0]]), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"states\[0, 1\] = 0\.0 is not positive"):
        m.second_stage(0, np.array([[0, 1, 0]]), np.array([[1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"states\[0, 0\] = nan is not finite"):
        m.second_stage(0, np.array([[0, 1, 0]]), np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"o2 must have shape \(L, 4\)"):
        m.cost(0, np.ones((1, 3)), states)
    with pytest.raises(ValueError, match="o2 has 2 days but types has 1"):
        m.valuations(np.array([[0, 1, 0]]), 0, np.ones((2, 4)), states)
    with pytest.raises(ValueError, match=r"deltas\[0, 1\] = -2\.0 is not a positive"):
        m.dispatch([[1.0, -2.0, 1.0]], [1.0], [1.0])
    with pytest.raises(ValueError, match=r"price nan is not finite"):
        m.posted_price_social_cost([0.1, np.nan])
    with pytest.raises(ValueError, match="days must be an integer >= 2"):
        m.monte_carlo(1)
    with pytest.raises(ValueError, match="cannot remove the only provider"):
        DemandResponseMarket([1.0], reserve=1.0).without(0)


def test_quadrature_settings_are_validated():
    with pytest.raises(ValueError, match="step must be in"):
        LaplaceQuadrature(step=0.0)
    with pytest.raises(ValueError, match="eps must be in"):
        LaplaceQuadrature(eps=0.1)
    with pytest.raises(ValueError, match="quadrature must be a LaplaceQuadrature"):
        DemandResponseMarket([1.0], reserve=1.0, quadrature="fine")


def test_point_mass_provider_like_figure_3():
    """A provider whose cost is always 4 among beta-prime providers: payment > own cost."""
    others = [betaprime_supertype(1.0, 2.0, 8)] * 9
    m = DemandResponseMarket([point_mass(4.0), *others], reserve=betaprime_supertype(1.0, 2.0, 8))
    e = m.expectations()
    assert e.payment_received[0] > e.provider_cost[0] > 0
    np.testing.assert_allclose(e.payment_received[1:], e.payment_received[1], rtol=1e-13)
