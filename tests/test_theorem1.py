"""Theorem 1 and Lemma 1 of the first paper, checked on the numbers.

* Part 1 (truthful bidding is a DNBE): on many small random games, the best stationary lie
  (the transport LP of docs/modelling.md, for random true supertypes, random declarations of the
  others and random own declarations) gains nothing, and neither does the best reply of a
  player whose helpers reveal their bids through a public signal; simulated deviations gain
  nothing beyond Monte Carlo error under common random numbers.
* Part 2 (individual rationality when eq. 16 holds), part 3 (efficiency), Lemma 1 (a truthful
  player is penalized finitely often) and the Azuma-Hoeffding bound behind it (eq. 19-20).
* Findings the theorem does not cover, pinned: the theorem is about the long run, and at a
  finite horizon L a player may shift its bid frequencies inside the window r(L) and gain up
  to the window bound, until the window closes.
"""

from __future__ import annotations

import math

import audit_reference as ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stochmech import BidLedger, DNBEMechanism, FiniteGame, simulate, window
from stochmech.audit import (
    Deviation,
    WindowExploit,
    audit,
    batch_means,
    best_correlated_deviation,
    best_stationary_deviation,
    best_supertype_lie,
    catch_times,
    efficiency,
    window_deviation_bound,
)
from stochmech.markets import DemandResponseMarket, betaprime_supertype
from stochmech.strategies import StationaryMisreport, SupertypeLie, Truthful, shift_kernel

TOL = 1e-9


# ----- part 1, exactly: the LPs -----------------------------------------------------------------
@given(ref.small_games(), st.data())
def test_no_stationary_or_correlated_lie_gains(game, data) -> None:
    k = game.n_types
    bids = np.array([data.draw(ref.pmfs(k)) for _ in range(game.n_players)])
    theta_i = data.draw(ref.pmfs(k))
    i = data.draw(st.integers(0, game.n_players - 1))
    stat = best_stationary_deviation(game, i, theta_i, bids)
    corr = best_correlated_deviation(game, i, theta_i, bids)
    assert stat.gain_upper <= TOL
    assert corr.gain_upper <= TOL
    assert stat.gain <= corr.gain + TOL  # revealing bids can only help the deviator
    # declaring the truth, the truthful coupling is feasible: the best gain is exactly 0
    truthful = bids.copy()
    truthful[i] = theta_i
    assert best_stationary_deviation(game, i, theta_i, truthful).gain == pytest.approx(0, abs=TOL)


@settings(max_examples=15)
@given(ref.small_games(), st.data())
def test_no_declaration_on_a_grid_gains(game, data) -> None:
    k = game.n_types
    bids = np.array([data.draw(ref.pmfs(k)) for _ in range(game.n_players)])
    i = data.draw(st.integers(0, game.n_players - 1))
    search = best_supertype_lie(game, i, bids[i], bids, resolution=4)
    assert search.epsilon <= TOL


@given(ref.small_games(), st.data())
def test_broken_mechanisms_never_do_better_than_truth_for_the_planner(game, data) -> None:
    """Without a part of the payment the truth is still feasible, so the LP gain is >= 0."""
    k = game.n_types
    bids = np.array([data.draw(ref.pmfs(k)) for _ in range(game.n_players)])
    i = data.draw(st.integers(0, game.n_players - 1))
    for switch in ({"penalize": False}, {"first_stage_payment": False}):
        mech = DNBEMechanism(game, **switch)
        assert best_stationary_deviation(game, i, bids[i], bids, mechanism=mech).gain >= -TOL


def test_broken_mechanisms_let_lies_gain_on_most_random_games() -> None:
    """The audit can fail: without penalties a lie pays on every one of 30 random games,
    without the first-stage payment on a third of them (a lie must move o1 to gain)."""
    gains = {"penalize": 0, "first_stage_payment": 0}
    for seed in range(30):
        rng = np.random.default_rng(seed)
        n, k, a, b = (int(x) for x in rng.integers(2, 4, size=4))
        game = FiniteGame(rng.normal(size=(n, k, a, b)), rng.normal(size=(a, b)))
        theta = rng.dirichlet(np.ones(k), size=n)
        assert best_supertype_lie(game, 0, theta[0], theta, resolution=4).epsilon <= TOL
        for switch in gains:
            mech = DNBEMechanism(game, **{switch: False})
            search = best_supertype_lie(game, 0, theta[0], theta, resolution=4, mechanism=mech)
            gains[switch] += search.epsilon > 1e-6
    assert gains["penalize"] == 30
    assert gains["first_stage_payment"] >= 8


# ----- part 1, simulated ------------------------------------------------------------------------
WINDOW_FAMILY = ("finite-horizon",)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_truth_beats_every_deviation_in_simulation(seed) -> None:
    game, theta = ref.random_game(seed)
    report = audit(game, theta, seed % 3, days=20_000, history_days=3000, seed=seed, resolution=6)
    assert report.long_run_ok and report.finite_horizon_ok
    for row in report.rows:
        if row.kind in WINDOW_FAMILY:  # pinned separately below
            assert row.simulated_gain <= row.allowance + 4 * row.stderr
            continue
        assert row.simulated_gain <= 3 * row.stderr + TOL, row.name
        if row.exact_gain is not None and math.isfinite(row.exact_gain):
            assert abs(row.simulated_gain - row.exact_gain) <= 4 * row.stderr + TOL, row.name
        if row.kind == "bankrupting":
            assert 0 < row.catch.flagged_every_day_from <= 1000


# ----- Lemma 1 and the bound behind it ----------------------------------------------------------
def test_truthful_players_are_penalized_only_early() -> None:
    """Lemma 1: whatever non-bankrupting strategies the others play, a truthful player's last
    penalty day is small against the horizon (measured: at most a few dozen days)."""
    days = 20_000
    for seed in range(4):
        game, theta = ref.random_game(seed)
        rng = np.random.default_rng(100 + seed)
        others = [
            SupertypeLie(rng.dirichlet(np.ones(3))),
            StationaryMisreport(shift_kernel(3, 1), "induced"),
        ]
        res = simulate(game, theta, [Truthful(), *others], days, seed)
        assert res.last_penalty_day[0] <= days // 100
        assert res.last_penalty_day.max() <= days // 100


@pytest.mark.parametrize(
    "theta",
    [
        [[0.5, 0.5], [0.5, 0.5]],
        [[0.2, 0.8], [0.5, 0.5]],
        [[0.1, 0.3, 0.6], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]],
    ],
)
def test_truthful_flag_rate_is_below_the_azuma_hoeffding_union_bound(theta) -> None:
    """Eqs. (19)-(20): P(|f| >= r(l)) and P(|h_d| >= r(l)) are at most l^-(1+gamma) for a
    truthful player, so P(E_i(l)) <= (K + K^n) l^-(1+gamma). Measured over 200 runs."""
    theta = np.array(theta)
    n, k = theta.shape
    runs, days = 200, 5000
    rng = np.random.default_rng(7)
    cdf = np.cumsum(theta, axis=1)
    flags = np.zeros((runs, days), dtype=bool)
    for r in range(runs):
        u = rng.random((days, n))
        bids = np.stack(
            [np.minimum(np.searchsorted(cdf[j], u[:, j], side="right"), k - 1) for j in range(n)],
            axis=1,
        )
        flags[r] = BidLedger(theta).record(bids).flags[:, 0]
    for lo, hi in [(1, 10), (10, 100), (100, 1000), (1000, 5000)]:
        day = np.arange(lo, hi + 1)
        bound = ((k + k**n) / day**1.5).mean()
        assert flags[:, lo - 1 : hi].mean() <= bound
    assert flags[:, 1000:].sum() == 0


# ----- part 2: individual rationality -----------------------------------------------------------
def test_truthful_utility_is_the_margin_whatever_the_others_do() -> None:
    """A truthful player earns W*(theta_i, theta_hat_-i) - W*(theta_hat_-i) on every day it is
    not penalized, whatever the others declare; so it is individually rational exactly when
    that margin (eq. 16 at those supertypes) is >= 0. Both signs occur in random games."""
    signs = set()
    for seed in range(8):
        game, theta = ref.random_game(seed)
        rng = np.random.default_rng(seed)
        lies = [SupertypeLie(rng.dirichlet(np.ones(3))) for _ in range(2)]
        res = simulate(game, theta, [Truthful(), *lies], 5000, seed, daily=True)
        declared = res.supertype_bids
        margin = game.optimal_welfare(np.vstack([theta[0], declared[1:]])) - (
            game.optimal_welfare_without(declared, 0)
        )
        quiet = ~res.daily_flags[:, 0]
        np.testing.assert_allclose(res.daily_utility[quiet, 0], margin, atol=1e-12)
        assert res.average_utility[0] + res.average_penalty[0] == pytest.approx(margin, abs=1e-9)
        signs.add(margin >= 0)
    assert signs == {True, False}


# ----- part 3: efficiency -----------------------------------------------------------------------
@given(ref.small_games(), st.data())
def test_first_stage_rule_attains_the_enumerated_optimum(game, data) -> None:
    theta = np.array([data.draw(ref.pmfs(game.n_types)) for _ in range(game.n_players)])
    values = ref.welfare_by_outcome(game, theta, list(range(game.n_players)))
    assert values[game.first_stage(theta)] == pytest.approx(values.max(), abs=1e-12)
    assert game.optimal_welfare(theta) == pytest.approx(values.max(), abs=1e-12)
    assert efficiency(game, theta).first_stage_ok


@pytest.mark.parametrize("seed", range(4))
def test_truthful_average_welfare_is_optimal(seed) -> None:
    game, theta = ref.random_game(seed)
    res = simulate(game, theta, days=40_000, seed=seed, daily=True)
    mean, se = batch_means(res.daily_welfare)
    assert abs(mean - game.optimal_welfare(theta)) <= 4 * se


# ----- pinned findings: the finite horizon ------------------------------------------------------
def test_finding_a_horizon_targeted_shift_gains_until_the_window_closes() -> None:
    """At a horizon L known to it, a demand-response provider can inflate its bids just inside
    the window r(L) and gain about the window bound per day (measured: +6.60e-4 ± 2.4e-5 per
    day at L = 20,000 against a truthful utility of 0.0382, a 1.7 % gain). Theorem 1 is not
    contradicted: the same bids are flagged every day once the window has shrunk below the
    shift (measured: from day 28,167), the penalty l^1.5 then dominates, and the long-run gain
    is -infinity. The finite-horizon epsilon of the mechanism is the window bound, which
    decays like r(L) (measured: 0.042 r(L) at L = 10^4, 10^5 and 10^6)."""
    market = DemandResponseMarket([betaprime_supertype(1.0, 2.0, 4)] * 3, reserve=1.0)
    theta = market.supertype_bids()
    horizon = 20_000
    radius = 0.8 * window(horizon, 0.5)
    target = window_deviation_bound(market, 0, theta[0], theta, radius)
    assert target.gain > 0
    strategy = StationaryMisreport(target.kernel, supertype_bid=theta[0].copy())
    report = audit(market, theta, 0, deviations=[Deviation("target", strategy)], days=horizon)
    row = report.rows[0]
    assert row.exact_gain == -math.inf and report.long_run_ok
    assert row.significant and not row.gains  # gains, within the window allowance
    assert abs(row.simulated_gain - target.gain) <= 4 * row.stderr
    assert row.catch.ahead_at_horizon and row.catch.penalty_days <= 5

    longer = 4 * horizon
    truth = simulate(market, theta, days=longer, seed=0, daily=True)
    played = simulate(market, theta, [strategy, Truthful(), Truthful()], longer, 0, daily=True)
    caught = catch_times(
        played.daily_flags[:, 0], played.daily_utility[:, 0] - truth.daily_utility[:, 0]
    )
    assert horizon < caught.flagged_every_day_from < 2 * horizon
    assert horizon < caught.last_ahead_day < 2 * horizon

    bounds = [
        window_deviation_bound(market, 0, theta[0], theta, window(d, 0.5)).gain
        for d in (10**4, 10**5, 10**6)
    ]
    assert bounds[0] > bounds[1] > bounds[2] > 0
    ratios = [b / window(d, 0.5) for b, d in zip(bounds, (10**4, 10**5, 10**6), strict=True)]
    assert max(ratios) / min(ratios) < 1.2  # the allowance is proportional to r(L)


def rare_type_game() -> tuple[FiniteGame, np.ndarray]:
    """A random 2-player game (K = 3) in which player 0's type 0 has probability 0.0028."""
    rng = np.random.default_rng(0)
    for _ in range(2):
        game = FiniteGame(rng.normal(size=(2, 3, 2, 3)), rng.normal(size=(2, 3)))
        theta = rng.dirichlet(np.ones(3), size=2)
    return game, theta


def test_finding_the_window_exploit_hides_a_rare_type() -> None:
    """The history-dependent window exploit declares the truth and is truthful in the sense of
    Definition 1 (its lies have density zero), yet on a game whose type 0 has probability
    0.0028 it never reports type 0 while r(l) > 0.0028 / 0.9, i.e. for about 10^6 days, and
    gains the whole advantage of that lie meanwhile (measured: +5.5e-3 ± 8e-4 per day over
    20,000 days; window allowance 5.9e-3)."""
    game, theta = rare_type_game()
    assert theta[0, 0] < 0.003
    c = game.deviation_payoffs(theta, 0)
    exploit = WindowExploit(c - np.diag(c)[None, :])
    dev = Deviation("exploit", exploit, kind="history-dependent")
    report = audit(game, theta, 0, deviations=[dev], days=20_000, history_days=20_000)
    row = report.rows[0]
    assert report.long_run_ok and row.lp_bound <= TOL
    assert row.significant and not row.gains
    assert row.catch.penalty_days == 0 and row.catch.ahead_at_horizon
