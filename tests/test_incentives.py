"""Incentives side by side: exact utilities against enumeration, common random numbers, signs."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from dr_reference import profiles, social_cost, solve_dispatch
from scipy.optimize import minimize_scalar

from stochmech.markets.demand_response import DemandResponseMarket
from stochmech.markets.demand_response.incentives import (
    SCHEMES,
    Lie,
    compare_incentives,
    default_lies,
    discovered_price,
    incentive_market,
    schemes_for,
)
from stochmech.schemes import PayAsBid, PostedPrice
from stochmech.simulation import simulate
from stochmech.strategies import Truthful
from stochmech.supertype import Supertype, point_mass

TYPES = np.array([0.5, 1.0, 2.0, 3.0])
SMALL = DemandResponseMarket(
    [
        Supertype([0.5, 1.0, 2.0], [0.3, 0.4, 0.3]),
        Supertype([1.0, 3.0], [0.6, 0.4]),
        Supertype([0.5, 2.0], [0.5, 0.5]),
    ],
    reserve=Supertype([1.0, 2.0], [0.4, 0.6]),
    shortage=Supertype([0.5, 1.5], [0.5, 0.5]),
    type_values=TYPES,
)


# ----- a literal reference, by enumeration of every profile and state -----
def _law(pmf):
    return Supertype(TYPES, pmf)


def _reference_utilities(market, declared, coupling, player):
    """The liar's expected utility under each scheme, literally from the definitions."""
    theta = market.supertype_bids()
    others = [_law(theta[j]) for j in range(market.n_players) if j != player]
    bids = [_law(row) for row in theta]
    bids[player] = _law(declared)
    reserve, shortage = market.reserve, market.shortage
    # mechanism: p^F = W*(bids_-i) - (W*(bids) - nu_i(bids)), eq. (5)
    w = -social_cost(bids, reserve, shortage)
    w_without = -social_cost(bids[:player] + bids[player + 1 :], reserve, shortage)
    nu = 0.0
    for prob, deltas, d, ds in profiles(bids, reserve, shortage):
        nu += prob * -0.5 * deltas[player] * solve_dispatch(deltas, d, ds)[player] ** 2
    first = w_without - (w - nu)
    mech = pab = 0.0
    for t in range(TYPES.size):
        for s in range(TYPES.size):
            if coupling[t, s] == 0:
                continue
            for prob, deltas, d, ds in profiles(others, reserve, shortage):
                profile = list(deltas)
                profile.insert(player, TYPES[s])
                x = solve_dispatch(profile, d, ds)[player]
                v_true, v_bid = -0.5 * TYPES[t] * x**2, -0.5 * TYPES[s] * x**2
                weight = coupling[t, s] * prob
                mech += weight * (v_true - first - (v_bid - nu))  # eqs. (14)-(15), no penalty
                pab += weight * (-v_bid - -v_true)  # paid the reported cost
    price = _best_price(bids, reserve, shortage)
    true = market.providers[player]
    posted = sum(
        q * (price * (price / v) - 0.5 * v * (price / v) ** 2)
        for v, q in zip(true.values, true.probs, strict=True)
    )
    return {"mechanism": mech, "posted price": posted, "pay as bid": pab}


def _best_price(laws, reserve, shortage):
    """Vertex of the enumerated posted-price cost, a quadratic in the price (three points)."""
    c0, c1, c2 = (_posted_cost(laws, reserve, shortage, p) for p in (0.0, 1.0, 2.0))
    a, b = (c2 - 2 * c1 + c0) / 2, (4 * c1 - c2 - 3 * c0) / 2
    return -b / (2 * a)


def _posted_cost(laws, reserve, shortage, price):
    total = 0.0
    for prob, deltas, d, ds in profiles(laws, reserve, shortage):
        x = [price / de for de in deltas]
        total += prob * (sum(0.5 * de * xi**2 for de, xi in zip(deltas, x, strict=True))
                         + 0.5 * ds * (d - sum(x)) ** 2)  # fmt: skip
    return total


LIES = [
    Lie.inflate(1),
    Lie.inflate(2),
    Lie.inflate(-1),
    Lie.claim(Supertype([2.0, 3.0], [0.5, 0.5]), "claims high"),
    Lie.claim(point_mass(1.0), "claims 1 always"),
]


def exact_utilities(market, plan, player):
    """Each scheme's long-run utility of ``player`` (others truthful), from the schemes."""
    theta = market.supertype_bids()
    bids = theta.copy()
    kernel = np.eye(market.n_types)
    if plan is not None:
        bids[player] = plan.declared
        kernel = plan.kernel
    return {
        name: scheme.long_run_utility(market, theta[player], bids, player, kernel)
        for name, scheme in schemes_for(market).items()
    }


@pytest.mark.parametrize("player", [0, 2])
@pytest.mark.parametrize("lie", LIES, ids=lambda lie: lie.name)
def test_exact_utilities_agree_with_enumeration(lie, player):
    plan = lie.plan(SMALL, player)
    assert plan.reports_follow_declaration
    got = exact_utilities(SMALL, plan, player)
    ref = _reference_utilities(SMALL, plan.declared, plan.coupling, player)
    for scheme in SCHEMES:
        assert got[scheme] == pytest.approx(ref[scheme], rel=1e-9, abs=1e-13), scheme


def test_truth_is_the_identity_coupling():
    theta = SMALL.supertype_bids()
    truth = exact_utilities(SMALL, None, 1)
    ref = _reference_utilities(SMALL, theta[1], np.diag(theta[1]), 1)
    for scheme in SCHEMES:
        assert truth[scheme] == pytest.approx(ref[scheme], rel=1e-9, abs=1e-13)
    assert truth["pay as bid"] == 0.0
    assert truth["mechanism"] == pytest.approx(SMALL.expectations().utility[1], rel=1e-12)


def test_reports_that_leave_the_declaration_are_minus_infinity_for_the_mechanism():
    plan = Lie.inflate(1, declare="truthful").plan(SMALL, 0)
    assert not plan.reports_follow_declaration
    got = exact_utilities(SMALL, plan, 0)
    assert got["mechanism"] == -math.inf
    truth = exact_utilities(SMALL, None, 0)
    assert got["posted price"] == truth["posted price"]  # same declaration, same price


def test_discovered_price_is_the_best_posted_price_of_the_declared_market():
    theta = SMALL.supertype_bids()
    assert discovered_price(SMALL, theta) == pytest.approx(SMALL.best_posted_price().price)
    high = theta.copy()
    high[0] = [0.0, 0.0, 0.0, 1.0]
    laws = [_law(row) for row in high]
    ref = minimize_scalar(
        lambda p: _posted_cost(laws, SMALL.reserve, SMALL.shortage, p),
        bounds=(0.0, 5.0),
        method="bounded",
        options={"xatol": 1e-12},
    ).x
    assert discovered_price(SMALL, high) == pytest.approx(ref, rel=1e-6)
    exact = _best_price(laws, SMALL.reserve, SMALL.shortage)
    assert discovered_price(SMALL, high) == pytest.approx(exact, rel=1e-12)
    assert discovered_price(SMALL, high) > discovered_price(SMALL, theta)  # claiming high pays


# ----- couplings -----
def test_claim_coupling_marginals_and_the_strategy_draws():
    market = DemandResponseMarket(
        [Supertype([0.5, 1.0, 2.0], [0.2, 0.5, 0.3])],
        reserve=1.0,
        type_values=TYPES,
    )
    p = market.supertype_bids()[0]
    q = np.array([0.0, 0.1, 0.6, 0.3])
    plan = Lie.claim(Supertype(TYPES, q), "claim").plan(market, 0)
    pi = plan.coupling
    np.testing.assert_allclose(pi.sum(axis=1), p, atol=1e-15)
    np.testing.assert_allclose(pi.sum(axis=0), q, atol=1e-15)
    assert np.all(np.triu(np.ones((4, 4)), 0)[pi > 1e-15] == 1)  # never reports a lower type
    rng = np.random.default_rng(0)
    from stochmech.strategies import PlayerContext

    strategy = plan.strategy
    strategy.supertype_bid(PlayerContext(player=0, supertype=p, n_types=4))
    types = rng.choice(4, size=200_000, p=p)
    bids = strategy.type_bids(types, rng)
    joint = np.zeros((4, 4))
    np.add.at(joint, (types, bids), 1.0 / types.size)
    se = np.sqrt(pi * (1 - pi) / types.size)
    assert np.all(np.abs(joint - pi) <= 5 * se + 1e-12)


# ----- every scheme runs through the one engine, on the same days -----
@pytest.mark.parametrize("chunk", [700, 1 << 16])
def test_schemes_see_the_same_days(chunk):
    market = incentive_market(4, 3)
    lie = default_lies(market, 1, claimed=None)[-1]  # a claim: its draws use the player's rng
    strategies = [Truthful() for _ in range(4)]
    strategies[1] = lie.strategy(market, 1)
    theta = market.supertype_bids()
    run = simulate(market, theta, strategies, days=2500, seed=9, chunk=chunk)
    pab = simulate(market, theta, strategies, days=2500, seed=9, chunk=chunk, mechanism=PayAsBid())
    # both dispatch from the same reports on the same days: the same true social cost
    assert pab.average_welfare == run.average_welfare
    np.testing.assert_array_equal(pab.average_valuation, run.average_valuation)
    np.testing.assert_allclose(pab.supertype_bids, run.supertype_bids)
    assert pab.scheme == "pay as bid" and run.scheme == "mechanism"
    other = simulate(market, theta, strategies, days=2500, seed=10, mechanism=PayAsBid())
    assert other.average_welfare != pab.average_welfare


def test_posted_prices_match_the_exact_quadratic():
    market = incentive_market(5, 4)
    theta = market.supertype_bids()
    for price in np.linspace(0.0, 0.1, 5):
        run = simulate(market, theta, days=20_000, seed=2, mechanism=PostedPrice(price), daily=True)
        cost = -run.daily_welfare
        se = cost.std(ddof=1) / math.sqrt(cost.size)
        exact = market.posted_price_social_cost(price)
        assert abs(cost.mean() - exact) <= 5 * se + 1e-15
        assert -run.average_welfare == pytest.approx(cost.mean(), rel=1e-12)
    discovered = simulate(market, theta, days=10, seed=2, mechanism=PostedPrice())
    best = simulate(
        market, theta, days=10, seed=2, mechanism=PostedPrice(market.best_posted_price().price)
    )
    assert discovered.average_utility == pytest.approx(best.average_utility, rel=1e-12)


def test_history_dependent_strategies_run_under_every_scheme():
    from stochmech.strategies import HistoryDependent

    strategies = [HistoryDependent(_echo), Truthful(), Truthful()]
    theta = SMALL.supertype_bids()
    for scheme in (PayAsBid(), PostedPrice(0.5), None):
        a = simulate(SMALL, theta, strategies, days=300, seed=4, mechanism=scheme)
        b = simulate(SMALL, theta, days=300, seed=4, mechanism=scheme)
        np.testing.assert_array_equal(a.average_welfare, b.average_welfare)  # echo = truth


def _echo(own_type, history, rng):
    return own_type


# ----- the comparison -----
@pytest.fixture(scope="module")
def comparison():
    return compare_incentives(
        n_providers=4, levels=4, days=6000, replications=6, seed=3, executor=None
    )


def test_only_the_mechanism_never_rewards_a_lie(comparison):
    assert not comparison.lying_pays("mechanism")
    assert comparison.lying_pays("posted price")
    assert comparison.lying_pays("pay as bid")
    for scheme in SCHEMES:
        assert comparison.consistent(scheme), comparison.table()
    mech = [r for r in comparison.rows if r.scheme == "mechanism"]
    assert all(r.exact_gain < 0 for r in mech)
    # the losses are resolved by the simulation, not just consistent with zero
    for r in mech:
        if math.isfinite(r.exact_gain):
            assert r.gain_without_penalties < -3 * r.gain_without_penalties_se


def test_inflating_pays_under_pay_as_bid_and_the_posted_price(comparison):
    for r in comparison.rows:
        if r.lie.startswith("inflate +") and "true law" not in r.lie and r.scheme != "mechanism":
            assert r.exact_gain > 0
            assert r.simulated_gain > 3 * r.simulated_gain_se


def test_a_naive_inflater_is_caught_and_the_penalties_are_what_stops_it(comparison):
    rows = {r.scheme: r for r in comparison.rows if "true law" in r.lie}
    mech, posted, pab = rows["mechanism"], rows["posted price"], rows["pay as bid"]
    assert mech.exact_gain == -math.inf and mech.verdict == "loses"
    assert mech.penalty_days > 0.5 * comparison.days
    assert mech.simulated_gain < -1.0
    # without its penalties the mechanism would pay this lie exactly what pay as bid pays:
    # same declaration, so the second-stage payment makes up the difference in reported cost
    # (up to the rounding of the penalty sums, which are about 10^5 per day here)
    rounding = 1e-13 * abs(mech.penalty_difference)
    assert mech.gain_without_penalties == pytest.approx(pab.simulated_gain, rel=1e-9, abs=rounding)
    assert pab.simulated_gain > 0
    # a posted price ignores daily reports: exactly no gain, on every replication
    assert posted.exact_gain == 0.0 and posted.simulated_gain == 0.0
    assert posted.verdict == "neutral"


def test_table_and_dict(comparison):
    text = comparison.table()
    assert "mechanism   : lying never pays" in text
    assert "pay as bid  : lying PAYS" in text
    assert "-inf caught" in text
    d = comparison.to_dict()
    assert d["lying_pays"] == {"mechanism": False, "posted price": True, "pay as bid": True}
    caught = [r for r in d["rows"] if r["caught_by_ledger"]]
    assert caught and all(r["exact_gain"] is None for r in caught)


def test_executor_does_not_change_the_numbers():
    kwargs = {"n_providers": 3, "levels": 3, "days": 800, "replications": 2, "seed": 1}
    lies = [Lie.inflate(1)]
    serial = compare_incentives(lies=lies, executor=None, **kwargs)
    with ThreadPoolExecutor(2) as pool:
        threaded = compare_incentives(lies=lies, executor=pool, **kwargs)
    assert serial.rows == threaded.rows


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        Lie(name="x", kind="bribe")
    with pytest.raises(ValueError, match="claimed Supertype"):
        Lie(name="x", kind="claim")
    with pytest.raises(ValueError, match="steps"):
        Lie.inflate(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not in the type space"):
        Lie.claim(point_mass(7.0), "x").plan(SMALL, 0)
    with pytest.raises(ValueError, match=r"player must be in 0\.\.2"):
        compare_incentives(SMALL, player=5, executor=None)
    with pytest.raises(ValueError, match="replications"):
        compare_incentives(SMALL, replications=0, executor=None)
    with pytest.raises(ValueError, match="executor"):
        compare_incentives(SMALL, days=10, replications=2, executor="cluster")
    with pytest.raises(ValueError, match="price"):
        PostedPrice(math.nan)
