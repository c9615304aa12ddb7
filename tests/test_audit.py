"""The incentive audit: its LPs against brute force, its exact gains against simulation, its
report on a sound and on two broken mechanisms, and its errors."""

from __future__ import annotations

import doctest
import importlib
import itertools
import json
import math

import audit_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stochmech import DNBEMechanism, FiniteGame, simulate
from stochmech.audit import (
    DaySignal,
    Deviation,
    WindowExploit,
    audit,
    batch_means,
    best_correlated_deviation,
    best_stationary_deviation,
    best_supertype_lie,
    catch_times,
    comonotone_collusion,
    default_deviations,
    individual_rationality,
    profile_payoffs,
    simplex_grid,
    stationary_gain,
    window_deviation_bound,
)
from stochmech.audit.bounds import _transport
from stochmech.markets import DemandResponseMarket
from stochmech.strategies import (
    FixedBid,
    StationaryMisreport,
    SupertypeLie,
    Truthful,
    shift_kernel,
)
from stochmech.supertype import Supertype


def project_game() -> tuple[FiniteGame, np.ndarray]:
    """Two players choose between two projects (first stage) and whether to run an extra shift
    (second stage, cost 0.7). Player 0 values project 0 at 1 + t (t its type) and the shift at
    0.5 t; player 1 values project 1 at 1.5 and the shift at 0.5 whatever its type."""
    v = np.zeros((2, 2, 2, 2))
    for t in range(2):
        v[0, t, 0, :] = 1.0 + t
        v[0, t, :, 1] += 0.5 * t
        v[1, t, 1, :] = 1.5
        v[1, t, :, 1] += 0.5
    cost = np.array([[0.0, 0.7], [0.0, 0.7]])
    theta = np.array([[0.7, 0.3], [0.5, 0.5]])
    return FiniteGame(v, cost), theta


# ----- the LPs against brute force -------------------------------------------------------------
@st.composite
def transport_problems(draw):
    k = draw(st.integers(2, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    payoff = np.random.default_rng(seed).normal(size=(k, k))
    if draw(st.booleans()):
        payoff = np.round(payoff)
    return payoff, draw(ref.pmfs(k)), draw(ref.pmfs(k))


@given(transport_problems())
def test_transport_lp_equals_vertex_enumeration(problem) -> None:
    payoff, rows, cols = problem
    value, bound, coupling = _transport(payoff, rows, cols, cols)
    assert value == pytest.approx(ref.transport_by_vertices(payoff, rows, cols), abs=1e-9)
    assert value <= bound <= value + 1e-9
    np.testing.assert_allclose(coupling.sum(axis=1), rows, atol=1e-9)
    np.testing.assert_allclose(coupling.sum(axis=0), cols, atol=1e-9)
    assert coupling.min() >= 0


@given(transport_problems())
def test_free_columns_equal_the_best_deterministic_kernel(problem) -> None:
    payoff, rows, _ = problem
    value, bound, _ = _transport(payoff, rows)
    assert value == pytest.approx(ref.free_columns_by_kernels(payoff, rows), abs=1e-12)
    assert bound == value


@given(transport_problems(), st.floats(0.0, 0.5))
def test_box_lp_is_certified_and_sits_between_the_exact_and_the_free_problem(
    problem, radius
) -> None:
    payoff, rows, cols = problem
    lo, hi = np.maximum(cols - radius, 0), np.minimum(cols + radius, 1)
    value, bound, coupling = _transport(payoff, rows, lo, hi)
    exact, _, _ = _transport(payoff, rows, cols, cols)
    free, _, _ = _transport(payoff, rows)
    assert exact - 1e-9 <= value <= free + 1e-9
    assert value <= bound <= value + 1e-8
    col = coupling.sum(axis=0)
    assert np.all(col >= lo - 1e-9) and np.all(col <= hi + 1e-9)
    if len(rows) == 2:  # a grid of the two free cells, endpoints of the box included
        x = np.concatenate(
            [np.linspace(0, 1, 101), np.clip((lo[0] - [0, rows[1]]) / max(rows[0], 1e-300), 0, 1)]
        )
        y = np.linspace(0, 1, 101)
        x, y = np.meshgrid(x * rows[0], y * rows[1])
        col0 = x + y
        values = payoff[0, 0] * x + payoff[0, 1] * (rows[0] - x)
        values = values + payoff[1, 0] * y + payoff[1, 1] * (rows[1] - y)
        ok = (col0 >= lo[0] - 1e-12) & (col0 <= hi[0] + 1e-12)
        ok &= (1 - col0 >= lo[1] - 1e-12) & (1 - col0 <= hi[1] + 1e-12)
        if ok.any():
            assert values[ok].max() <= bound + 1e-9


# ----- the game quantities the LPs use ---------------------------------------------------------
@given(ref.small_games(), st.data())
def test_deviation_payoffs_and_profile_payoffs_match_the_definition(game, data) -> None:
    k = game.n_types
    bids = np.array([data.draw(ref.pmfs(k)) for _ in range(game.n_players)])
    i = data.draw(st.integers(0, game.n_players - 1))
    expected = ref.deviation_payoffs(game, bids, i)
    np.testing.assert_allclose(game.deviation_payoffs(bids, i), expected, atol=1e-12)
    _, weights, tables = profile_payoffs(game, bids, i)
    np.testing.assert_allclose(np.tensordot(weights, tables, axes=1), expected, atol=1e-12)
    assert weights.sum() == pytest.approx(1.0)


def test_profile_payoffs_average_to_the_demand_response_payoffs() -> None:
    market = DemandResponseMarket(
        [Supertype([1.0, 2.0], [0.3, 0.7]), Supertype([1.0, 3.0], [0.5, 0.5]), 2.0],
        reserve=Supertype([1.0, 4.0], [0.5, 0.5]),
        shortage=Supertype([0.5, 1.5], [0.25, 0.75]),
    )
    bids = market.supertype_bids()
    for i in range(3):
        _, weights, tables = profile_payoffs(market, bids, i)
        np.testing.assert_allclose(
            np.tensordot(weights, tables, axes=1), market.deviation_payoffs(bids, i), rtol=1e-12
        )


@given(ref.small_games(max_players=3, max_types=3), st.data())
def test_lp_gain_equals_an_independent_recomputation(game, data) -> None:
    k = game.n_types
    bids = np.array([data.draw(ref.pmfs(k)) for _ in range(game.n_players)])
    theta_i = data.draw(ref.pmfs(k))
    i = data.draw(st.integers(0, game.n_players - 1))
    dev = best_stationary_deviation(game, i, theta_i, bids)
    assert dev.gain == pytest.approx(ref.stationary_gain_bound(game, i, theta_i, bids), abs=1e-9)
    # the kernel realizes the coupling, and its exact gain is the LP's
    np.testing.assert_allclose(theta_i[:, None] * dev.kernel, dev.coupling, atol=1e-9)
    assert stationary_gain(game, i, theta_i, bids, dev.kernel) == pytest.approx(dev.gain, abs=1e-9)


def test_window_bound_runs_from_the_exact_lp_to_the_unpenalized_one() -> None:
    game, theta = ref.random_game(7)
    exact = best_stationary_deviation(game, 0, theta[0], theta)
    free = best_stationary_deviation(
        game, 0, theta[0], theta, mechanism=DNBEMechanism(game, penalize=False)
    )
    radii = [0.0, 0.01, 0.05, 0.2, 1.0]
    gains = [window_deviation_bound(game, 0, theta[0], theta, r).gain for r in radii]
    assert gains[0] == pytest.approx(exact.gain, abs=1e-9)
    assert gains[-1] == pytest.approx(free.gain, abs=1e-9)
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(gains))
    assert gains[1] > 0  # any slack in the window is worth something in this game


# ----- exact long-run gains against simulation -------------------------------------------------
@pytest.mark.parametrize(
    "switches",
    [{}, {"penalize": False}, {"first_stage_payment": False}],
    ids=["full", "no-penalty", "no-first-stage"],
)
def test_simulated_gains_agree_with_the_exact_long_run_gains(switches) -> None:
    game, theta = ref.random_game(3)
    mech = DNBEMechanism(game, **switches)
    lie = 0.5 * theta[0] + 0.5 * np.array([0.0, 0.0, 1.0])
    deviations = [
        Deviation("shift +1", StationaryMisreport(shift_kernel(3, 1))),
        Deviation("shift -1", StationaryMisreport(shift_kernel(3, -1))),
        Deviation("lie, quantile", SupertypeLie(lie)),
        Deviation("lie, independent", SupertypeLie(lie, coupling="independent")),
        Deviation("always 2", FixedBid(2), kind="bankrupting"),
        Deviation("shift, declares truth", StationaryMisreport(shift_kernel(3, 1), "truthful")),
    ]
    report = audit(game, theta, 0, mechanism=mech, deviations=deviations, days=20_000, seed=5)
    for row in report.rows:
        assert row.exact_gain is not None
        if math.isfinite(row.exact_gain):
            assert abs(row.simulated_gain - row.exact_gain) <= 4 * row.stderr + 1e-9, row.name
            if mech.penalize:
                assert row.exact_gain <= row.lp_bound + 1e-9
        else:  # bankrupting: flagged on every day from early on, the average penalty explodes
            assert mech.penalize
            assert 0 < row.catch.flagged_every_day_from <= 100
            assert row.simulated_gain < -1e3


def test_correlated_deviation_strategies_realize_the_lp_and_stay_unflagged() -> None:
    game, theta = ref.random_game(4, n=3, k=2, a=2, b=3)
    for mech in (DNBEMechanism(game), DNBEMechanism(game, penalize=False)):
        corr = best_correlated_deviation(game, 0, theta[0], theta, mechanism=mech)
        stat = best_stationary_deviation(game, 0, theta[0], theta, mechanism=mech)
        assert stat.gain <= corr.gain + 1e-9
        plan = corr.strategies(salt=3)
        helpers = [plan[1], plan[2]]
        truth = simulate(game, theta, [Truthful(), *helpers], 8000, 2, mechanism=mech, daily=True)
        played = simulate(game, theta, [plan[0], *helpers], 8000, 2, mechanism=mech, daily=True)
        gain, se = batch_means(played.daily_utility[:, 0] - truth.daily_utility[:, 0])
        assert abs(gain - corr.gain) <= 4 * se + 1e-9
        if mech.penalize:
            # everyone bids exactly by the declarations, independently: no test fires late
            assert played.last_penalty_day.max() <= 200
            assert corr.gain_upper <= 1e-9
        else:
            # without penalties the reply need not follow the declaration (nor be independent
            # of the helpers' bids, so the tests fire, at no cost): it gains
            assert played.penalty_days[0] > 7000
            assert corr.gain > 0.01


def test_comonotone_collusion_is_caught_by_the_joint_test() -> None:
    game, theta = ref.random_game(5, n=2, k=2, a=1, b=2)
    pair = comonotone_collusion(0, 1, theta[0], theta[1], salt=9)
    res = simulate(game, theta, [pair[0], pair[1]], 6000, 0, daily=True)
    for i in range(2):
        c = catch_times(res.daily_flags[:, i], np.zeros(6000))
        assert 0 < c.flagged_every_day_from < 3000
    # the marginal frequencies are right: only the joint statistic can have fired
    bids = np.array([[s.kernels[k, 0].argmax() for k in range(4)] for s in (pair[0], pair[1])])
    assert bids.shape == (2, 4)


def test_day_signal_has_its_law_and_is_shared() -> None:
    probs = [0.1, 0.6, 0.3]
    signal = DaySignal(probs, salt=4)
    values = np.array([signal.value(d) for d in range(1, 30_001)])
    freq = np.bincount(values, minlength=3) / values.size
    assert np.abs(freq - probs).max() < 4 * np.sqrt(0.25 / values.size)
    again = DaySignal(probs, salt=4)
    other = DaySignal(probs, salt=5)
    assert all(signal.value(d) == again.value(d) for d in range(1, 200))
    assert sum(signal.value(d) != other.value(d) for d in range(1, 2000)) > 500


def test_window_exploit_keeps_its_frequencies_inside_the_window() -> None:
    game, theta = ref.random_game(6)
    c = game.deviation_payoffs(theta, 0)
    exploit = WindowExploit(c - np.diag(c)[None, :])
    res = simulate(game, theta, [exploit, Truthful(), Truthful()], 3000, 1, daily=True)
    assert res.penalty_days[0] == 0


# ----- small pieces ----------------------------------------------------------------------------
def test_catch_times_edge_cases() -> None:
    none = catch_times(np.zeros(5, dtype=bool), -np.ones(5))
    assert (none.penalty_days, none.first_flag_day, none.flagged_every_day_from) == (0, 0, 0)
    assert none.last_ahead_day == 0 and not none.ahead_at_horizon
    always = catch_times(np.ones(4, dtype=bool), np.ones(4))
    assert always.flagged_every_day_from == 1 and always.flagged_fraction_from == 1
    assert always.ahead_at_horizon


def test_simplex_grid_is_every_pmf_on_the_lattice() -> None:
    grid = simplex_grid(3, 4)
    assert grid.shape == (math.comb(6, 2), 3)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    assert len({tuple(r) for r in grid}) == len(grid)
    assert np.all(np.round(grid * 4) == grid * 4)


def test_lie_search_includes_the_truth_and_its_best_is_the_max() -> None:
    game, theta = ref.random_game(8)
    search = best_supertype_lie(game, 1, theta[1], theta, resolution=3)
    np.testing.assert_array_equal(search.declarations[0], theta[1])
    assert search.gains[0] == pytest.approx(0.0, abs=1e-9)
    assert search.best.gain == search.gains.max()
    assert search.epsilon <= 1e-9


# ----- the report: sound mechanism passes, broken ones fail ------------------------------------
def test_project_game_passes_and_both_broken_mechanisms_fail() -> None:
    game, theta = project_game()
    kwargs = {"days": 8000, "history_days": 3000, "seed": 1, "resolution": 10}
    full = audit(game, theta, 0, **kwargs)
    assert full.passed and full.long_run_ok and full.finite_horizon_ok
    assert full.epsilon_lp <= 1e-9 and full.failures == []
    assert "Verdict: PASS" in str(full)

    no_penalty = audit(game, theta, 0, mechanism=DNBEMechanism(game, penalize=False), **kwargs)
    assert not no_penalty.passed and not no_penalty.long_run_ok
    assert no_penalty.epsilon_lp > 0.1
    gaining = [r for r in no_penalty.rows if r.gains]
    assert gaining and all(r.simulated_gain > 0 for r in gaining)
    text = str(no_penalty)
    assert "Verdict: FAIL" in text and "GAINS" in text and "penalties OFF" in text

    no_first = audit(
        game, theta, 0, mechanism=DNBEMechanism(game, first_stage_payment=False), **kwargs
    )
    assert not no_first.passed and no_first.search.epsilon > 0.1
    best = no_first.search.best
    assert game.first_stage(best.supertype_bids) != game.first_stage(theta)  # it moves o1
    row = next(r for r in no_first.rows if r.name.startswith("best LP lie"))
    assert row.gains and abs(row.simulated_gain - row.exact_gain) <= 4 * row.stderr + 1e-9
    assert "first-stage payment OFF" in str(no_first)


def test_report_to_dict_is_strict_json_and_complete() -> None:
    game, theta = project_game()
    report = audit(game, theta, 1, days=3000, history_days=1000, resolution=4)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["passed"] is report.passed
    assert len(data["deviations"]) == len(report.rows)
    names = {r["name"] for r in data["deviations"]}
    assert "always bid type 1" in names
    bankrupt = next(r for r in data["deviations"] if r["name"] == "always bid type 1")
    assert bankrupt["exact_gain"] == "-inf" and bankrupt["catch"]["flagged_every_day_from"] > 0
    assert data["participation"]["holds"] == [True, True]
    assert data["efficiency"]["first_stage_ok"] is True


def test_default_catalog_covers_every_family() -> None:
    game, theta = ref.random_game(9)
    kinds = {d.kind for d in default_deviations(game, theta, 0, horizon=10_000)}
    assert kinds == {
        "stationary",
        "bankrupting",
        "finite-horizon",
        "history-dependent",
        "collusion",
    }
    no_pen = DNBEMechanism(game, penalize=False)
    names = [d.name for d in default_deviations(game, theta, 0, mechanism=no_pen, horizon=10)]
    assert not any("window" in n or "horizon" in n for n in names)


def test_individual_rationality_depends_on_the_first_stage_payment() -> None:
    game, theta = project_game()
    with_pay = individual_rationality(game, theta)
    without = individual_rationality(
        game, theta, mechanism=DNBEMechanism(game, first_stage_payment=False)
    )
    np.testing.assert_allclose(with_pay.expected_utility, with_pay.margins)
    np.testing.assert_allclose(without.expected_utility, game.expected_valuations(theta))


# ----- errors ----------------------------------------------------------------------------------
def test_bad_input_names_the_value() -> None:
    game, theta = ref.random_game(1)
    with pytest.raises(ValueError, match="player 5 does not exist"):
        best_stationary_deviation(game, 5, theta[0], theta)
    with pytest.raises(ValueError, match="player must be an integer"):
        best_stationary_deviation(game, 0.5, theta[0], theta)
    with pytest.raises(ValueError, match=r"true_supertype: probability of type 1 is -0\.2"):
        best_stationary_deviation(game, 0, [0.6, -0.2, 0.6], theta)
    with pytest.raises(ValueError, match=r"true_supertype sums to 0\.875, not 1"):
        best_stationary_deviation(game, 0, [0.5, 0.25, 0.125], theta)
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        best_stationary_deviation(game, 0, theta[0], theta[:2])
    other = FiniteGame(np.zeros((3, 3, 1, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="different game"):
        best_stationary_deviation(game, 0, theta[0], theta, mechanism=DNBEMechanism(other))
    with pytest.raises(ValueError, match=r"radius must be a finite number >= 0, got -0\.1"):
        window_deviation_bound(game, 0, theta[0], theta, -0.1)
    with pytest.raises(ValueError, match=r"kernel must have shape \(3, 3\)"):
        stationary_gain(game, 0, theta[0], theta, np.eye(2))
    with pytest.raises(ValueError, match=r"candidates\[1\]: probability of type 0 is -1.0"):
        best_supertype_lie(game, 0, theta[0], theta, candidates=[[1, 0, 0], [-1, 1, 1]])
    with pytest.raises(ValueError, match="resolution must be >= 1, got 0"):
        simplex_grid(3, 0)
    with pytest.raises(ValueError, match="above max_profiles = 2"):
        profile_payoffs(game, theta, 0, max_profiles=2)
    with pytest.raises(ValueError, match="days must be >= 2, got 1"):
        audit(game, theta, days=1)
    with pytest.raises(ValueError, match="z must be a positive number, got -1"):
        audit(game, theta, z=-1)
    with pytest.raises(ValueError, match="must not include the audited player 0"):
        audit(game, theta, 0, others={0: Truthful()})
    with pytest.raises(ValueError, match=r"others\[1\] is not a Strategy: 'truthful'"):
        audit(game, theta, 0, others={1: "truthful"})
    with pytest.raises(ValueError, match=r"signal probabilities sum to 0\.5"):
        DaySignal([0.25, 0.25])
    with pytest.raises(ValueError, match="margin must be in"):
        WindowExploit(np.zeros((3, 3)), margin=2)
    with pytest.raises(ValueError, match="flags and difference must be equal-length"):
        catch_times([True], [1.0, 2.0])
    with pytest.raises(ValueError, match="batches must be >= 2, got 1"):
        batch_means(np.ones(10), 1)


@pytest.mark.parametrize(
    "name",
    [
        "stochmech.audit",
        "stochmech.audit.adversaries",
        "stochmech.audit.bounds",
        "stochmech.audit.checks",
        "stochmech.audit.run",
        "stochmech.audit.risk",
        "stochmech.audit.calibrate",
        "stochmech.audit.coalitions",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_an_audit_without_deviations_is_still_a_report() -> None:
    game, theta = project_game()
    report = audit(game, theta, 0, deviations=[], days=500, resolution=2)
    assert report.rows == () and report.passed
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["epsilon_simulated"] == "-inf" and data["deviations"] == []
    assert "Deviations" in str(report)
