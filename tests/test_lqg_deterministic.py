"""Dynamic deterministic VCG (Theorem 2): Riccati vs dense KKT, Clarke payments, dominance."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stochmech.lqg import LinearQuadraticBid, dynamic_utilities, dynamic_vcg
from stochmech.lqg.reference import dense_balanced_lq_plan

EXAMPLES = {"fast": 20, "slow": 200}[os.environ.get("STOCHMECH_HYPOTHESIS", "fast")]
HYP = settings(max_examples=EXAMPLES, deadline=None)


def random_model(rng: np.random.Generator, horizon: int) -> LinearQuadraticBid:
    return LinearQuadraticBid(
        a=rng.uniform(-1.5, 1.5, horizon),
        b=rng.uniform(-2.0, 2.0, horizon),
        q=-rng.uniform(0.0, 2.0, horizon),
        r=-rng.uniform(0.1, 2.0, horizon),
        x0=rng.normal(),
    )


@HYP
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4), horizon=st.integers(1, 7))
def test_riccati_matches_dense_kkt_and_clarke_is_literal(seed: int, n: int, horizon: int) -> None:
    rng = np.random.default_rng(seed)
    bids = [random_model(rng, horizon) for _ in range(n)]
    fast, dense = dynamic_vcg(bids), dynamic_vcg(bids, method="kkt")
    scale = 1.0 + np.abs(dense.payments).max()
    np.testing.assert_allclose(fast.controls, dense.controls, atol=1e-9 * scale)
    np.testing.assert_allclose(fast.states, dense.states, atol=1e-9 * scale)
    np.testing.assert_allclose(fast.payments, dense.payments, atol=1e-9 * scale)
    np.testing.assert_allclose(fast.controls.sum(axis=1), 0.0, atol=1e-12 * scale)
    for i in range(n):
        others = [m for j, m in enumerate(bids) if j != i]
        if not others:
            assert fast.pivots[i] == 0.0
            continue
        stack = [np.stack([getattr(m, k) for m in others], axis=1) for k in "abqr"]
        plan = dense_balanced_lq_plan(*stack, np.array([m.x0 for m in others]))
        at_opt = sum(fast.reported_values[j] for j in range(n) if j != i)
        assert fast.payments[i] == pytest.approx(plan.objective - at_opt, abs=1e-9 * scale)


@HYP
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 4),
    horizon=st.integers(1, 6),
    pivot=st.sampled_from(["clarke", "none", "h"]),
)
def test_truth_dominates_misreported_models(seed: int, n: int, horizon: int, pivot: str) -> None:
    """Misreporting utilities, dynamics or initial state never beats the truth (Theorem 2)."""
    rng = np.random.default_rng(seed)
    truth = [random_model(rng, horizon) for _ in range(n)]
    others = [random_model(rng, horizon) for _ in range(n)]  # arbitrary bids of the others
    h = (lambda i, o: float(sum(m.x0 for m in o)) ** 2) if pivot == "h" else pivot
    for i in range(n):
        honest = list(others)
        honest[i] = truth[i]
        u_truth = dynamic_utilities(truth, dynamic_vcg(honest, pivot=h))[i]
        for _ in range(4):
            lie = list(honest)
            lie[i] = (
                random_model(rng, horizon)
                if rng.random() < 0.5
                else LinearQuadraticBid(
                    truth[i].a, truth[i].b, truth[i].q, truth[i].r, truth[i].x0 + rng.normal()
                )
            )
            u_lie = dynamic_utilities(truth, dynamic_vcg(lie, pivot=h))[i]
            assert u_lie <= u_truth + 1e-9 * (1 + abs(u_truth))


def test_without_payments_a_misreport_gains() -> None:
    rng = np.random.default_rng(7)
    truth = [random_model(rng, 5) for _ in range(3)]
    gains = []
    for _ in range(20):
        lie = list(truth)
        lie[0] = LinearQuadraticBid(
            truth[0].a, truth[0].b, truth[0].q * 3, truth[0].r / 3, truth[0].x0
        )
        res_t, res_l = dynamic_vcg(truth), dynamic_vcg(lie)
        own = dynamic_utilities(truth, res_l)[0] + res_l.payments[0]
        own_t = dynamic_utilities(truth, res_t)[0] + res_t.payments[0]
        gains.append(own - own_t)
        truth[0] = random_model(rng, 5)
    assert max(gains) > 1e-3


def test_validation() -> None:
    with pytest.raises(ValueError, match="horizon is required"):
        LinearQuadraticBid(1.0, 1.0, -1.0, -1.0, 0.0)
    with pytest.raises(ValueError, match="disagree on the horizon"):
        LinearQuadraticBid([1.0, 1.0], [1.0], -1.0, -1.0, 0.0)
    with pytest.raises(ValueError, match="r must be < 0"):
        LinearQuadraticBid(1.0, 1.0, -1.0, 0.0, 0.0, horizon=2)
    with pytest.raises(ValueError, match="q must be <= 0"):
        LinearQuadraticBid(1.0, 1.0, [0.0, 0.5], -1.0, 0.0)
    with pytest.raises(ValueError, match="x0 must be finite"):
        LinearQuadraticBid(1.0, 1.0, -1.0, -1.0, float("inf"), horizon=2)
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        LinearQuadraticBid(1.0, 1.0, -1.0, -1.0, 0.0, horizon=0)
    a = LinearQuadraticBid(1.0, 1.0, -1.0, -1.0, 0.0, horizon=2)
    b = LinearQuadraticBid(1.0, 1.0, -1.0, -1.0, 0.0, horizon=3)
    with pytest.raises(ValueError, match="share one horizon"):
        dynamic_vcg([a, b])
    with pytest.raises(ValueError, match="method must be"):
        dynamic_vcg([a], method="lu")
    with pytest.raises(ValueError, match="LinearQuadraticBid"):
        dynamic_vcg([a, 3.0])
