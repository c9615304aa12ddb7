"""Layered dynamic stochastic VCG: fast engine vs the paper's definitions, efficiency, welfare."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stochmech.lqg import LayeredVCG, LQGAgents, constrained_riccati
from stochmech.lqg.reference import (
    dense_balanced_lq_plan,
    reference_centralized_run,
    reference_layered_run,
)
from stochmech.lqg.verification import centralized_closed_loop, check_expected_welfare

EXAMPLES = {"fast": 20, "slow": 200}[os.environ.get("STOCHMECH_HYPOTHESIS", "fast")]
HYP = settings(max_examples=EXAMPLES, deadline=None)


def random_agents(rng: np.random.Generator, n: int) -> LQGAgents:
    return LQGAgents(
        a=rng.uniform(-1.3, 1.3, n),
        b=rng.uniform(-2.0, 2.0, n),
        q=-rng.uniform(0.0, 2.0, n),
        r=-rng.uniform(0.1, 2.0, n),
        sigma=rng.uniform(0.05, 1.0, n),
        zeta=rng.uniform(0.05, 1.0, n),
    )


systems = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 6))


@HYP
@given(system=systems, lie=st.booleans(), pivot=st.sampled_from(["clarke", "none"]))
def test_run_matches_dense_kkt_reference(system: tuple[int, int, int], lie: bool, pivot: str):
    """Plans: dense KKT solves of max L_s WITH cross terms; payments: the literal formula."""
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    agents = random_agents(rng, n)
    xi = agents.sample_layer_inputs(horizon, rng)
    bids = xi + (rng.normal(size=xi.shape) if lie else 0.0)
    mech = LayeredVCG(agents, horizon, pivot=pivot)
    run = mech.run(xi, bids)
    ref = reference_layered_run(agents, xi, bids, pivot=pivot)
    scale = 1.0 + max(np.abs(ref.payments).max(), np.abs(ref.utilities).max())
    for name in ("states", "controls", "payments", "pivots", "valuations", "utilities"):
        np.testing.assert_allclose(getattr(run, name), getattr(ref, name), atol=1e-9 * scale)
    np.testing.assert_allclose(run.controls.sum(axis=1), 0.0, atol=1e-12 * scale)
    # step-by-step operation gives the same numbers and the same layer plans
    for s in range(horizon):
        step = mech.step(bids[s])
        np.testing.assert_allclose(step.plan_controls, ref.layer_controls[s, s:], atol=1e-9 * scale)
        np.testing.assert_allclose(step.plan_states, ref.layer_states[s, s:], atol=1e-9 * scale)
        np.testing.assert_allclose(step.payments, run.payments[s], atol=1e-9 * scale)
        np.testing.assert_allclose(step.controls, run.controls[s], atol=1e-12 * scale)
        np.testing.assert_allclose(step.believed_state, run.believed_states[s], atol=1e-12 * scale)


@HYP
@given(system=systems)
def test_cross_terms_do_not_move_the_layer_plan(system: tuple[int, int, int]) -> None:
    """Max L_s with cross terms = plain LQ plan from X_hat(s, s).

    See docs/modelling.md ("Why the layers decouple").
    """
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    agents = random_agents(rng, n)
    xi = agents.sample_layer_inputs(horizon, rng)
    bids = xi + rng.normal(size=xi.shape)
    ref = reference_layered_run(agents, xi, bids)
    for s in range(horizon):
        tile = [np.tile(v, (horizon - s, 1)) for v in (agents.a, agents.b, agents.q, agents.r)]
        plain = dense_balanced_lq_plan(*tile, bids[s])
        np.testing.assert_allclose(ref.layer_controls[s, s:], plain.controls, atol=1e-9)


@HYP
@given(system=systems)
def test_payment_sum_collapses_cross_terms(system: tuple[int, int, int]) -> None:
    """sum_s p_i(s) = sum_s h_i(s) - sum_{j != i} sum_t F_j(x_hat_j(t), u_j(t))."""
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    agents = random_agents(rng, n)
    xi = agents.sample_layer_inputs(horizon, rng)
    run = LayeredVCG(agents, horizon).run(xi, xi + rng.normal(size=xi.shape))
    reported = (agents.q * run.believed_states**2 + agents.r * run.controls**2).sum(axis=0)
    expected = run.pivots.sum(axis=0) - (reported.sum() - reported)
    np.testing.assert_allclose(
        run.payments.sum(axis=0), expected, atol=1e-9 * (1 + np.abs(expected).max())
    )


@HYP
@given(system=systems)
def test_applied_controls_are_centralized_closed_loop_optimum(system: tuple[int, int, int]):
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    agents = random_agents(rng, n)
    xi = agents.sample_layer_inputs(horizon, rng)
    run = LayeredVCG(agents, horizon).run(xi)
    states, controls = reference_centralized_run(agents, xi)  # dense re-planning
    np.testing.assert_allclose(run.controls, controls, atol=1e-9 * (1 + np.abs(controls).max()))
    np.testing.assert_allclose(run.states, states, atol=1e-9 * (1 + np.abs(states).max()))
    _, fast_controls = centralized_closed_loop(LayeredVCG(agents, horizon), xi)
    np.testing.assert_allclose(
        run.controls, fast_controls, atol=1e-12 * (1 + np.abs(controls).max())
    )


@HYP
@given(system=systems)
def test_riccati_value_matches_dense_optimum(system: tuple[int, int, int]) -> None:
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    agents = random_agents(rng, n)
    tile = [np.tile(v, (horizon, 1)) for v in (agents.a, agents.b, agents.q, agents.r)]
    value, gains = constrained_riccati(*tile)
    np.testing.assert_allclose(gains.sum(axis=-2), 0.0, atol=1e-12)  # 1'K = 0: balance
    np.testing.assert_array_equal(gains[-1], 0.0)
    for s in range(horizon):
        x = rng.normal(size=n)
        plan = dense_balanced_lq_plan(*(v[s:] for v in tile), x)
        assert x @ value[s] @ x == pytest.approx(plan.objective, rel=1e-9, abs=1e-12)


@HYP
@given(system=systems)
def test_clarke_pivot_depends_only_on_others_current_bids(system: tuple[int, int, int]) -> None:
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    agents = random_agents(rng, n)
    xi = agents.sample_layer_inputs(horizon, rng)
    mech = LayeredVCG(agents, horizon)
    base = mech.run(xi)
    for i in range(n):
        bids = xi.copy()
        bids[:, i] += rng.normal(size=horizon)
        np.testing.assert_array_equal(mech.run(xi, bids).pivots[:, i], base.pivots[:, i])


def test_expected_welfare_matches_riccati_value() -> None:
    rng = np.random.default_rng(11)
    agents = random_agents(rng, 4)
    check = check_expected_welfare(LayeredVCG(agents, 8), n_samples=20_000, seed=3)
    assert check.covariance == pytest.approx(check.riccati, rel=1e-12)
    assert check.exact_mechanism == pytest.approx(check.riccati, rel=1e-10)
    assert abs(check.monte_carlo - check.riccati) < 4 * check.std_error


def test_strategy_callables() -> None:
    rng = np.random.default_rng(5)
    agents = random_agents(rng, 3)
    mech = LayeredVCG(agents, 5)
    xi = agents.sample_layer_inputs(5, rng)
    truth = mech.run(xi)
    via_callable = mech.run(xi, lambda s, h: h.truth)
    np.testing.assert_array_equal(via_callable.payments, truth.payments)
    fixed = xi + 0.3
    np.testing.assert_allclose(
        mech.run(xi, lambda s, h: fixed[s]).utilities, mech.run(xi, fixed).utilities
    )
    batch = mech.run_batch(np.stack([xi, xi]), lambda s, h: h.truth)
    np.testing.assert_allclose(batch.utilities[1], truth.utilities)

    def mutate(s, h):
        h.states[...] = 0.0
        return h.truth

    with pytest.raises(ValueError, match="read-only"):
        mech.run(xi, mutate)


def test_last_layer_bid_moves_nothing() -> None:
    rng = np.random.default_rng(2)
    agents = random_agents(rng, 3)
    mech = LayeredVCG(agents, 6)
    xi = agents.sample_layer_inputs(6, rng)
    bids = xi.copy()
    bids[-1, 0] += 5.0
    np.testing.assert_allclose(
        mech.run(xi, bids).utilities[0], mech.run(xi).utilities[0], atol=1e-12
    )


def test_validation_leaves_objects_unchanged() -> None:
    good = dict(
        a=[1.0, 0.5], b=[1.0, 1.0], q=[-1.0, 0.0], r=[-1.0, -1.0], sigma=[1.0, 1.0], zeta=[1.0, 1.0]
    )
    for key, bad, msg in [
        ("q", [-1.0, 0.5], "q must be <= 0"),
        ("r", [-1.0, 0.0], "r must be < 0"),
        ("a", [1.0, float("nan")], "a must be finite"),
        ("b", [1.0], "b must have length 2"),
        ("sigma", [1.0, -1.0], "sigma must be >= 0"),
        ("zeta", [[1.0, 1.0]], "zeta must have 1 dimension"),
        ("a", ["x", 1.0], "a must be numeric"),
    ]:
        with pytest.raises(ValueError, match=msg):
            LQGAgents(**{**good, key: bad})
    agents = LQGAgents(**good)
    for horizon, msg in [(0, "horizon must be >= 1"), (2.5, "horizon must be an integer")]:
        with pytest.raises(ValueError, match=msg):
            LayeredVCG(agents, horizon)
    with pytest.raises(ValueError, match="pivot must be one of"):
        LayeredVCG(agents, 3, pivot="vcg")
    mech = LayeredVCG(agents, 3)
    mech.step([0.1, 0.2])
    for bad, msg in [([np.nan, 0.0], "bids at time 1 must be finite"), ([1.0], r"shape \(2,\)")]:
        with pytest.raises(ValueError, match=msg):
            mech.step(bad)
        assert mech.time == 1
    after = mech.step([0.3, 0.4])
    fresh = LayeredVCG(agents, 3)
    fresh.step([0.1, 0.2])
    np.testing.assert_array_equal(after.payments, fresh.step([0.3, 0.4]).payments)
    mech.step([0.0, 0.0])
    with pytest.raises(ValueError, match="exhausted"):
        mech.step([0.0, 0.0])
    mech.reset()
    assert mech.time == 0
    xi = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"layer_inputs must have shape \(3, 2\)"):
        mech.run(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="bids must be finite"):
        mech.run(xi, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="strategy at time 0 must have shape"):
        mech.run(xi, lambda s, h: [0.0])
    with pytest.raises(ValueError, match="strategy at time 1 must be finite"):
        mech.run(xi, lambda s, h: [np.inf, 0.0] if s == 1 else h.truth)
    with pytest.raises(ValueError, match="agent must be < 2"):
        agents.without(2)
