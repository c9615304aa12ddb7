"""LQG at scale: streamed pivots, per-path totals, chunked Monte Carlo and exact expectations,
each against the plain full-table / per-layer computation; individual rationality and budget
against the sigma-point expectation and simulation."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stochmech.lqg import LayeredVCG, LQGAgents
from stochmech.lqg import verification as ver
from stochmech.lqg.rationality import (
    expected_budget,
    individual_rationality,
    outside_option,
    realized_budget,
    realized_outside_option,
)
from stochmech.lqg.reference import reference_layered_run
from stochmech.lqg.verification import (
    BiasedDeviation,
    FeedbackDeviation,
    ScaledDeviation,
    exact_expected_utilities,
    monte_carlo_gain,
)

EXAMPLES = {"fast": 15, "slow": 150}[os.environ.get("STOCHMECH_HYPOTHESIS", "fast")]
HYP = settings(max_examples=EXAMPLES, deadline=None)
systems = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 6))


def random_agents(rng: np.random.Generator, n: int) -> LQGAgents:
    return LQGAgents(
        a=rng.uniform(-1.2, 1.2, n),
        b=rng.uniform(-2.0, 2.0, n),
        q=-rng.uniform(0.0, 2.0, n),
        r=-rng.uniform(0.1, 2.0, n),
        sigma=rng.uniform(0.0, 1.0, n),
        zeta=rng.uniform(0.0, 1.0, n),
    )


def sigma_point_mean(mech: LayeredVCG, f, mean: np.ndarray | None = None) -> np.ndarray:
    """Plain sigma-point expectation of a quadratic function of the inputs, one path at a time."""
    horizon, n = mech.horizon, mech.agents.n
    mu = np.zeros((horizon, n))
    if mean is not None:
        mu[0] = mean
    sd = np.sqrt(mech.agents.input_variances(horizon))
    f0 = f(mu)
    total = np.array(f0, dtype=float)
    for t in range(horizon):
        for j in range(n):
            e = np.zeros((horizon, n))
            e[t, j] = sd[t, j]
            total = total + 0.5 * (f(mu + e) + f(mu - e) - 2 * f0)
    return total


@HYP
@given(system=systems, lie=st.booleans())
def test_streamed_pivots_equal_the_table(system: tuple[int, int, int], lie: bool) -> None:
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    agents = random_agents(rng, n)
    xi = agents.sample_layer_inputs(horizon, rng, size=3)
    bids = xi + (rng.normal(size=xi.shape) if lie else 0.0)
    table = LayeredVCG(agents, horizon)
    streamed = LayeredVCG(agents, horizon, pivot_table_bytes=0)
    a, b = table.run_batch(xi, bids), streamed.run_batch(xi, bids)
    assert streamed._pivot_values is None  # never built the table
    scale = 1.0 + np.abs(a.pivots).max()
    np.testing.assert_allclose(b.pivots, a.pivots, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(b.payments, a.payments, rtol=1e-12, atol=1e-12 * scale)
    # literal pivot formula from the full table
    values = table.pivot_values()
    for i in range(n):
        keep = np.arange(n) != i
        lit = np.einsum("mta,tab,mtb->mt", bids[..., keep], values[:, i], bids[..., keep])
        np.testing.assert_allclose(a.pivots[..., i], lit, rtol=1e-12, atol=1e-12 * scale)
    diag = streamed.pivot_diagonals()  # a by-product of the streamed run
    fresh = LayeredVCG(agents, horizon, pivot_table_bytes=0).pivot_diagonals()
    np.testing.assert_array_equal(fresh, diag)
    for i in range(n):
        keep = np.arange(n) != i
        np.testing.assert_allclose(
            diag[:, i, keep], np.einsum("taa->ta", values[:, i]), rtol=1e-12, atol=1e-14
        )
        assert np.all(diag[:, i, i] == 0.0)
    # step mode streams too, and matches
    for s in range(horizon):
        step = streamed.step(bids[0, s])
        np.testing.assert_allclose(step.payments, a.payments[0, s], rtol=1e-12, atol=1e-12 * scale)
    assert streamed._pivot_values is None


def test_streamed_run_matches_dense_reference() -> None:
    rng = np.random.default_rng(4)
    agents = random_agents(rng, 4)
    xi = agents.sample_layer_inputs(5, rng)
    bids = xi + rng.normal(size=xi.shape)
    run = LayeredVCG(agents, 5, pivot_table_bytes=0).run(xi, bids)
    ref = reference_layered_run(agents, xi, bids)
    scale = 1.0 + np.abs(ref.payments).max()
    np.testing.assert_allclose(run.payments, ref.payments, atol=1e-9 * scale)
    np.testing.assert_allclose(run.pivots, ref.pivots, atol=1e-9 * scale)


@HYP
@given(system=systems, pivot=st.sampled_from(["clarke", "none"]))
def test_utilities_batch_equals_per_layer_run(system: tuple[int, int, int], pivot: str) -> None:
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    mech = LayeredVCG(random_agents(rng, n), horizon, pivot=pivot)
    xi = mech.agents.sample_layer_inputs(horizon, rng, size=4)
    for bids in (None, xi + rng.normal(size=xi.shape), FeedbackDeviation(0, control_gain=0.7)):
        full = mech.run_batch(xi, bids)
        fast = mech.utilities_batch(xi, bids)
        scale = 1.0 + np.abs(full.payments).max() + np.abs(full.valuations).max()
        np.testing.assert_array_equal(fast.valuations, full.valuations)
        np.testing.assert_allclose(fast.utilities, full.utilities, rtol=1e-12, atol=1e-12 * scale)
        np.testing.assert_allclose(
            fast.payment_totals, full.payments.sum(axis=1), rtol=1e-12, atol=1e-12 * scale
        )


def old_monte_carlo(mech, agent, strategy, n_samples, seed):
    """The previous implementation: chunks of ~2 MB, per-layer runs."""
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_samples)
    chunk = max(1, min(n_samples, 2_000_000 // (mech.horizon * mech.agents.n * 8) + 1))
    for start in range(0, n_samples, chunk):
        size = min(chunk, n_samples - start)
        xi = mech.agents.sample_layer_inputs(mech.horizon, rng, size=size)
        diffs[start : start + size] = (
            mech.run_batch(xi, strategy).utilities[:, agent]
            - mech.run_batch(xi).utilities[:, agent]
        )
    return diffs.mean(), diffs.std(ddof=1) / np.sqrt(n_samples)


def test_chunked_monte_carlo_and_exact_equal_previous_results(monkeypatch) -> None:
    rng = np.random.default_rng(8)
    mech = LayeredVCG(random_agents(rng, 6), 30)
    dev = ScaledDeviation(2, factor=1.5)
    mean, se = old_monte_carlo(mech, 2, dev, 3000, seed=5)
    for chunk_bytes in (ver.CHUNK_BYTES, 300_000):  # different chunking, same draws
        monkeypatch.setattr(ver, "CHUNK_BYTES", chunk_bytes)
        est = monte_carlo_gain(mech, 2, dev, n_samples=3000, seed=5, exact=False)
        assert est.mean_gain == pytest.approx(mean, rel=1e-12)
        assert est.std_error == pytest.approx(se, rel=1e-10)
        # sigma points computed one chunk at a time equal the all-at-once rule
        sd = np.sqrt(mech.agents.input_variances(30)).reshape(-1)
        d = len(sd)
        pts = np.zeros((1 + 2 * d, d))
        pts[1 + np.arange(d), np.arange(d)] = sd
        pts[1 + d + np.arange(d), np.arange(d)] = -sd
        vals = mech.run_batch(pts.reshape(-1, 30, 6), dev).utilities
        old = vals[0] + 0.5 * (vals[1 : 1 + d] + vals[1 + d :] - 2 * vals[0]).sum(axis=0)
        new = exact_expected_utilities(mech, dev)
        np.testing.assert_allclose(new, old, rtol=1e-12)


@HYP
@given(system=systems, pivot=st.sampled_from(["clarke", "none"]), shifted=st.booleans())
def test_expected_utilities_and_budget_closed_form(system, pivot: str, shifted: bool) -> None:
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    mech = LayeredVCG(random_agents(rng, n), horizon, pivot=pivot)
    mean = rng.normal(size=n) if shifted else None
    ir = individual_rationality(mech, initial_mean=mean)
    exact = exact_expected_utilities(mech, initial_mean=mean)
    scale = 1.0 + np.abs(exact).max()
    np.testing.assert_allclose(ir.expected_utilities, exact, atol=1e-10 * scale)
    budget = expected_budget(mech, initial_mean=mean)
    by_points = sigma_point_mean(mech, lambda x: mech.run(x).payments.sum(axis=1), mean)
    np.testing.assert_allclose(budget.per_layer, by_points, atol=1e-10 * scale)
    outside = sigma_point_mean(mech, lambda x: realized_outside_option(mech, x), mean)
    np.testing.assert_allclose(ir.outside_options, outside, atol=1e-10 * scale)
    np.testing.assert_allclose(outside_option(mech, mean), outside, atol=1e-10 * scale)
    if pivot == "clarke":  # derived claim: truthful participation beats staying out
        assert ir.holds, ir.margins


def test_ir_fails_without_pivot_and_budget_matches_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    agents = random_agents(rng, 4)
    none = individual_rationality(LayeredVCG(agents, 6, pivot="none"))
    assert not none.holds  # h_i = 0: each agent is charged the others' costs
    mech = LayeredVCG(agents, 6)
    xi = agents.sample_layer_inputs(6, rng, size=20_000)
    batch = mech.run_batch(xi)
    per_layer = batch.payments.sum(axis=2)
    se = per_layer.std(axis=0, ddof=1) / np.sqrt(len(xi))
    assert np.all(np.abs(per_layer.mean(axis=0) - expected_budget(mech).per_layer) < 5 * se)
    run = mech.run(xi[0])
    np.testing.assert_allclose(realized_budget(run).per_layer, run.budget)
    assert realized_budget(run).total == pytest.approx(run.revenue)


def test_initial_mean_in_monte_carlo_and_validation() -> None:
    rng = np.random.default_rng(1)
    mech = LayeredVCG(random_agents(rng, 3), 4)
    mean = np.array([1.0, -2.0, 0.5])
    dev = BiasedDeviation(1, bias=0.4)
    est = monte_carlo_gain(mech, 1, dev, n_samples=4000, seed=2, initial_mean=mean)
    assert est.exact_gain is not None and est.exact_gain <= 1e-10
    assert abs(est.mean_gain - est.exact_gain) < 4 * est.std_error
    with pytest.raises(ValueError, match=r"initial_mean must have shape \(3,\)"):
        individual_rationality(mech, initial_mean=[1.0])
    with pytest.raises(ValueError, match="initial_mean must be finite"):
        exact_expected_utilities(mech, initial_mean=[1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="pivot_table_bytes must be >= 0"):
        LayeredVCG(mech.agents, 4, pivot_table_bytes=-1)
