"""Static VCG and Groves payments under the balance constraint (second paper, Section III).

The ISO maximizes ``sum_i F_hat_i(u_i)`` subject to ``sum_i u_i = 0``. Agent ``i`` pays
``p_i = h_i(F_hat_-i) - sum_{j != i} F_hat_j(u*_j)``; the Clarke pivot is
``h_i = max sum_{j != i} F_hat_j(u_j)`` s.t. ``sum_{j != i} u_j = 0`` (agent ``i`` removed).

Concave quadratic bids are solved in closed form. General concave callables are solved
numerically (scipy BFGS on a basis of ``null(1')``, then Newton steps on the optimality
conditions). Tolerance: the returned allocation satisfies the optimality condition "all marginal
utilities equal" up to ``kkt_residual = max_i |F_i'(u_i) - price| <= tol * (1 + max_i |F_i'(u_i)|)``
(default ``tol = 1e-8``; derivatives by central differences unless supplied), and ``sum u = 0``
to rounding. The allocation error is then about ``kkt_residual / min_i |F_i''|``, and payments are
accurate to about ``max_i |F_i'| * allocation error``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg as sla
from scipy import optimize

from stochmech.lqg._validation import check_finite_result, check_int, check_number

__all__ = [
    "ConcaveUtility",
    "QuadraticUtility",
    "StaticVCGResult",
    "balanced_allocation",
    "static_utilities",
    "static_vcg",
]

Pivot = str | Callable[[int, tuple[Any, ...]], float]


@dataclass(frozen=True)
class QuadraticUtility:
    """``F(u) = alpha u^2 + beta u + gamma`` with ``alpha < 0`` (strictly concave).

    Examples
    --------
    >>> QuadraticUtility(-1.0, 2.0)(1.0)
    1.0
    """

    alpha: float
    beta: float = 0.0
    gamma: float = 0.0

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            object.__setattr__(self, name, check_number(name, getattr(self, name)))
        if self.alpha >= 0:
            raise ValueError(f"alpha must be < 0 (strictly concave), got {self.alpha!r}")

    def __call__(self, u: float) -> float:
        return self.alpha * u * u + self.beta * u + self.gamma

    def derivative(self, u: float) -> float:
        return 2.0 * self.alpha * u + self.beta


@dataclass(frozen=True)
class ConcaveUtility:
    """A general concave utility given as a callable, with an optional exact derivative.

    Examples
    --------
    >>> import math
    >>> f = ConcaveUtility(lambda u: -math.cosh(u), derivative=lambda u: -math.sinh(u))
    >>> f(0.0)
    -1.0
    """

    value: Callable[[float], float]
    derivative: Callable[[float], float] | None = None

    def __post_init__(self) -> None:
        if not callable(self.value):
            raise ValueError(f"value must be callable, got {self.value!r}")
        if self.derivative is not None and not callable(self.derivative):
            raise ValueError(f"derivative must be callable or None, got {self.derivative!r}")

    def __call__(self, u: float) -> float:
        return float(self.value(u))


@dataclass(frozen=True)
class StaticVCGResult:
    """Outcome of :func:`static_vcg`.

    Attributes
    ----------
    allocation : ndarray, shape (N,)
        ``u*`` (``sum = 0``).
    payments : ndarray, shape (N,)
        ``p_i``, paid by agent ``i``.
    pivots : ndarray, shape (N,)
        ``h_i(F_hat_-i)``.
    reported_values : ndarray, shape (N,)
        ``F_hat_i(u*_i)``.
    price : float
        The common marginal utility at the optimum (multiplier of the balance constraint).
    kkt_residual : float
        ``max_i |F_hat_i'(u*_i) - price|`` (0 up to rounding for quadratic bids).
    """

    allocation: np.ndarray
    payments: np.ndarray
    pivots: np.ndarray
    reported_values: np.ndarray
    price: float
    kkt_residual: float

    @property
    def welfare(self) -> float:
        """Reported welfare ``sum_i F_hat_i(u*_i)``."""
        return float(self.reported_values.sum())


def _check_utilities(utilities: Sequence[Any]) -> list[Any]:
    utils = list(utilities)
    for k, f in enumerate(utils):
        if not callable(f):
            raise ValueError(f"utilities[{k}] must be callable, got {f!r}")
    return utils


def _derivative(f: Any, u: float) -> float:
    d = getattr(f, "derivative", None)
    if d is not None:
        return float(d(u))
    h = 1e-5 * (1.0 + abs(u))
    return (float(f(u + h)) - float(f(u - h))) / (2.0 * h)


def _second(f: Any, u: float) -> float:
    if isinstance(f, QuadraticUtility):
        return 2.0 * f.alpha
    h = 1e-4 * (1.0 + abs(u))
    return (_derivative(f, u + h) - _derivative(f, u - h)) / (2.0 * h)


def balanced_allocation(
    utilities: Sequence[Any], *, tol: float = 1e-8, max_newton: int = 50
) -> tuple[np.ndarray, float, float]:
    """Maximize ``sum_i F_i(u_i)`` s.t. ``sum_i u_i = 0``.

    Returns ``(u, price, kkt_residual)``. Quadratic utilities use the closed form
    ``u_i = (price - beta_i) / (2 alpha_i)``, ``price = sum(beta/alpha) / sum(1/alpha)``.

    Raises
    ------
    ValueError
        If no utility is given or one is not callable.
    RuntimeError
        If the numerical solve does not reach the tolerance (e.g. a non-concave utility).

    Examples
    --------
    >>> u, price, res = balanced_allocation([QuadraticUtility(-1.0, 1.0), QuadraticUtility(-1.0)])
    >>> u.tolist(), price
    ([0.25, -0.25], 0.5)
    """
    utils = _check_utilities(utilities)
    n = len(utils)
    if n == 0:
        raise ValueError("utilities must contain at least one agent")
    tol = check_number("tol", tol)
    if not tol > 0:
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    max_newton = check_int("max_newton", max_newton, minimum=0)
    if n == 1:
        return np.zeros(1), _derivative(utils[0], 0.0), 0.0
    if all(isinstance(f, QuadraticUtility) for f in utils):
        alpha = np.array([f.alpha for f in utils])
        beta = np.array([f.beta for f in utils])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            price = float((beta / alpha).sum() / (1.0 / alpha).sum())
            u = (price - beta) / (2.0 * alpha)
            residual = float(np.abs(2 * alpha * u + beta - price).max())
        check_finite_result("the balanced allocation", (u, price), "the utilities' alpha, beta")
        return u, price, residual
    basis = sla.null_space(np.ones((1, n)))

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        u = basis @ z
        val = -sum(float(f(ui)) for f, ui in zip(utils, u, strict=True))
        grad = -basis.T @ np.array([_derivative(f, ui) for f, ui in zip(utils, u, strict=True)])
        return val, grad

    res = optimize.minimize(objective, np.zeros(n - 1), jac=True, method="BFGS")
    u = basis @ res.x
    for _ in range(max_newton):
        d1 = np.array([_derivative(f, ui) for f, ui in zip(utils, u, strict=True)])
        price = float(d1.mean())
        if np.abs(d1 - price).max() <= tol * (1.0 + np.abs(d1).max()):
            break
        d2 = np.array([_second(f, ui) for f, ui in zip(utils, u, strict=True)])
        if np.any(d2 >= 0):
            break
        lam = (-u.sum() + (d1 / d2).sum()) / (1.0 / d2).sum()
        u = u + (lam - d1) / d2
    d1 = np.array([_derivative(f, ui) for f, ui in zip(utils, u, strict=True)])
    price = float(d1.mean())
    residual = float(np.abs(d1 - price).max())
    if not residual <= tol * (1.0 + np.abs(d1).max()):
        raise RuntimeError(
            f"balanced allocation did not converge: marginal utilities differ by {residual:.3g} "
            f"(tolerance {tol:g}); are the utilities concave?"
        )
    return u, price, residual


def static_vcg(
    bids: Sequence[Any], *, pivot: Pivot = "clarke", tol: float = 1e-8
) -> StaticVCGResult:
    """Allocation and Groves payments for bid utilities ``F_hat_i``.

    Parameters
    ----------
    bids : sequence of callables
        :class:`QuadraticUtility`, :class:`ConcaveUtility` or any concave ``float -> float``.
    pivot : {"clarke", "none"} or callable
        ``h_i``: the Clarke pivot (others' optimal welfare without ``i``), zero, or any
        ``h(i, others) -> float`` of agent ``i`` and the tuple of the others' bids.
    tol : float
        Tolerance of the numerical solve (see the module docstring).

    Examples
    --------
    >>> res = static_vcg([QuadraticUtility(-1.0, 1.0), QuadraticUtility(-1.0),
    ...                   QuadraticUtility(-2.0, -1.0)])
    >>> bool(abs(res.allocation.sum()) < 1e-12)
    True
    >>> res.price
    0.2
    """
    utils = _check_utilities(bids)
    if not (pivot in ("clarke", "none") or callable(pivot)):
        raise ValueError(f"pivot must be 'clarke', 'none' or a callable, got {pivot!r}")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        res = _static_vcg(utils, pivot, tol)
    cause = "the bids' coefficients"
    for name in ("allocation", "payments", "pivots", "reported_values", "price"):
        check_finite_result(f"the {name.replace('_', ' ')}", getattr(res, name), cause)
    return res


def _static_vcg(utils: list[Any], pivot: Pivot, tol: float) -> StaticVCGResult:
    u, price, residual = balanced_allocation(utils, tol=tol)
    values = np.array([float(f(ui)) for f, ui in zip(utils, u, strict=True)])
    n = len(utils)
    pivots = np.zeros(n)
    for i in range(n):
        others = tuple(utils[:i] + utils[i + 1 :])
        if pivot == "clarke":
            if others:
                u_i, _, _ = balanced_allocation(others, tol=tol)
                pivots[i] = sum(float(f(x)) for f, x in zip(others, u_i, strict=True))
        elif callable(pivot):
            pivots[i] = float(pivot(i, others))
    payments = pivots - (values.sum() - values)
    return StaticVCGResult(
        allocation=u,
        payments=payments,
        pivots=pivots,
        reported_values=values,
        price=price,
        kkt_residual=residual,
    )


def static_utilities(true_utilities: Sequence[Any], result: StaticVCGResult) -> np.ndarray:
    """Net utilities ``F_i(u*_i) - p_i`` of agents whose TRUE utilities are given."""
    utils = _check_utilities(true_utilities)
    if len(utils) != len(result.allocation):
        raise ValueError(
            f"true_utilities must have length {len(result.allocation)}, got {len(utils)}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        vals = np.array([float(f(u)) for f, u in zip(utils, result.allocation, strict=True)])
        out = vals - result.payments
    check_finite_result("the net utilities", out, "true_utilities")
    return out
