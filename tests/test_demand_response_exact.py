"""Exact expectations of the demand-response market against brute-force enumeration."""

import itertools
import math
from fractions import Fraction

import dr_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog

from stochmech.markets.demand_response import DemandResponseMarket
from stochmech.supertype import Supertype

RTOL = 1e-9


@st.composite
def laws(draw, lo_exp, hi_exp, max_size):
    """A finite law on values 10**u, u in [lo_exp, hi_exp] (distinct), some zero probabilities."""
    size = draw(st.integers(1, max_size))
    exps = draw(st.lists(st.floats(lo_exp, hi_exp), min_size=size, max_size=size, unique=True))
    values = np.unique(10.0 ** np.array(exps))
    weights = np.array(draw(st.lists(st.floats(0, 1), min_size=values.size, max_size=values.size)))
    if weights.sum() < 1e-3:
        weights[0] = 1.0
    return Supertype(values, weights / weights.sum())


@st.composite
def small_markets(draw, max_players=3, spread=2.0):
    n = draw(st.integers(1, max_players))
    providers = [draw(laws(-spread, spread, 3)) for _ in range(n)]
    reserve = draw(laws(-spread, spread, 2))
    shortage = draw(laws(-1.0, 0.5, 2))
    return providers, reserve, shortage


def close(a, b, rtol=RTOL):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return bool(np.all(np.abs(a - b) <= rtol * np.abs(b)))


@given(small_markets())
def test_truthful_expectations_match_enumeration(market_args):
    providers, reserve, shortage = market_args
    m = DemandResponseMarket(providers, reserve, shortage)
    e = m.expectations()
    assert close(e.social_cost, ref.social_cost(providers, reserve, shortage))
    assert close(e.provider_cost, ref.provider_costs(providers, reserve, shortage))
    assert close(e.curtailment, ref.curtailments(providers, reserve, shortage))
    assert close(e.payment_received, ref.payments_received(providers, reserve, shortage))
    # individual rationality: utility = W*(theta) - W*(theta_-i) > 0
    assert np.all(e.utility > 0)


def _exact_rational_expectations(providers, reserve, shortage):
    """E[d^2/(2S)] and E[d^2/2 (1/S_-i - 1/S + v_i/S^2)] in exact rational arithmetic."""

    def support(theta):
        return [
            (Fraction(float(v)), Fraction(float(p)))
            for v, p in zip(theta.values, theta.probs, strict=True)
            if p > 0
        ]

    n = len(providers)
    cost = Fraction(0)
    pay = [Fraction(0)] * n
    laws = [support(p) for p in providers]
    combos = itertools.product(*laws, support(shortage), support(reserve))
    for *types, (d, pd), (ds, ps) in combos:
        prob = pd * ps
        for _, p in types:
            prob *= p
        v = [1 / delta for delta, _ in types]
        s = sum(v) + 1 / ds
        cost += prob * d * d / (2 * s)
        for i in range(n):
            pay[i] += prob * d * d / 2 * (1 / (s - v[i]) - 1 / s + v[i] / s**2)
    return float(cost), np.array([float(x) for x in pay])


@given(small_markets(max_players=2, spread=3.0))
def test_agreement_with_exact_rational_arithmetic_is_near_machine_precision(market_args):
    """The float reference above loses digits to cancellation; exact rationals do not."""
    providers, reserve, shortage = market_args
    m = DemandResponseMarket(providers, reserve, shortage)
    cost, pay = _exact_rational_expectations(providers, reserve, shortage)
    assert close(m.expected_social_cost(), cost, rtol=1e-14)
    assert close(m.expected_payments(), pay, rtol=1e-14)


@given(small_markets(spread=3.0))
def test_extreme_cost_spreads_match_enumeration(market_args):
    """Cost parameters spread over six decades (1e-3 .. 1e3)."""
    providers, reserve, shortage = market_args
    m = DemandResponseMarket(providers, reserve, shortage)
    assert close(m.expected_social_cost(), ref.social_cost(providers, reserve, shortage))
    assert close(m.expected_payments(), ref.payments_received(providers, reserve, shortage))


@given(small_markets())
def test_payments_equal_the_generic_vcg_formula_through_the_interface(market_args):
    """expected_payments() = -p_i^F, p_i^F = W*(theta_-i) - (W*(theta) - nu_i) (eq. 5)."""
    providers, reserve, shortage = market_args
    m = DemandResponseMarket(providers, reserve, shortage)
    bids = m.supertype_bids()
    w = m.optimal_welfare(bids)
    nu = m.expected_valuations(bids)
    p_f = np.array([m.optimal_welfare_without(bids, i) - (w - nu[i]) for i in range(m.n_players)])
    assert close(-p_f, m.expected_payments(), rtol=1e-12)
    assert close(-w, m.expected_social_cost(), rtol=1e-14)


@given(small_markets(), st.data())
def test_interface_expectations_for_arbitrary_bids(market_args, data):
    """W*, W*_-i and nu for supertype bids that differ from the truth (any pmf over Delta)."""
    providers, reserve, shortage = market_args
    m = DemandResponseMarket(providers, reserve, shortage)
    rows = []
    for i in range(m.n_players):
        k = int(m.type_counts[i])  # each provider bids over its own levels
        w = np.array(data.draw(st.lists(st.floats(0, 1), min_size=k, max_size=k)))
        w[data.draw(st.integers(0, k - 1))] += 0.5
        rows.append(w / w.sum())
    bids = rows  # one pmf per provider, of its own length
    bidders = [Supertype(m.levels[i], row) for i, row in enumerate(bids)]
    assert close(m.optimal_welfare(bids), -ref.social_cost(bidders, reserve, shortage))
    assert close(m.expected_valuations(bids), -ref.provider_costs(bidders, reserve, shortage))
    for i in range(m.n_players):
        assert close(
            m.optimal_welfare_without(bids, i), ref.welfare_without(bidders, reserve, shortage, i)
        )


@given(small_markets(), st.data())
def test_deviation_payoffs_match_enumeration(market_args, data):
    providers, reserve, shortage = market_args
    m = DemandResponseMarket(providers, reserve, shortage)
    bids = m.supertype_bids()
    i = data.draw(st.integers(0, m.n_players - 1))
    got = m.deviation_payoffs(bids, i)
    want = ref.deviation_payoffs(m.levels, bids, i, reserve, shortage)
    k = int(m.type_counts[i])
    assert got.shape == (k, k) == (m.levels[i].size,) * 2
    assert close(got, want)
    # the truthful coupling recovers nu_i: sum_t theta_i(t) C(t, t)
    assert close(bids[i, :k] @ np.diag(got), m.expected_valuations(bids)[i], rtol=1e-12)


def _transport_gain(m, true_pmf, bids, i):
    """Theorem 1's best stationary deviation gain: an LP over couplings.

    See docs/modelling.md ("The best stationary deviation").
    """
    c = m.deviation_payoffs(bids, i)
    k = int(m.type_counts[i])
    a_eq = np.zeros((2 * k, k * k))
    for t in range(k):
        a_eq[t, t * k : (t + 1) * k] = 1.0  # row sums: true type marginal
        a_eq[k + t, t::k] = 1.0  # column sums: bid marginal
    b_eq = np.concatenate([true_pmf[:k], bids[i, :k]])
    # HiGHS's default feasibility tolerance (1e-7) may drop a type of probability 1e-8 and
    # report a spurious gain of about 1e-9: ask for marginals exact to 1e-10
    tight = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
    res = linprog(-c.ravel(), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs", options=tight)
    assert res.status == 0
    rho = -res.fun
    w_hat = m.optimal_welfare(bids)
    nu_hat = m.expected_valuations(bids)[i]
    true_bids = bids.copy()
    true_bids[i] = true_pmf
    return rho + w_hat - nu_hat - m.optimal_welfare(true_bids), abs(w_hat)


@given(small_markets(), st.data())
def test_theorem1_no_stationary_deviation_gains(market_args, data):
    """sup over stationary misreports of the gain is <= 0, and = 0 when bidding the truth."""
    providers, reserve, shortage = market_args
    m = DemandResponseMarket(providers, reserve, shortage)
    i = data.draw(st.integers(0, m.n_players - 1))
    k = int(m.type_counts[i])
    bids = m.supertype_bids()
    true_pmf = bids[i].copy()
    gain, scale = _transport_gain(m, true_pmf, bids, i)
    assert abs(gain) <= 1e-8 * scale
    lie = np.array(data.draw(st.lists(st.floats(0, 1), min_size=k, max_size=k))) + 1e-3
    bids[i, :k] = lie / lie.sum()
    gain, scale = _transport_gain(m, true_pmf, bids, i)
    assert gain <= 1e-8 * scale


def test_theorem1_lp_keeps_a_type_of_tiny_probability():
    """A provider whose highest cost has probability 1e-8: the LP must keep that mass (with
    default tolerances HiGHS dropped it and reported a gain of 9.1e-10 > 1e-8 * |W*|)."""
    m = DemandResponseMarket([Supertype([0.1, 1.0, 10**0.5], [1 - 1e-8, 0.0, 1e-8])], 1.0, 1.0)
    bids = m.supertype_bids()
    gain, scale = _transport_gain(m, bids[0].copy(), bids, 0)
    assert abs(gain) <= 1e-8 * scale


def test_theorem1_lp_detects_a_wrong_payoff_table():
    """The LP check can fail: a table that charges the bid's cost, not the true cost, gains."""
    m = DemandResponseMarket(
        [Supertype([0.5, 2.0], [0.5, 0.5]), Supertype([1.0, 3.0], [0.3, 0.7])], reserve=1.0
    )

    class BidCost(DemandResponseMarket):
        def deviation_payoffs(self, supertype_bids, player):
            c = super().deviation_payoffs(supertype_bids, player)
            return np.broadcast_to(np.diag(c), c.shape).copy()  # C(t, s) := C(s, s)

    wrong = BidCost(m.providers, m.reserve, m.shortage)
    bids = m.supertype_bids()
    true_pmf = bids[0].copy()
    bids[0] = np.eye(m.n_types)[0]  # claim the lowest cost always (provider 0 has 2 levels)
    assert _transport_gain(m, true_pmf, bids, 0)[0] <= 1e-12
    assert _transport_gain(wrong, true_pmf, bids, 0)[0] > 1e-3


@given(small_markets(), st.floats(-1.0, 3.0))
def test_posted_price_matches_enumeration(market_args, price):
    providers, reserve, shortage = market_args
    m = DemandResponseMarket(providers, reserve, shortage)
    want = ref.posted_price_cost(providers, reserve, shortage, price)
    assert math.isclose(m.posted_price_social_cost(price), want, rel_tol=1e-12, abs_tol=1e-15)


@given(small_markets())
def test_interface_day_by_day_averages_to_the_expectations(market_args):
    """Enumerate Delta^n x states through second_stage/valuations/cost and state_support."""
    providers, reserve, shortage = market_args
    m = DemandResponseMarket(providers, reserve, shortage)
    bids = m.supertype_bids()
    o1 = m.first_stage(bids)
    states, state_probs = m.state_support()
    support = [np.flatnonzero(row > 0) for row in bids]
    types = np.array(list(itertools.product(*support)))
    type_probs = np.prod(bids[np.arange(m.n_players), types], axis=1)
    welfare = 0.0
    nu = np.zeros(m.n_players)
    for state, ps in zip(states, state_probs, strict=True):
        st_batch = np.repeat(state[None], types.shape[0], axis=0)
        o2 = m.second_stage(o1, types, st_batch)
        v = m.valuations(types, o1, o2, st_batch)
        c = m.cost(o1, o2, st_batch)
        welfare += ps * type_probs @ (v.sum(axis=1) - c)
        nu += ps * type_probs @ v
        # the dispatch is the optimum of (41): it matches the KKT solution and balances
        for row, z in zip(types, o2, strict=True):
            own = [m.levels[j][t] for j, t in enumerate(row)]  # each provider's own level
            want = ref.solve_dispatch(own, state[0], state[1])
            assert np.allclose(z, want, rtol=1e-12, atol=1e-15)
            assert math.isclose(z.sum(), state[0], rel_tol=1e-12, abs_tol=1e-15)
    assert close(m.optimal_welfare(bids), welfare)
    assert close(m.expected_valuations(bids), nu)


def test_without_is_the_leave_one_out_game():
    providers = [
        Supertype([0.5, 2.0], [0.5, 0.5]),
        Supertype([1.0, 3.0], [0.3, 0.7]),
        Supertype([4.0], [1.0]),
    ]
    shortage = Supertype([0.5, 1.5], [0.5, 0.5])
    m = DemandResponseMarket(providers, Supertype([1.0, 2.0], [0.4, 0.6]), shortage)
    bids = m.supertype_bids()
    for i in range(3):
        sub = m.without(i)
        rest = [lv for j, lv in enumerate(m.levels) if j != i]
        assert all(np.array_equal(a, b) for a, b in zip(sub.levels, rest, strict=True))
        want = sub.optimal_welfare(np.delete(bids, i, axis=0))
        assert math.isclose(m.optimal_welfare_without(bids, i), want, rel_tol=1e-13)


def test_single_provider_closed_form():
    """One provider, point masses: payment = d^2/2 (1/v_s - 1/S + v/S^2), S = v + v_s."""
    delta, delta_s, d = 2.0, 3.0, 1.5
    m = DemandResponseMarket([delta], reserve=delta_s, shortage=d)
    v, vs = 1 / delta, 1 / delta_s
    s = v + vs
    assert math.isclose(m.expected_social_cost(), d**2 / (2 * s), rel_tol=1e-14)
    want = d**2 / 2 * (1 / vs - 1 / s + v / s**2)
    assert math.isclose(m.expected_payments()[0], want, rel_tol=1e-14)


@pytest.mark.parametrize("step", [0.3, 0.4, 0.5, 0.6])
def test_quadrature_error_respects_the_a_priori_bound(step):
    from stochmech.markets._inverse_sum import LaplaceQuadrature

    providers = [Supertype([0.01, 1.0, 100.0], [0.2, 0.5, 0.3]), Supertype([0.5, 5.0], [0.5, 0.5])]
    reserve = Supertype([0.1, 10.0], [0.5, 0.5])
    quad = LaplaceQuadrature(step=step)
    m = DemandResponseMarket(providers, reserve, quadrature=quad)
    want = ref.social_cost(providers, reserve, Supertype([1.0], [1.0]))
    err = abs(m.expected_social_cost() / want - 1)
    assert err <= quad.discretization_bound() + 1e-14
    want_cost = ref.provider_costs(providers, reserve, Supertype([1.0], [1.0]))
    err2 = np.max(np.abs(m.expectations().provider_cost / want_cost - 1))
    assert err2 <= quad.discretization_bound() + 1e-14


@given(laws(-2.0, 2.0, 3), laws(-2.0, 2.0, 2), st.integers(2, 4), st.integers(0, 1))
def test_identical_providers_are_computed_once_and_exactly(law, other, copies, where):
    """Repeated providers share one quadrature row (counted c times): every expectation,
    including the leave-one-out gaps of a repeated provider, matches enumeration."""
    providers = [law] * copies
    providers.insert(where * copies, other)
    reserve = Supertype([1.0, 2.0], [0.5, 0.5])
    shortage = Supertype([1.0], [1.0])
    m = DemandResponseMarket(providers, reserve, shortage)
    e = m.expectations()
    assert close(e.social_cost, ref.social_cost(providers, reserve, shortage))
    assert close(e.provider_cost, ref.provider_costs(providers, reserve, shortage))
    assert close(e.payment_received, ref.payments_received(providers, reserve, shortage))
