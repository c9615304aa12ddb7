"""Dynamic deterministic VCG (second paper, Theorem 2).

Each agent bids its one-step utilities ``F_{i,t}(x, u) = q_i(t) x^2 + r_i(t) u^2`` (``q <= 0``,
``r < 0``), its time-varying linear state equation ``x_i(t+1) = a_i(t) x_i(t) + b_i(t) u_i(t)``
and its initial state; the ISO solves the whole horizon as one open-loop problem with balance
``sum_i u_i(t) = 0`` at every ``t`` and charges Groves payments
``p_i = h_i - sum_{j != i} sum_t F_hat_{j,t}(x*_j(t), u*_j(t))``; the Clarke pivot ``h_i`` is the
optimal reported welfare of the same problem with agent ``i`` removed.

``method="riccati"`` (default) eliminates the balance constraint inside a time-varying Riccati
recursion (:func:`stochmech.lqg.riccati.constrained_riccati`); ``method="kkt"`` solves one dense
KKT system (:func:`stochmech.lqg.reference.dense_balanced_lq_plan`). Both give the same plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stochmech.lqg._validation import (
    as_float_array,
    check_finite_result,
    check_int,
    check_sign,
    frozen,
)
from stochmech.lqg.reference import dense_balanced_lq_plan
from stochmech.lqg.riccati import constrained_riccati

__all__ = ["DynamicVCGResult", "LinearQuadraticBid", "dynamic_utilities", "dynamic_vcg"]


@dataclass(frozen=True, init=False, eq=False)
class LinearQuadraticBid:
    """One agent's (bid or true) time-varying scalar linear-quadratic model.

    Parameters
    ----------
    a, b, q, r : float or array_like of shape (T,)
        Per-time coefficients (scalars are repeated over the horizon); ``q <= 0``, ``r < 0``.
    x0 : float
        Initial state.
    horizon : int, optional
        ``T``; needed when every coefficient is a scalar.

    Examples
    --------
    >>> bid = LinearQuadraticBid(a=1.0, b=[1.0, 0.5, 0.5], q=-1.0, r=-1.0, x0=2.0)
    >>> bid.horizon, bid.b.tolist()
    (3, [1.0, 0.5, 0.5])
    """

    a: np.ndarray
    b: np.ndarray
    q: np.ndarray
    r: np.ndarray
    x0: float
    horizon: int

    def __init__(self, a: Any, b: Any, q: Any, r: Any, x0: Any, horizon: int | None = None):
        given = {"a": a, "b": b, "q": q, "r": r}
        arrays = {k: as_float_array(k, v) for k, v in given.items()}
        for k, v in arrays.items():
            if v.ndim > 1:
                raise ValueError(f"{k} must be a scalar or a 1-D array, got shape {v.shape}")
        lengths = {len(v) for v in arrays.values() if v.ndim == 1}
        if horizon is not None:
            lengths.add(check_int("horizon", horizon, minimum=1))
        if len(lengths) > 1:
            raise ValueError(f"a, b, q, r (and horizon) disagree on the horizon: {sorted(lengths)}")
        if not lengths:
            raise ValueError("horizon is required when a, b, q, r are all scalars")
        T = lengths.pop()
        if T < 1:
            raise ValueError(f"horizon must be >= 1, got {T}")
        x0_arr = as_float_array("x0", x0, ndim=0)
        for k, v in arrays.items():
            arrays[k] = frozen(np.array(np.broadcast_to(v, (T,))))
        check_sign("q", arrays["q"], upper=0.0, strict=False)
        check_sign("r", arrays["r"], upper=0.0, strict=True)
        for k, v in arrays.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "x0", float(x0_arr))
        object.__setattr__(self, "horizon", T)


@dataclass(frozen=True)
class DynamicVCGResult:
    """Outcome of :func:`dynamic_vcg`.

    Attributes
    ----------
    states, controls : ndarray, shape (T, N)
        The planned ``x*(t)`` (from the bids) and assigned ``u*(t)``.
    payments, pivots, reported_values : ndarray, shape (N,)
        ``p_i``, ``h_i`` and ``sum_t F_hat_{i,t}(x*_i(t), u*_i(t))``.
    """

    states: np.ndarray
    controls: np.ndarray
    payments: np.ndarray
    pivots: np.ndarray
    reported_values: np.ndarray

    @property
    def welfare(self) -> float:
        return float(self.reported_values.sum())


def _stack(bids: Sequence[LinearQuadraticBid]) -> tuple[np.ndarray, ...]:
    return tuple(np.stack([getattr(bid, k) for bid in bids], axis=1) for k in ("a", "b", "q", "r"))


def _plan(
    a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray, x0: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray]:
    if method == "kkt":
        plan = dense_balanced_lq_plan(a, b, q, r, x0)
        return plan.states, plan.controls
    _, gains = constrained_riccati(a, b, q, r)
    assert gains is not None
    horizon, n = a.shape
    states = np.zeros((horizon, n))
    controls = np.zeros((horizon, n))
    x = x0
    for t in range(horizon):
        states[t] = x
        controls[t] = gains[t] @ x
        x = a[t] * x + b[t] * controls[t]
    return states, controls


def dynamic_vcg(
    bids: Sequence[LinearQuadraticBid],
    *,
    pivot: str | Callable[[int, tuple[LinearQuadraticBid, ...]], float] = "clarke",
    method: str = "riccati",
) -> DynamicVCGResult:
    """Plan and Groves payments for the bids of the dynamic deterministic problem.

    Parameters
    ----------
    bids : sequence of LinearQuadraticBid
        One bid per agent, all with the same horizon.
    pivot : {"clarke", "none"} or callable
        ``h_i``: Clarke (optimal welfare without agent ``i``), zero, or ``h(i, others)``.
    method : {"riccati", "kkt"}

    Examples
    --------
    >>> bids = [LinearQuadraticBid(1.0, 1.0, -1.0, -1.0, x0=1.0, horizon=4),
    ...         LinearQuadraticBid(0.9, -1.0, -2.0, -0.5, x0=0.0, horizon=4)]
    >>> res = dynamic_vcg(bids)
    >>> bool(np.allclose(res.controls.sum(axis=1), 0.0))
    True
    """
    bids = list(bids)
    if not bids:
        raise ValueError("bids must contain at least one agent")
    for k, bid in enumerate(bids):
        if not isinstance(bid, LinearQuadraticBid):
            raise ValueError(f"bids[{k}] must be a LinearQuadraticBid, got {type(bid).__name__}")
    horizons = {bid.horizon for bid in bids}
    if len(horizons) != 1:
        raise ValueError(f"all bids must share one horizon, got {sorted(horizons)}")
    if method not in ("riccati", "kkt"):
        raise ValueError(f"method must be 'riccati' or 'kkt', got {method!r}")
    if not (pivot in ("clarke", "none") or callable(pivot)):
        raise ValueError(f"pivot must be 'clarke', 'none' or a callable, got {pivot!r}")
    try:
        with np.errstate(all="ignore"):
            res = _dynamic_vcg(bids, pivot, method)
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"the planning problem is singular: the bids' a, b, q, r ({exc})") from exc
    cause = "the bids' a, b, q, r, x0 over the horizon"
    for name in ("states", "controls", "payments", "pivots", "reported_values"):
        check_finite_result(f"the {name.replace('_', ' ')}", getattr(res, name), cause)
    return res


def _dynamic_vcg(bids: list[LinearQuadraticBid], pivot: Any, method: str) -> DynamicVCGResult:
    a, b, q, r = _stack(bids)
    x0 = np.array([bid.x0 for bid in bids])
    states, controls = _plan(a, b, q, r, x0, method)
    values = (q * states**2 + r * controls**2).sum(axis=0)
    n = len(bids)
    pivots = np.zeros(n)
    for i in range(n):
        others = tuple(bids[:i] + bids[i + 1 :])
        if pivot == "clarke" and others:
            keep = np.arange(n) != i
            xs, us = _plan(a[:, keep], b[:, keep], q[:, keep], r[:, keep], x0[keep], method)
            pivots[i] = float((q[:, keep] * xs**2 + r[:, keep] * us**2).sum())
        elif callable(pivot):
            pivots[i] = float(pivot(i, others))
    payments = pivots - (values.sum() - values)
    return DynamicVCGResult(
        states=frozen(states),
        controls=frozen(controls),
        payments=frozen(payments),
        pivots=frozen(pivots),
        reported_values=frozen(values),
    )


def dynamic_utilities(
    true_models: Sequence[LinearQuadraticBid], result: DynamicVCGResult
) -> np.ndarray:
    """Net utilities of agents with the given TRUE models under an outcome.

    Agent ``i`` applies its assigned ``u*_i(t)``; its true state follows its true dynamics from
    its true initial state; its utility is ``sum_t F_{i,t}(x_i(t), u*_i(t)) - p_i``.
    """
    models = list(true_models)
    horizon, n = result.controls.shape
    if len(models) != n:
        raise ValueError(f"true_models must have length {n}, got {len(models)}")
    out = np.empty(n)
    for i, m in enumerate(models):
        if not isinstance(m, LinearQuadraticBid):
            raise ValueError(
                f"true_models[{i}] must be a LinearQuadraticBid, got {type(m).__name__}"
            )
        if m.horizon != horizon:
            raise ValueError(f"true_models[{i}] has horizon {m.horizon}, expected {horizon}")
        x, total = m.x0, 0.0
        with np.errstate(all="ignore"):
            for t in range(horizon):
                u = result.controls[t, i]
                total += m.q[t] * x * x + m.r[t] * u * u
                x = m.a[t] * x + m.b[t] * u
        out[i] = total - result.payments[i]
    check_finite_result("the net utilities", out, "true_models")
    return out
