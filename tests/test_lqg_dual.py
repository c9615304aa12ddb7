"""Clarke pivots by Lagrangian duality (riccati.dual_sweep) against the Riccati recursion.

The dual coefficients are checked against a brute-force maximization of each agent's scalar
problem for given multipliers; the duality identity against ``constrained_riccati`` on random
subsets of agents; the mechanism's dual route against its Riccati route and its table.
"""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stochmech.lqg import LayeredVCG, LQGAgents, constrained_riccati, dual_sweep
from stochmech.lqg.verification import FeedbackDeviation

EXAMPLES = {"fast": 20, "slow": 200}[os.environ.get("STOCHMECH_HYPOTHESIS", "fast")]
HYP = settings(max_examples=EXAMPLES, deadline=None)
systems = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 7))


def random_agents(rng: np.random.Generator, n: int) -> LQGAgents:
    return LQGAgents(
        a=rng.uniform(-1.3, 1.3, n),
        b=rng.uniform(-2.0, 2.0, n) * (rng.random(n) > 0.1),  # some agents cannot act
        q=-rng.uniform(0.0, 2.0, n) * (rng.random(n) > 0.1),
        r=-rng.uniform(0.1, 2.0, n),
        sigma=rng.uniform(0.0, 1.0, n),
        zeta=rng.uniform(0.0, 1.0, n),
    )


def scalar_dual_value(a, b, q, r, x, lam) -> float:
    """``max_u sum_k q x(k)^2 + r u(k)^2 + 2 lam_k u(k)``, brute force over the h controls."""
    h = len(lam)
    # x(k) = a^k x + sum_{l < k} a^(k-1-l) b u(l) = free[k] + (G u)[k]
    free = a ** np.arange(h) * x
    g = np.zeros((h, h))
    for k in range(h):
        for m in range(k):
            g[k, m] = a ** (k - 1 - m) * b
    hess = q * g.T @ g + r * np.eye(h)  # objective u' H u + 2 f' u + const
    f = q * g.T @ free + lam
    u = np.linalg.solve(hess, -f)
    return float(q * free @ free + u @ hess @ u + 2 * f @ u)


@HYP
@given(system=systems)
def test_dual_coefficients_are_the_scalar_problem_values(system: tuple[int, int, int]) -> None:
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    ag = random_agents(rng, n)
    for s, alpha, beta, gamma in dual_sweep(ag.a, ag.b, ag.q, ag.r, horizon):
        h = horizon - s
        assert alpha.shape == (n,) and beta.shape == (n, h) and gamma.shape == (n, h, h)
        x, lam = rng.normal(size=n), rng.normal(size=h)
        for j in range(n):
            want = scalar_dual_value(ag.a[j], ag.b[j], ag.q[j], ag.r[j], x[j], lam)
            got = alpha[j] * x[j] ** 2 + 2 * x[j] * beta[j] @ lam + lam @ gamma[j] @ lam
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
            assert np.linalg.eigvalsh(gamma[j]).min() > 0  # the dual is strictly convex


@HYP
@given(system=systems)
def test_duality_gives_the_riccati_values_of_every_subset(system: tuple[int, int, int]) -> None:
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    ag = random_agents(rng, n)
    subsets = [np.arange(n)] + [np.flatnonzero(rng.random(n) < 0.6) for _ in range(3)]
    subsets = [j for j in subsets if len(j) > 0]
    values = []
    for keep in subsets:
        data = (np.broadcast_to(v[keep], (horizon, len(keep))) for v in (ag.a, ag.b, ag.q, ag.r))
        values.append(constrained_riccati(*data, keep_gains=False)[0])
    for s, alpha, beta, gamma in dual_sweep(ag.a, ag.b, ag.q, ag.r, horizon):
        for keep, value in zip(subsets, values, strict=True):
            total = gamma[keep].sum(axis=0)
            dual = np.diag(alpha[keep]) - beta[keep] @ np.linalg.solve(total, beta[keep].T)
            scale = 1.0 + np.abs(value[s]).max()
            np.testing.assert_allclose(dual, value[s], rtol=1e-10, atol=1e-11 * scale)


def forced(agents: LQGAgents, horizon: int, method: str) -> LayeredVCG:
    mech = LayeredVCG(agents, horizon, pivot_table_bytes=0)
    mech._pivot_method = method
    return mech


@HYP
@given(system=systems, lie=st.booleans())
def test_dual_route_equals_riccati_route_and_table(system: tuple[int, int, int], lie: bool):
    seed, n, horizon = system
    rng = np.random.default_rng(seed)
    agents = random_agents(rng, n)
    xi = agents.sample_layer_inputs(horizon, rng, size=3)
    bids = xi + (rng.normal(size=xi.shape) if lie else 0.0)
    table = LayeredVCG(agents, horizon)
    dual, riccati = forced(agents, horizon, "dual"), forced(agents, horizon, "riccati")
    want = table.run_batch(xi, bids)
    scale = 1.0 + np.abs(want.pivots).max()
    for mech in (dual, riccati):
        got = mech.run_batch(xi, bids)
        np.testing.assert_allclose(got.pivots, want.pivots, rtol=1e-10, atol=1e-11 * scale)
        np.testing.assert_allclose(got.payments, want.payments, rtol=1e-10, atol=1e-11 * scale)
        fast = mech.utilities_batch(xi, FeedbackDeviation(0, control_gain=0.5))
        slow = table.utilities_batch(xi, FeedbackDeviation(0, control_gain=0.5))
        np.testing.assert_allclose(fast.pivot_totals, slow.pivot_totals, atol=1e-10 * scale)
        for s in range(horizon):  # step mode
            step = mech.step(bids[1, s])
            np.testing.assert_allclose(step.pivots, want.pivots[1, s], atol=1e-11 * scale)
    for mech in (dual, riccati):
        assert mech._pivot_values is None  # neither built the table
    diag = table.pivot_diagonals()
    fresh = forced(agents, horizon, "dual").pivot_diagonals()
    np.testing.assert_allclose(fresh, diag, rtol=1e-10, atol=1e-11 * (1.0 + np.abs(diag).max()))
    assert np.all(fresh[:, np.arange(n), np.arange(n)] == 0.0)


def test_route_follows_the_cost_model() -> None:
    rng = np.random.default_rng(0)
    big = LayeredVCG(random_agents(rng, 200), 3)  # constructed cheaply; only the route is read
    big._horizon = 200  # the route of N = T = 200 without building that mechanism
    assert big._route(1) == "dual"
    small = LayeredVCG(random_agents(rng, 4), 50)
    assert small._route(1) == "table"
    streamed = LayeredVCG(random_agents(rng, 30), 400, pivot_table_bytes=0)
    assert streamed._route(1) == "riccati"  # few agents, long horizon: N^4 T < N T^4
    streamed._horizon = 20_000  # dual buffers 8 N T^2 over the budget: never dual
    assert streamed._route(1) == "riccati"


def test_dual_route_refuses_degenerate_agents_with_a_value_error() -> None:
    agents = LQGAgents([1e150, 1.0, 1.0], [1e150, 1.0, 1.0], [-1.0] * 3, [-1.0] * 3, [1.0] * 3,
                       [1.0] * 3)  # fmt: skip
    try:
        mech = forced(agents, 4, "dual")
    except ValueError:
        return  # refused by the constructor: fine too
    xi = agents.sample_layer_inputs(4, np.random.default_rng(0))
    try:
        run = mech.run(xi)
    except ValueError as exc:
        assert "non-finite" in str(exc) or "singular" in str(exc)
    else:
        assert np.isfinite(run.pivots).all()


def exact_value(agents: LQGAgents, keep: list[int], x: np.ndarray, horizon: int) -> Fraction:
    """Optimal noise-free welfare of the agents ``keep`` from ``x``, in exact rationals.

    The KKT system of ``max sum_k X'QX + U'RU`` s.t. ``1'U(k) = 0`` over all ``h`` controls of
    every agent (states eliminated), solved by Gauss-Jordan elimination on fractions.
    """
    a, b, q, r = ([Fraction(float(v[j])) for j in keep] for v in (agents.a, agents.b, agents.q,
                                                                   agents.r))  # fmt: skip
    m, h = len(keep), horizon
    size = m * h + h
    kkt = [[Fraction(0)] * (size + 1) for _ in range(size)]
    lin, const = [Fraction(0)] * (m * h), Fraction(0)
    for j in range(m):
        free = [a[j] ** k * Fraction(float(x[j])) for k in range(h)]
        g = [[a[j] ** (k - 1 - col) * b[j] if col < k else Fraction(0) for col in range(h)]
             for k in range(h)]  # fmt: skip
        for l1 in range(h):
            for l2 in range(h):
                kkt[j * h + l1][j * h + l2] = q[j] * sum(g[k][l1] * g[k][l2] for k in range(h))
            kkt[j * h + l1][j * h + l1] += r[j]
            lin[j * h + l1] = q[j] * sum(g[k][l1] * free[k] for k in range(h))
            kkt[j * h + l1][size] = -lin[j * h + l1]
        const += q[j] * sum(v * v for v in free)
    for k in range(h):
        for j in range(m):
            kkt[m * h + k][j * h + k] = kkt[j * h + k][m * h + k] = Fraction(1)
    for c in range(size):
        p = next(row for row in range(c, size) if kkt[row][c] != 0)
        kkt[c], kkt[p] = kkt[p], kkt[c]
        for row in range(size):
            if row != c and kkt[row][c] != 0:
                f = kkt[row][c] / kkt[c][c]
                kkt[row] = [u - f * v for u, v in zip(kkt[row], kkt[c], strict=True)]
    controls = [kkt[i][size] / kkt[i][i] for i in range(m * h)]
    return const + sum(f * u for f, u in zip(lin, controls, strict=True))


@pytest.mark.parametrize("seed", range(6))
def test_dual_pivots_are_exact_for_badly_scaled_agents(seed: int) -> None:
    """Parameters over six decades: the dual pivots match exact rational arithmetic to 1e-10.

    (The Riccati route, whose constrained inverse cancels, was measured off by up to 1e-6 on
    such cases; it is not the reference here.)
    """
    rng = np.random.default_rng(seed)
    n, horizon = 3, 5
    mags = 10.0 ** rng.uniform(-3, 3, (4, n))
    agents = LQGAgents(mags[0] * rng.choice([-1, 1], n), mags[1] * rng.choice([-1, 1], n),
                       -mags[2], -mags[3], np.ones(n), np.ones(n))  # fmt: skip
    xi = agents.sample_layer_inputs(horizon, rng)
    pivots = forced(agents, horizon, "dual").run(xi).pivots
    for s in range(horizon):
        for i in range(n):
            keep = [j for j in range(n) if j != i]
            want = float(exact_value(agents, keep, xi[s, keep], horizon - s))
            assert pivots[s, i] == pytest.approx(want, rel=1e-10)
