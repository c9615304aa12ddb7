"""Truthful participants' risk: exact frequency-test tails against a brute-force reference and
against the ledger run on simulated truthful paths."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multinomial

import stochmech
from stochmech import BidLedger, PowerPenalty
from stochmech.audit import flag_probabilities, truthful_risk
from stochmech.audit.risk import sample_truthful_bids


def brute_flag_probability(theta: np.ndarray, day: int, gamma: float) -> float:
    """P(max_t |N_t/l - theta_t| >= r(l)) by enumerating every count vector of the multinomial,
    each decided with the ledger's floating-point expression and the core's r(l)."""
    k = theta.size
    r = stochmech.window(day, gamma)
    total = 0.0
    for head in itertools.product(range(day + 1), repeat=k - 1):
        if sum(head) > day:
            continue
        counts = np.array([*head, day - sum(head)])
        stat = max(
            abs(float(c) / float(day) - float(p)) for c, p in zip(counts, theta, strict=True)
        )
        if stat >= r:
            total += float(multinomial.pmf(counts, day, theta))
    return total


def brute_binary(theta: np.ndarray, days: int, gamma: float) -> np.ndarray:
    """The same for K = 2, vectorized over counts, for every day 1..days."""
    from scipy.stats import binom

    out = np.zeros(days)
    for day in range(1, days + 1):
        r = stochmech.window(day, gamma)
        c = np.arange(day + 1)
        stat = np.maximum(
            np.abs(c.astype(float) / float(day) - theta[0]),
            np.abs((day - c).astype(float) / float(day) - theta[1]),
        )
        out[day - 1] = binom.pmf(c, day, theta[0])[stat >= r].sum()
    return out


@settings(max_examples=max(3, settings.default.max_examples // 2))
@given(
    p=st.one_of(st.just(0.0), st.just(1.0), st.floats(1e-12, 1.0)),
    gamma=st.sampled_from([0.1, 0.5, 1.0, 2.0]),
)
def test_binary_tails_are_exact(p, gamma):
    theta = np.array([p, 1.0 - p])
    upper, lower, exact = flag_probabilities(theta, np.arange(1, 121), gamma=gamma)
    ref = brute_binary(theta, 120, gamma)
    assert exact
    np.testing.assert_array_equal(upper, lower)
    np.testing.assert_allclose(upper, ref, rtol=1e-9, atol=1e-15)


@settings(max_examples=max(3, settings.default.max_examples // 4))
@given(
    raw=st.lists(st.floats(0.05, 1.0), min_size=3, max_size=4),
    gamma=st.sampled_from([0.5, 1.0]),
)
def test_three_or_four_types_exact_and_bracketed(raw, gamma):
    theta = np.array(raw) / sum(raw)
    days = np.array([1, 2, 3, 5, 8, 13, 21]) if theta.size == 4 else np.arange(1, 31)
    exact_p, exact_lo, exact = flag_probabilities(theta, days, gamma=gamma)
    upper, lower, bounded = flag_probabilities(theta, days, gamma=gamma, exact_days=0)
    assert exact and not bounded
    np.testing.assert_array_equal(exact_p, exact_lo)
    for j, day in enumerate(days):
        ref = brute_flag_probability(theta, int(day), gamma)
        assert exact_p[j] == pytest.approx(ref, rel=1e-9, abs=1e-15)
        assert lower[j] <= ref * (1 + 1e-9) + 1e-15
        assert ref <= upper[j] * (1 + 1e-9) + 1e-15


def test_zero_probability_types_keep_the_exact_binary_case():
    theta = np.array([0.3, 0.0, 0.7])
    days = np.arange(1, 40)
    upper, _, exact = flag_probabilities(theta, days, gamma=0.5)
    assert exact
    ref = [brute_flag_probability(theta, int(d), 0.5) for d in days[:12]]
    np.testing.assert_allclose(upper[:12], ref, rtol=1e-9, atol=1e-15)
    two, _, _ = flag_probabilities([0.3, 0.7], days, gamma=0.5)
    np.testing.assert_allclose(upper, two, rtol=1e-12, atol=0)


def test_point_mass_is_never_flagged():
    upper, lower, exact = flag_probabilities([0.0, 1.0], np.arange(1, 50))
    assert exact and not upper.any() and not lower.any()


def test_expected_penalty_matches_brute_force_sum():
    theta = np.array([0.5, 0.5])
    risk = truthful_risk([theta], 0, 1_000, gamma=0.5)
    ref = brute_binary(theta, 1_000, 0.5)
    jp = np.arange(1, 1_001, dtype=float) ** 1.5
    assert risk.expected_penalty == pytest.approx(float(jp @ ref), rel=1e-9)
    assert risk.expected_flags == pytest.approx(float(ref.sum()), rel=1e-9)
    # the figures quoted in docs/modelling.md (a truthful participant's risk, old default)
    assert round(risk.expected_penalty_per_day, 4) == 0.0795
    assert round(truthful_risk([theta], 0, 10_000, gamma=0.5).expected_penalty_per_day, 4) == 0.0742
    # and at the default gamma = 1
    default = truthful_risk([theta], 0, 1_000)
    ref = brute_binary(theta, 1_000, 1.0)
    assert default.expected_penalty == pytest.approx(float(jp @ ref), rel=1e-9)
    assert round(default.expected_penalty_per_day, 5) == 0.00366


def test_flag_probabilities_match_the_ledger_on_simulated_paths():
    theta = np.array([[0.35, 0.65]])
    days, paths = 150, 3_000
    rng = np.random.default_rng(5)
    hits = np.zeros(days)
    for _ in range(paths):
        bids = sample_truthful_bids(theta, days, rng)
        hits += BidLedger(theta).record(bids).flags[:, 0]
    p, _, _ = flag_probabilities(theta[0], np.arange(1, days + 1))
    se = np.sqrt(p * (1 - p) / paths) + 1e-12
    # per-day agreement within 5 standard errors, and overall
    assert np.all(np.abs(hits / paths - p) <= 5 * se + 1.0 / paths)
    total_se = math.sqrt(float((p * (1 - p)).sum()) / paths) * 3
    assert abs(hits.sum() / paths - p.sum()) <= 5 * total_se


def test_three_type_bounds_bracket_simulation():
    theta = np.array([[0.2, 0.3, 0.5]])
    days, paths = 100, 2_000
    rng = np.random.default_rng(9)
    hits = np.zeros(days)
    for _ in range(paths):
        hits += BidLedger(theta).record(sample_truthful_bids(theta, days, rng)).flags[:, 0]
    up, lo, _ = flag_probabilities(theta[0], np.arange(1, days + 1), exact_days=0)
    exact, _, _ = flag_probabilities(theta[0], np.arange(1, days + 1))
    total = hits.sum() / paths
    se = math.sqrt(total / paths) * 2
    assert lo.sum() - 5 * se <= total <= up.sum() + 5 * se
    assert abs(total - exact.sum()) <= 5 * se


def test_joint_excess_is_added_for_several_players():
    theta = np.array([[0.5, 0.5], [0.2, 0.8]])
    risk = truthful_risk(theta, 1, 300, joint_days=300, paths=400, seed=2)
    assert risk.joint_paths == 400 and risk.joint_days == 300
    assert risk.joint_excess_penalty >= 0 and risk.joint_excess_se >= 0
    # the full event's expected flag count from the ledger, on fresh paths
    rng = np.random.default_rng(11)
    counts = [
        BidLedger(theta).record(sample_truthful_bids(theta, 300, rng)).flags[:, 1].sum()
        for _ in range(600)
    ]
    se = np.std(counts, ddof=1) / math.sqrt(600) + math.sqrt(risk.joint_excess_flags / 400)
    assert abs(np.mean(counts) - risk.expected_flags) <= 5 * se + 0.02


def test_day_one_flag_of_an_unlikely_bid_is_in_the_joint_excess():
    # a type of probability <= 1 - r(1) flags on day 1 through the marginal test
    theta = np.array([[0.2, 0.8], [0.2, 0.8]])
    risk = truthful_risk(theta, 0, 10, joint=False)
    assert risk.flag_probability[0] == pytest.approx(0.2)


def test_penalty_schedule_and_any_flag_after():
    theta = [[0.4, 0.6]]
    base = truthful_risk(theta, 0, 5_000)
    scaled = truthful_risk(theta, 0, 5_000, penalty=PowerPenalty(scale=3.0, exponent=1.5))
    assert scaled.expected_penalty == pytest.approx(3 * base.expected_penalty, rel=1e-12)
    tail = [base.any_flag_after(m) for m in (0, 10, 100, 1_000, 5_000)]
    assert all(a >= b for a, b in itertools.pairwise(tail)) and tail[-1] == 0.0
    assert base.any_flag_after_lower(100) <= base.any_flag_after(100)
    assert base.cumulative_penalty()[-1] == pytest.approx(base.expected_penalty)
    assert "truthful risk of player 0" in str(base)
    assert base.to_dict()["exact"] is True


def test_higher_gamma_lowers_the_risk_and_it_vanishes_when_exponent_below_one_plus_gamma():
    theta = [[0.5, 0.5]]
    per_day = [
        truthful_risk(theta, 0, L, gamma=1.0).expected_penalty_per_day for L in (10**3, 10**5)
    ]
    assert per_day[1] < per_day[0] / 5
    assert truthful_risk(theta, 0, 10**4, gamma=1.0).expected_penalty < (
        truthful_risk(theta, 0, 10**4, gamma=0.5).expected_penalty
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"supertypes": [[0.5, 0.6]]}, "sums to"),
        ({"supertypes": [[0.5, 0.5], [1.0]]}, r"same number of types here, got \[2, 1\]"),
        ({"supertypes": [[np.nan, 1.0]]}, "probability of type 0 is nan"),
        ({"player": 3}, "does not exist"),
        ({"days": 0}, "days must be"),
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": float("inf")}, "gamma"),
        ({"penalty": 3}, "penalty"),
        ({"paths": 1}, "paths"),
        ({"exact_days": -1}, "exact_days"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"supertypes": [[0.5, 0.5], [0.5, 0.5]], "player": 0, "days": 10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        truthful_risk(args.pop("supertypes"), args.pop("player"), args.pop("days"), **args)


@settings(max_examples=max(3, settings.default.max_examples // 4))
@given(
    p=st.sampled_from([0.5, 0.25, 0.2, 0.1, 0.3, 1 / 3, 0.37]),
    gamma=st.sampled_from([0.5, 1.0, 0.1]),
)
def test_boundary_counts_are_decided_like_the_ledger(p, gamma):
    from stochmech.audit.risk import _flag_bounds

    theta = np.array([p, 1.0 - p])
    days = np.arange(1, 301)
    a, b = _flag_bounds(days, gamma, theta)
    for day in (1, 2, 3, 7, 50, 99, 100, 173, 256, 300):
        for c in {a[0, day - 1], a[0, day - 1] + 1, b[0, day - 1] - 1, b[0, day - 1]}:
            if not 0 <= c <= day:
                continue
            bids = np.array([0] * int(c) + [1] * int(day - c))[:, None]
            ledger = BidLedger(theta[None, :], gamma=gamma)
            flagged = bool(ledger.record(bids).flags[-1, 0])
            # type 0's own test: flagged iff the count is at or beyond a boundary
            own = c <= a[0, day - 1] or c >= b[0, day - 1]
            other = (day - c) <= a[1, day - 1] or (day - c) >= b[1, day - 1]
            assert flagged == (own or other), (day, c)


def test_the_core_window_fallback_gives_the_same_boundaries(monkeypatch):
    import stochmech.audit.risk as risk_module

    theta = np.array([0.3, 0.7])
    days = np.arange(1, 3001)
    a, b = risk_module._flag_bounds(days, 0.5, theta)
    calls = []
    original = risk_module.window

    def spy(d, g):
        calls.append(d.size)
        return original(d, g)

    # a wide band sends most days through the core's r(l)
    monkeypatch.setattr(risk_module, "_SENSITIVE", 0.05)
    monkeypatch.setattr(risk_module, "window", spy)
    a2, b2 = risk_module._flag_bounds(days, 0.5, theta)
    assert sum(calls) > 1000
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)


# ----- the joint test's extra risk: simulated, bounded or proved zero, day by day -----


def _detail_excess(theta, player, days, gamma, rng):
    """One truthful path: the days (1-based) on which the ledger flags ``player`` while the
    frequency statistic of its detail output stays below the core's r(l), and the days on
    which the joint statistic reaches r(l)."""
    rec = BidLedger(theta, gamma=gamma).record(sample_truthful_bids(theta, days, rng), detail=True)
    r = stochmech.window(np.arange(1, days + 1), gamma)
    marginal = rec.marginal[:, player] >= r
    joint = rec.joint[:, player] >= r
    assert np.array_equal(rec.flags[:, player], marginal | joint)
    return np.flatnonzero(rec.flags[:, player] & ~marginal) + 1, np.flatnonzero(joint) + 1


@pytest.mark.parametrize("chunk", [1 << 17, 7])
def test_simulated_joint_excess_is_the_dense_references_on_the_same_paths(chunk, monkeypatch):
    from ledger_reference import DenseLedger

    from stochmech.audit import risk as risk_module

    # chunks of 7 days: the ledgers carry over and the uniforms are drawn in the same order
    monkeypatch.setattr(risk_module, "_CHUNK", chunk)
    theta = np.array([[0.5, 0.5], [0.2, 0.8]])
    days, paths, gamma = 60, 150, 0.1
    (path, day), (path1, day1) = risk_module._simulate_excess(
        theta, [0, 1], days, paths, gamma, seed=5
    )
    # the same bids (the simulation draws one path's days in one chunk, path after path)
    rng = np.random.default_rng(5)
    want = {0: set(), 1: set()}
    for k in range(paths):
        bids = sample_truthful_bids(theta, days, rng)
        dense = DenseLedger(theta, gamma).record(bids)
        r = np.array([stochmech.window(int(d), gamma) for d in dense.days])
        for i in (0, 1):
            only = dense.flags[:, i] & ~(dense.marginal[:, i] >= r)
            want[i] |= {(k, int(d)) for d in np.flatnonzero(only)}
    assert set(zip(path.tolist(), day.tolist(), strict=True)) == want[0]
    assert set(zip(path1.tolist(), day1.tolist(), strict=True)) == want[1]
    assert want[0]  # the case has joint-only flags to find


def test_joint_excess_matters_with_few_groups_and_matches_an_independent_simulation():
    # two types each, so two groups: the joint test flags player 0 where the frequency test
    # does not (counts leaning opposite ways in the other player's two groups)
    theta = np.array([[0.5, 0.5], [0.2, 0.8]])
    days, gamma = 300, 0.1
    risk = truthful_risk(theta, 0, days, gamma=gamma, paths=3000, seed=1)
    assert risk.joint_coverage == "simulated" and risk.joint_days == days
    assert risk.joint_covered_days == days and risk.joint_bounded_days == 0
    assert risk.joint_excess_flags > 0.01 and risk.joint_excess_penalty > 0
    rng = np.random.default_rng(99)
    fresh = [len(_detail_excess(theta, 0, days, gamma, rng)[0]) for _ in range(3000)]
    se = math.sqrt(np.var(fresh, ddof=1) / 3000 + risk.joint_excess_flags / 3000)
    assert abs(np.mean(fresh) - risk.joint_excess_flags) <= 5 * se
    assert sum(c > 0 for c in fresh) >= 5  # about 15 paths expected: not a fluke
    # the rigorous bound over every day is above the estimate (by far: Hoeffding is loose)
    assert risk.joint_bound_penalty > risk.joint_excess_penalty + 3 * risk.joint_excess_se
    assert "rigorous bound on its extra penalty" in risk.joint_note
    jp = PowerPenalty()(np.arange(1, days + 1))
    assert risk.expected_penalty == pytest.approx(
        float(jp @ risk.flag_probability) + risk.joint_excess_penalty
    )
    assert risk.expected_flags == pytest.approx(
        risk.flag_probability.sum() + risk.joint_excess_daily.sum()
    )


def test_joint_fire_bound_holds_against_simulation():
    from stochmech.audit import joint_fire_bound

    theta = np.array([[0.5, 0.5], [0.2, 0.8]])
    days, gamma, paths = 400, 0.1, 400
    bound = joint_fire_bound(theta, 0, np.arange(1, days + 1), gamma=gamma)
    rng = np.random.default_rng(3)
    fired = np.zeros(days)
    for _ in range(paths):
        fired[_detail_excess(theta, 0, days, gamma, rng)[1] - 1] += 1
    freq = fired / paths
    # no day where the bound is zero ever sees the joint test fire
    assert not fired[bound == 0].any()
    # per day and cumulatively (a binomial frequency exceeds its p by 5 se rarely)
    assert np.all(freq <= bound + 5 * np.sqrt(np.maximum(bound, 1 / paths) / paths))
    assert freq.sum() <= bound.sum()
    # it decays; with balanced groups (p = 1/2) far below the frequency test's flags
    later = joint_fire_bound(theta, 0, np.array([10**4, 10**5]), gamma=gamma)
    assert later[1] < later[0] < 1e-5
    even = np.array([[0.5, 0.5], [0.5, 0.5]])
    later = joint_fire_bound(even, 0, np.array([10**4, 10**5]))
    freq_later, _, _ = flag_probabilities(even[0], np.array([10**4, 10**5]))
    assert np.all(later < 1e-4 * freq_later)


def test_a_long_horizon_is_simulated_then_bounded_and_says_so():
    theta = np.array([[0.5, 0.5], [0.5, 0.5]])
    risk = truthful_risk(theta, 0, 20_000, gamma=0.5, paths=20, joint_budget=20 * 2_000)
    assert risk.joint_coverage == "simulated + bounded"
    assert risk.joint_days == 2_000 and risk.joint_bounded_days == 18_000
    assert risk.joint_covered_days == 20_000
    assert "simulated on days 1..2000" in risk.joint_note
    assert "bounded on days 2001..20000" in risk.joint_note
    from stochmech.audit import joint_fire_bound

    bound = joint_fire_bound(theta, 0, np.arange(2_001, 20_001), gamma=0.5)
    jp = PowerPenalty()(np.arange(2_001, 20_001))
    assert risk.joint_tail_bound == pytest.approx(float(jp @ bound))
    assert 0 < risk.joint_tail_bound < 1e-3 * risk.frequency_penalty
    assert np.array_equal(risk.joint_excess_daily[2_000:], bound)
    whole = joint_fire_bound(theta, 0, np.arange(1, 20_001), gamma=0.5)
    assert risk.joint_bound_penalty == pytest.approx(
        float(PowerPenalty()(np.arange(1, 20_001)) @ whole)
    )
    assert risk.joint_bound_penalty >= risk.joint_tail_bound
    assert risk.expected_penalty == pytest.approx(
        risk.frequency_penalty + risk.joint_excess_penalty + risk.joint_tail_bound
    )
    assert risk.expected_penalty_lower < risk.expected_penalty
    d = risk.to_dict()
    assert d["joint_coverage"] == "simulated + bounded" and d["joint_bounded_days"] == 18_000
    assert "bounded on days 2001..20000" in str(risk)
    # an explicit joint_days wins over the budget, and the whole horizon fits the default one
    assert truthful_risk(theta, 0, 3_000, paths=2, joint_days=100).joint_days == 100
    assert truthful_risk(theta, 0, 3_000, paths=2).joint_coverage == "simulated"
    # with a lopsided group (p = 0.8) the bound is valid but loose, and stated
    loose = truthful_risk([[0.5, 0.5], [0.2, 0.8]], 0, 20_000, gamma=0.5, paths=2, joint_days=500)
    assert loose.joint_tail_bound > 0.1 * loose.frequency_penalty
    assert f"extra penalty <= {loose.joint_tail_bound:.3g}" in loose.joint_note


@pytest.mark.parametrize(
    "theta, days, why",
    [
        ([[0.5, 0.5], [1.0, 0.0]], 2_000, "one profile for the others"),
        ([[1.0, 0.0], [0.5, 0.5]], 2_000, "one type of positive probability"),
        ([[0.5, 0.5], [0.5, 0.5]], 10, "r(l) exceeds"),
    ],
)
def test_the_joint_test_provably_cannot_add_a_flag(theta, days, why):
    theta = np.array(theta)
    risk = truthful_risk(theta, 0, days, paths=2)
    assert risk.joint_coverage == "proved zero" and why in risk.joint_note
    assert risk.joint_paths == 0 and risk.joint_excess_penalty == 0.0
    assert risk.joint_covered_days == days
    # the claim, checked on the ledger: truthful paths and the most lopsided bids there are
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert len(_detail_excess(theta, 0, days, 1.0, rng)[0]) == 0
    support = [np.flatnonzero(row > 0) for row in theta]
    for bids in (
        np.tile([support[0][0], support[1][0]], (days, 1)),
        np.column_stack([np.arange(days) % support[0].size, np.zeros(days, dtype=int)]),
    ):
        bids[:, 1] = support[1][bids[:, 1] % support[1].size]
        bids[:, 0] = support[0][bids[:, 0] % support[0].size]
        rec = BidLedger(theta).record(bids, detail=True)
        r = stochmech.window(np.arange(1, days + 1), 1.0)
        assert not np.any(rec.flags[:, 0] & ~(rec.marginal[:, 0] >= r))


def test_joint_false_and_one_player_say_what_is_covered():
    off = truthful_risk([[0.5, 0.5], [0.5, 0.5]], 0, 500, joint=False)
    assert off.joint_coverage == "not included" and off.joint_covered_days == 0
    assert "NOT included" in off.joint_note and "NOT included" in str(off)
    assert off.to_dict()["joint_covered_days"] == 0
    one = truthful_risk([[0.5, 0.5]], 0, 500)
    assert one.joint_coverage == "one player" and one.joint_covered_days == 500
    assert "joint test" not in str(one)


def test_joint_excess_by_day_is_truthful_risks_for_every_player():
    from stochmech.audit import joint_excess_by_day

    theta = np.array([[0.5, 0.5], [0.2, 0.8], [0.3, 0.7]])
    extra = joint_excess_by_day(theta, 400, 0.1, joint_days=300, paths=60, seed=4)
    for i in range(3):
        risk = truthful_risk(theta, i, 400, gamma=0.1, joint_days=300, paths=60, seed=4)
        assert np.array_equal(extra[i], risk.joint_excess_daily)
    with pytest.raises(ValueError, match="paths"):
        joint_excess_by_day(theta, 10, paths=1)
    assert not joint_excess_by_day([[0.5, 0.5]], 10).any()
