"""Static VCG/Groves under sum_i u_i = 0: closed form, numerical solver, dominance of truth."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stochmech.lqg import (
    ConcaveUtility,
    QuadraticUtility,
    balanced_allocation,
    static_utilities,
    static_vcg,
)

EXAMPLES = {"fast": 25, "slow": 300}[os.environ.get("STOCHMECH_HYPOTHESIS", "fast")]
HYP = settings(max_examples=EXAMPLES, deadline=None)


def random_quadratics(rng: np.random.Generator, n: int) -> list[QuadraticUtility]:
    return [QuadraticUtility(-rng.uniform(0.2, 3.0), rng.normal(), rng.normal()) for _ in range(n)]


def kkt_reference(utils: list[QuadraticUtility]) -> np.ndarray:
    """max sum alpha u^2 + beta u s.t. 1'u = 0, as one dense KKT system."""
    n = len(utils)
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = np.diag([2 * f.alpha for f in utils])
    kkt[:n, n] = -1.0
    kkt[n, :n] = 1.0
    rhs = np.concatenate([[-f.beta for f in utils], [0.0]])
    return np.linalg.solve(kkt, rhs)[:n]


@HYP
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 6))
def test_closed_form_matches_kkt_and_numeric(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    utils = random_quadratics(rng, n)
    u, price, _ = balanced_allocation(utils)
    np.testing.assert_allclose(u, kkt_reference(utils), atol=1e-10)
    assert abs(u.sum()) < 1e-12
    np.testing.assert_allclose(
        [f.derivative(x) for f, x in zip(utils, u, strict=True)], price, atol=1e-10
    )
    # the same utilities as plain callables go through the numerical path
    plain = [ConcaveUtility(lambda x, f=f: f(x)) for f in utils]
    res_q, res_n = static_vcg(utils), static_vcg(plain)
    np.testing.assert_allclose(res_n.allocation, res_q.allocation, atol=1e-7)
    np.testing.assert_allclose(res_n.payments, res_q.payments, atol=1e-7)
    assert res_n.kkt_residual <= 1e-8 * (1 + abs(res_n.price))


@HYP
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 5))
def test_clarke_payment_is_literal_formula(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    utils = random_quadratics(rng, n)
    res = static_vcg(utils)
    for i in range(n):
        others = utils[:i] + utils[i + 1 :]
        u_i = kkt_reference(others)
        h = sum(f(x) for f, x in zip(others, u_i, strict=True))
        at_opt = sum(
            f(x) for j, (f, x) in enumerate(zip(utils, res.allocation, strict=True)) if j != i
        )
        assert res.payments[i] == pytest.approx(h - at_opt, abs=1e-10)


@HYP
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 5),
    pivot=st.sampled_from(["clarke", "none", "h"]),
)
def test_truth_dominates_misreports(seed: int, n: int, pivot: str) -> None:
    """Whatever the others bid, a misreport never beats the truth (Groves, any h_i)."""
    rng = np.random.default_rng(seed)
    truth = random_quadratics(rng, n)
    others_bids = random_quadratics(rng, n)  # arbitrary bids of the others
    h = (lambda i, others: float(sum(f.beta for f in others)) ** 2) if pivot == "h" else pivot
    for i in range(n):
        honest = list(others_bids)
        honest[i] = truth[i]
        u_truth = static_utilities(truth, static_vcg(honest, pivot=h))[i]
        for _ in range(5):
            lie = list(honest)
            lie[i] = QuadraticUtility(-rng.uniform(0.05, 5.0), rng.normal() * 3, rng.normal())
            u_lie = static_utilities(truth, static_vcg(lie, pivot=h))[i]
            assert u_lie <= u_truth + 1e-9


def test_without_payments_a_misreport_gains() -> None:
    """The check can fail: without payments, exaggerating one's marginal value pays."""
    truth = [QuadraticUtility(-1.0, 1.0), QuadraticUtility(-1.0, 0.0), QuadraticUtility(-2.0)]
    honest = static_vcg(truth)
    lie = static_vcg([QuadraticUtility(-1.0, 1.5), *truth[1:]])
    own_truth = truth[0](honest.allocation[0])
    own_lie = truth[0](lie.allocation[0])
    assert own_lie > own_truth + 0.03  # 0.2475 vs 0.21
    assert static_utilities(truth, lie)[0] < static_utilities(truth, honest)[0]


def test_general_concave_utilities() -> None:
    utils = [
        ConcaveUtility(lambda u: -math.cosh(u - 1.0), derivative=lambda u: -math.sinh(u - 1.0)),
        ConcaveUtility(lambda u: -(u**4) - u**2 + u),
        QuadraticUtility(-1.0),
    ]
    res = static_vcg(utils)
    assert abs(res.allocation.sum()) < 1e-12
    assert res.kkt_residual < 1e-8
    # optimality: no balanced perturbation improves reported welfare
    rng = np.random.default_rng(0)
    for _ in range(50):
        d = rng.normal(size=3) * 1e-2
        d -= d.mean()
        assert (
            sum(f(x) for f, x in zip(utils, res.allocation + d, strict=True)) <= res.welfare + 1e-12
        )
    # truth dominates scaled/shifted misreports for each agent
    for i in range(3):
        base = static_utilities(utils, res)[i]
        for k, c in [(2.0, 0.0), (0.5, 0.3), (1.0, -0.5)]:
            bids = list(utils)
            bids[i] = ConcaveUtility(lambda u, f=utils[i], k=k, c=c: k * f(u) + c * u)
            assert static_utilities(utils, static_vcg(bids))[i] <= base + 1e-7


def test_single_agent_and_validation() -> None:
    res = static_vcg([QuadraticUtility(-1.0, 2.0)])
    assert res.allocation.tolist() == [0.0] and res.payments.tolist() == [0.0]
    with pytest.raises(ValueError, match="alpha must be < 0"):
        QuadraticUtility(0.0)
    with pytest.raises(ValueError, match="beta must be a finite"):
        QuadraticUtility(-1.0, float("nan"))
    with pytest.raises(ValueError, match="at least one"):
        static_vcg([])
    with pytest.raises(ValueError, match=r"utilities\[1\] must be callable"):
        static_vcg([QuadraticUtility(-1.0), 3.0])
    with pytest.raises(ValueError, match="pivot must be"):
        static_vcg([QuadraticUtility(-1.0)], pivot="vickrey")
    with pytest.raises(ValueError, match="tol must be"):
        balanced_allocation([QuadraticUtility(-1.0)], tol=-1.0)
    with pytest.raises(ValueError, match="true_utilities must have length 1"):
        static_utilities([QuadraticUtility(-1.0)] * 2, res)
