"""Per-player type spaces (player i with its own K_i types) against the plain references."""

from __future__ import annotations

import game_reference as ref
import numpy as np
import pytest
from audit_reference import pmfs
from hypothesis import given, settings
from hypothesis import strategies as st

from stochmech import DNBEMechanism, FiniteGame
from stochmech.audit import best_stationary_deviation, stationary_gain
from stochmech.markets.demand_response import DemandResponseMarket, betaprime_supertype
from stochmech.markets.demand_response.incentives import Lie, incentive_market, own_ladder
from stochmech.scenario import parse_scenario
from stochmech.simulation import simulate
from stochmech.strategies import StationaryMisreport, Truthful, shift_kernel
from stochmech.supertype import Supertype


@st.composite
def ragged_games(draw, max_players: int = 3, max_types: int = 3):
    """Per-player valuation arrays of shapes (K_i, A, B), K_i in 1..3, with their pmfs."""
    n = draw(st.integers(1, max_players))
    ks = [draw(st.integers(1, max_types)) for _ in range(n)]
    a = draw(st.integers(1, 3))
    b = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    integer = draw(st.booleans())  # coarse values: ties in g1*, g2* are common
    v = [
        rng.integers(-3, 4, size=(k, a, b)).astype(float) if integer else rng.normal(size=(k, a, b))
        for k in ks
    ]
    c = rng.integers(-2, 3, size=(a, b)).astype(float) if integer else rng.normal(size=(a, b))
    theta = [rng.dirichlet(np.ones(k)) for k in ks]
    if draw(st.booleans()):
        theta[0] = np.eye(ks[0])[rng.integers(ks[0])]  # a point mass
    return v, c, theta


# ----- FiniteGame with per-player type spaces --------------------------------------------------
@given(ragged_games())
def test_ragged_rules_and_expectations_match_the_reference(case):
    v, c, theta = case
    game = FiniteGame(v, c)
    n = len(v)
    assert game.type_counts.tolist() == [len(x) for x in v]
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
        got = game.deviation_payoffs(theta, i)
        assert got.shape == (len(v[i]), len(v[i]))
        np.testing.assert_allclose(got, ref.deviation_payoff(v, c, theta, i), atol=1e-12)
        mech = DNBEMechanism(game)
        assert mech.first_stage_payments(theta)[i] == pytest.approx(
            ref.first_stage_payment(v, c, theta, i), rel=1e-12, abs=1e-12
        )


@given(ragged_games(), st.integers(1, 20))
def test_ragged_second_stage_and_per_day_values(case, days):
    v, c, _theta = case
    game = FiniteGame(v, c)
    n = len(v)
    rng = np.random.default_rng(days)
    types = np.column_stack([rng.integers(0, len(x), size=days) for x in v])
    for a in range(c.shape[0]):
        o2 = game.second_stage(a, types)
        expected = [ref.second_stage(v, c, list(range(n)), tuple(row), a) for row in types]
        np.testing.assert_array_equal(o2, expected)
        vals = game.valuations(types, a, o2)
        for row in range(days):
            for i in range(n):
                assert vals[row, i] == v[i][types[row, i], a, o2[row]]


def test_ragged_and_padded_supertypes_are_the_same_bids():
    v = [np.arange(2 * 2.0).reshape(1, 2, 2), np.arange(3 * 4.0).reshape(3, 2, 2)]
    game = FiniteGame(v, np.zeros((2, 2)), type_values=[[5.0], [1.0, 2.0, 3.0]])
    assert game.type_counts.tolist() == [1, 3] and game.n_types == 3 and game.ragged
    assert game.values_of(0).tolist() == [5.0] and game.values_of(1).tolist() == [1, 2, 3]
    ragged = [[1.0], [0.2, 0.3, 0.5]]
    padded = [[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]]
    assert game.optimal_welfare(ragged) == game.optimal_welfare(padded)
    with pytest.raises(ValueError, match=r"player 0 gives probability 0\.5 to type 1, outside"):
        game.optimal_welfare([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    with pytest.raises(ValueError, match=r"supertypes\[1\] must be a pmf over player 1's 3 types"):
        game.optimal_welfare([[1.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"player 1 sums to 0\.9"):
        game.optimal_welfare([[1.0], [0.2, 0.2, 0.5]])
    with pytest.raises(ValueError, match=r"type 3 of player 1 \(row 0\) is outside its type"):
        game.second_stage(0, np.array([[0, 3]]))
    with pytest.raises(ValueError, match=r"type 1 of player 0 \(row 0\) is outside"):
        game.valuations(np.array([[1, 0]]), 0, np.array([0]))
    with pytest.raises(ValueError, match=r"valuations\[1\] must have shape \(K_1, A, B\)"):
        FiniteGame([np.zeros((1, 2, 2)), np.zeros((2, 2, 3))], np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"type_values\[1\] must have shape \(3,\)"):
        FiniteGame(v, np.zeros((2, 2)), type_values=[[5.0], [1.0, 2.0]])


def test_ragged_exact_enumeration_counts_prod_k_i():
    v = [np.zeros((k, 1, 1)) for k in (1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4)]
    theta = [np.full(len(x), 1.0 / len(x)) for x in v]
    game = FiniteGame(v, [[0.0]], max_profiles=1000)
    with pytest.raises(ValueError, match=r"prod K_i = 1 x 4 x 4 .* = 4194304 profiles"):
        game.optimal_welfare(theta)


def test_ragged_monte_carlo_agrees_with_enumeration():
    rng = np.random.default_rng(4)
    v = [rng.normal(size=(k, 2, 3)) for k in (1, 3, 2)]
    c = rng.normal(size=(2, 3))
    theta = [rng.dirichlet(np.ones(len(x))) for x in v]
    exact = FiniteGame(v, c)
    mc = FiniteGame(v, c, expectation="monte-carlo", samples=40_000, seed=1)
    w = mc.optimal_welfare(theta)
    assert abs(w - exact.optimal_welfare(theta)) <= 5 * w.stderr + 1e-12
    nu = mc.expected_valuations(theta)
    for i, e in enumerate(exact.expected_valuations(theta)):
        assert abs(nu[i] - e) <= 5 * nu[i].stderr + 1e-12


# ----- the mechanism and the simulation --------------------------------------------------------
def _ragged_market_game():
    rng = np.random.default_rng(8)
    v = [rng.normal(size=(k, 2, 2)) for k in (1, 3, 2)]
    game = FiniteGame(v, rng.normal(size=(2, 2)))
    theta = [np.array([1.0]), np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.4])]
    return game, theta


def test_market_refuses_a_bid_outside_the_players_own_range_and_changes_nothing():
    game, theta = _ragged_market_game()
    market = DNBEMechanism(game).open(theta)
    market.clear(np.array([[0, 2, 1], [0, 0, 0]]))
    before = market.ledger.to_bytes()
    with pytest.raises(
        ValueError, match=r"bid 1 of player 0 on day 4 is outside the type space 0\.\.0"
    ):
        market.clear(np.array([[0, 1, 1], [1, 1, 1]]))
    with pytest.raises(
        ValueError, match=r"bid 2 of player 2 on day 3 is outside the type space 0\.\.1"
    ):
        market.clear(np.array([[0, 1, 2]]))
    assert market.day == 2 and market.ledger.to_bytes() == before


def test_simulation_draws_each_player_on_its_own_types():
    game, theta = _ragged_market_game()
    run = simulate(game, theta, days=30_000, seed=2, daily=True)
    assert run.supertype_bids.shape == (3, 3)
    np.testing.assert_allclose(run.supertype_bids[1], theta[1])
    # truthful: no penalty after the first days, utilities near the exact expectations
    assert run.last_penalty_day.max() < 3_000
    assert abs(run.average_welfare - run.optimal_welfare) < 0.05


def test_ragged_audit_lp_keeps_the_truth_optimal():
    game, theta = _ragged_market_game()
    bids = [t.copy() for t in theta]
    for i in range(3):
        dev = best_stationary_deviation(game, i, theta[i], bids)
        assert dev.coupling.shape == (len(theta[i]),) * 2
        assert dev.gain <= 1e-9
    # a shift on player 1's own three types that declares the truth is caught (-inf)
    assert stationary_gain(game, 1, theta[1], bids, shift_kernel(3, 1)) == -np.inf


# ----- lies step along the player's own levels -------------------------------------------------
def test_shift_kernel_steps_along_a_ladder():
    np.testing.assert_array_equal(
        shift_kernel(5, 1, ladder=[0, 2, 4]),
        [[0, 0, 1, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]],
    )
    np.testing.assert_array_equal(shift_kernel(3, -2), [[1, 0, 0], [1, 0, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="ladder"):
        shift_kernel(3, 1, ladder=[0, 3])


def test_inflate_moves_to_the_next_own_level_not_to_a_neighbours():
    """A provider at 0.311 inflates to its next own level 0.5, not to another provider's
    0.311431 (which a union grid of everyone's values would put next to it)."""
    mine = Supertype([0.311, 0.5, 0.9], [0.5, 0.3, 0.2])
    other = Supertype([0.311431, 0.4], [0.5, 0.5])
    m = DemandResponseMarket([mine, other], reserve=1.0)
    assert [lv.tolist() for lv in m.levels] == [[0.311, 0.5, 0.9], [0.311431, 0.4]]
    plan = Lie.inflate(1).plan(m, 0)
    kernel = plan.strategy.kernel
    reported = m.levels[0][kernel.argmax(axis=1)]
    assert reported.tolist() == [0.5, 0.9, 0.9]
    np.testing.assert_allclose(plan.declared, [0.0, 0.5, 0.5])
    # the simulated liar bids on its own levels and is never refused
    run = simulate(m, m.supertype_bids(), [plan.strategy, StationaryMisreport(np.eye(2))], 2_000)
    assert run.days == 2_000


def test_inflate_in_the_comparison_market_skips_the_claim_levels():
    m = incentive_market(3, 4)  # each provider's levels: its own four and the claim law's four
    assert m.type_counts.tolist() == [8, 8, 8]
    ladder = own_ladder(m, 0)
    own = np.sort(m.providers[0].values)
    np.testing.assert_array_equal(m.levels[0][ladder], own)
    kernel = Lie.inflate(1).plan(m, 0).strategy.kernel
    for j in range(3):
        assert m.levels[0][kernel[ladder[j]].argmax()] == own[j + 1]


# ----- scenario files ----------------------------------------------------------------------------
def test_scenario_with_ragged_players_and_own_levels():
    s = parse_scenario(
        """
days = 300
[game]
kind = "finite"
valuations = [[[[0.0, 1.0]]], [[[0.0, 2.0]], [[1.0, 0.0]]]]
cost = [[0.0, 0.5]]
[[players]]
supertype = [1.0]
[[players]]
supertype = [0.3, 0.7]
strategy = { kind = "shift", steps = 1 }
"""
    )
    assert s.game.type_counts.tolist() == [1, 2]
    assert s.true_supertypes.tolist() == [[1.0, 0.0], [0.3, 0.7]]
    np.testing.assert_array_equal(s.strategies[1].kernel, [[0, 1], [0, 1]])
    s = parse_scenario(
        """
[game]
kind = "demand-response"
reserve = 1.0
[[players]]
supertype = { values = [1.0, 2.0], probs = [0.5, 0.5] }
levels = [1.0, 2.0, 4.0]
strategy = { kind = "supertype-lie", bid = { values = [4.0], probs = [1.0] } }
[[players]]
supertype = 3.0
"""
    )
    assert [lv.tolist() for lv in s.game.levels] == [[1.0, 2.0, 4.0], [3.0]]
    assert s.strategies[0].bid.tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match=r"players\[1\]\.strategy\.bid"):
        parse_scenario(
            """
[game]
kind = "demand-response"
reserve = 1.0
[[players]]
supertype = 1.0
[[players]]
supertype = 3.0
strategy = { kind = "supertype-lie", bid = { values = [1.0], probs = [1.0] } }
"""
        )


# ----- too big for memory ------------------------------------------------------------------------
def test_a_market_too_big_for_memory_is_refused_before_allocating():
    wide = Supertype(np.arange(1, 65_537, dtype=float), np.full(65_536, 1 / 65_536))
    with pytest.raises(ValueError, match="too big for memory"):
        DemandResponseMarket([wide] * 5_000, reserve=1.0)


@settings(max_examples=20)
@given(st.integers(1, 4), st.data())
def test_heterogeneous_providers_own_levels_match_enumeration(n, data):
    """Providers with different numbers of own levels (beta prime laws of their own)."""
    import dr_reference as dref

    provs = []
    for _ in range(n):
        k = data.draw(st.integers(1, 3))
        mean = data.draw(st.sampled_from([0.5, 1.0, 2.0]))
        provs.append(betaprime_supertype(mean, 1.0, k))
    reserve = Supertype([1.0, 2.0], [0.5, 0.5])
    m = DemandResponseMarket(provs, reserve)
    assert m.type_counts.tolist() == [len(p) for p in provs]
    e = m.expectations()
    shortage = Supertype([1.0], [1.0])
    assert e.social_cost == pytest.approx(dref.social_cost(provs, reserve, shortage), rel=1e-12)
    np.testing.assert_allclose(
        e.payment_received, dref.payments_received(provs, reserve, shortage), rtol=1e-12
    )
    rows = [data.draw(pmfs(len(p))) for p in provs]
    bidders = [Supertype(np.sort(p.values), r) for p, r in zip(provs, rows, strict=True)]
    assert m.optimal_welfare(rows) == pytest.approx(
        -dref.social_cost(bidders, reserve, shortage), rel=1e-12
    )


def test_cli_runs_a_scenario_of_heterogeneous_providers_on_their_own_levels(capsys, tmp_path):
    import json

    from stochmech.cli import main

    path = tmp_path / "own-levels.toml"
    players = "".join(
        f"[[players]]\nsupertype = {{ mean = {m}, var = 2.0, levels = {k} }}\n"
        for m, k in ((0.5, 3), (1.0, 1), (2.0, 4), (1.5, 2))
    )
    path.write_text(
        f'days = 400\n[game]\nkind = "demand-response"\nreserve = 1.0\n{players}',
        encoding="utf-8",
    )
    assert main(["run", str(path), "--no-plots", "--json", "--out", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["players"]) == 4
    assert report["ledger"]["joint_test_groups"] == 1 * 4 * 2


def test_saved_ragged_simulations_continue_bit_for_bit():
    from stochmech.simulation import Simulation

    game, theta = _ragged_market_game()
    dr = DemandResponseMarket(
        [Supertype([0.5, 2.0], [0.5, 0.5]), 4.0, Supertype([1.0, 2.0, 3.0], [0.2, 0.3, 0.5])],
        reserve=Supertype([1.0, 2.0], [0.4, 0.6]),
    )
    for g, t in ((game, theta), (dr, dr.supertype_bids())):
        sim = Simulation(g, t, seed=4, chunk=500).run(1_200)
        back = Simulation.from_bytes(sim.to_bytes())
        assert back.game.type_counts.tolist() == g.type_counts.tolist()
        a = sim.run(800).result()
        b = back.run(800).result()
        np.testing.assert_array_equal(a.average_utility, b.average_utility)
        assert a.budget == b.budget


def test_two_hundred_providers_each_on_its_own_levels():
    """A market no union grid could hold: 200 providers x 16 levels of their own."""
    means = np.geomspace(0.5, 2.0, 200)
    providers = [betaprime_supertype(float(m), 2.0, 16) for m in means]
    m = DemandResponseMarket(providers, reserve=betaprime_supertype(1.0, 2.0, 16))
    assert m.type_counts.tolist() == [16] * 200 and m.type_values is None
    liar = Lie.inflate(1).strategy(m, 0)
    run = simulate(m, m.supertype_bids(), [liar] + [Truthful()] * 199, days=2_000, seed=3)
    truthful = DNBEMechanism(m).opening(m.supertype_bids())  # eq. (5) through the interface
    np.testing.assert_allclose(
        -truthful.first_stage_payments, m.expected_payments(), rtol=1e-10, atol=1e-15
    )
    assert run.supertype_bids.shape == (200, 16) and run.days == 2_000
    # the liar reports its next own level: its declaration is its own law shifted by one
    np.testing.assert_allclose(run.supertype_bids[0], [0.0] + [1 / 16] * 14 + [2 / 16])
