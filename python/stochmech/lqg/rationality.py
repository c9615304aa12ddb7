"""Individual rationality and budget of the layered mechanism, in expectation and per run.

The LQG paper does not define individual rationality; the definition used here is derived, and
stated where it is used:

* **Outside option.** An agent that does not take part applies no control (``u_i = 0``), so its
  state runs open loop, ``x_i(t+1) = a_i x_i(t) + w_i(t)``, and it pays and receives nothing.
  Its utility is ``sum_{t<T} q_i x_i(t)^2``, with expectation
  ``q_i sum_t (a_i^(2t) (mu_i^2 + zeta_i) + sigma_i sum_{k<t} a_i^(2k))`` (``mu = E x(0)``).
* **Individual rationality (ex ante).** Truthful reporting gives agent ``i`` at least its outside
  option in expectation, ``E u_i(truth) >= E outside_i``. With the Clarke pivot this holds for
  every agent (a derived claim, checked numerically): each layer's optimal welfare from
  ``X_hat(s, s)`` is at least the others' optimum without ``i`` (the pivot ``h_i(s)``) plus
  ``i``'s open-loop valuation of its own layer state, because "``u_i = 0``, the others optimal
  without ``i``" is feasible; the layers' cross terms have mean zero. With ``h_i = 0`` it can
  fail. Ex post (path by path) it can fail with either pivot.
* **Budget.** The ISO's budget at layer ``s`` is ``sum_i p_i(s)`` (positive: the ISO collects).
  With truthful bids its expectation is ``sum_i E h_i(s) - (N-1) E[X(s,s)' S_s X(s,s)]``.

Everything here for truthful bids is in closed form, from the Riccati values ``S_s`` and the
diagonals of the pivot values ``S^(-i)_s`` (``O(T N^2)`` memory, streamed when needed); the tests
compare it with the sigma-point expectation of :func:`~stochmech.lqg.verification.
exact_expected_utilities` and with Monte Carlo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stochmech.lqg._validation import check_finite_result, frozen
from stochmech.lqg.layered import LayeredRun, LayeredVCG
from stochmech.lqg.verification import initial_mean_vector

__all__ = [
    "IR_DEFINITION",
    "BudgetReport",
    "IndividualRationality",
    "expected_budget",
    "individual_rationality",
    "outside_option",
    "realized_budget",
    "realized_outside_option",
]

#: One-line statement of the individual-rationality notion reported by this module.
IR_DEFINITION = (
    "ex ante: E[utility of truthful reporting] >= E[outside option]; outside option = not "
    "participating: own control fixed at 0 (open-loop state), no payments"
)


def outside_option(mech: LayeredVCG, initial_mean: Any = None) -> np.ndarray:
    """Expected utility of each agent when it stays out (``u_i = 0``, no payments), (N,).

    Examples
    --------
    >>> from stochmech.lqg import LQGAgents, LayeredVCG
    >>> agents = LQGAgents([0.5, 1.0], [1.0, 1.0], [-1.0, -2.0], [-1.0, -1.0], [1.0, 0.0],
    ...                    [1.0, 1.0])
    >>> outside_option(LayeredVCG(agents, horizon=2)).tolist()  # -(1 + 0.25 + 1), -2 (1 + 1)
    [-2.25, -4.0]
    """
    _check_mech(mech)
    with np.errstate(over="ignore", invalid="ignore"):
        out = _outside_option(mech, initial_mean)
    cause = "the agents' a, q, sigma, zeta over the horizon (and initial_mean)"
    what = "outside options"
    check_finite_result(f"the {what}", out, cause)
    return out


def _outside_option(mech: LayeredVCG, initial_mean: Any) -> np.ndarray:
    ag, horizon = mech.agents, mech.horizon
    mean = initial_mean_vector(mech, initial_mean)
    second = np.empty((horizon, ag.n))
    second[0] = mean**2 + ag.zeta
    for t in range(1, horizon):
        second[t] = ag.a**2 * second[t - 1] + ag.sigma
    return ag.q * second.sum(axis=0)


def realized_outside_option(mech: LayeredVCG, layer_inputs: Any) -> np.ndarray:
    """Each agent's open-loop valuation ``sum_t q_i x_i(t)^2`` (``u_i = 0``) on given inputs.

    ``layer_inputs`` has shape (T, N) (row 0 ``x(0)``, row ``s`` ``w(s-1)``); returns (N,).
    """
    _check_mech(mech)
    with np.errstate(over="ignore", invalid="ignore"):
        out = _realized_outside_option(mech, layer_inputs)
    cause = "the agents' a, q, sigma, zeta over the horizon (and layer_inputs)"
    what = "realized outside options"
    check_finite_result(f"the {what}", out, cause)
    return out


def _realized_outside_option(mech: LayeredVCG, layer_inputs: Any) -> np.ndarray:
    xi = mech._check_inputs(layer_inputs, batched=False)
    x = np.zeros_like(xi)
    x[0] = xi[0]
    for t in range(1, mech.horizon):
        x[t] = mech.agents.a * x[t - 1] + xi[t]
    return mech.agents.q * (x**2).sum(axis=0)


def _check_mech(mech: Any) -> None:
    if not isinstance(mech, LayeredVCG):
        raise TypeError(f"mech must be a LayeredVCG, got {type(mech).__name__}")


def _expected_pivots(mech: LayeredVCG, second: np.ndarray) -> np.ndarray:
    """``E h_i(s)`` for truthful, independent zero-mean bids with variances ``second``, (T, N).

    A nonzero initial mean adds :func:`_pivot_of_mean` at layer 0.
    """
    if mech.pivot == "none" or mech.agents.n == 1:
        return np.zeros_like(second)
    diag = mech.pivot_diagonals()  # (T, N, N)
    return np.einsum("tij,tj->ti", diag, second)


@dataclass(frozen=True)
class IndividualRationality:
    """Expected truthful utilities against the outside option (:data:`IR_DEFINITION`).

    Attributes
    ----------
    expected_utilities : ndarray, shape (N,)
        ``E u_i`` with every agent truthful.
    outside_options : ndarray, shape (N,)
        ``E`` of the open-loop valuation, no payments (:func:`outside_option`).
    definition : str
    """

    expected_utilities: np.ndarray
    outside_options: np.ndarray
    definition: str = IR_DEFINITION

    @property
    def margins(self) -> np.ndarray:
        """``expected_utilities - outside_options`` (>= 0: individually rational)."""
        return self.expected_utilities - self.outside_options

    @property
    def holds(self) -> bool:
        """Whether every margin is >= 0, up to rounding (1e-9 of the utilities' scale)."""
        scale = 1.0 + float(np.abs(self.expected_utilities).max())
        return bool((self.margins >= -1e-9 * scale).all())


def individual_rationality(mech: LayeredVCG, initial_mean: Any = None) -> IndividualRationality:
    """Expected truthful utilities and outside options, in closed form.

    ``E u_i = E W - sum_s E h_i(s)``: with truthful bids agent ``i``'s utility is the realized
    social welfare minus its pivots, and ``E W = sum_s E[X(s,s)' S_s X(s,s)]``.

    Examples
    --------
    >>> from stochmech.lqg import LQGAgents, LayeredVCG
    >>> agents = LQGAgents([0.9, 1.0, 0.8], [1.0, -1.0, 1.0], [-1.0, -0.5, -2.0],
    ...                    [-1.0, -2.0, -1.0], [0.1, 0.2, 0.1], [1.0, 1.0, 1.0])
    >>> ir = individual_rationality(LayeredVCG(agents, horizon=5))
    >>> ir.holds, ir.margins.shape
    (True, (3,))
    """
    _check_mech(mech)
    with np.errstate(over="ignore", invalid="ignore"):
        out = _individual_rationality(mech, initial_mean)
    cause = "the agents' a, q, sigma, zeta over the horizon (and initial_mean)"
    check_finite_result("the expected utilities", out.expected_utilities, cause)
    check_finite_result("the outside options", out.outside_options, cause)
    return out


def _individual_rationality(mech: LayeredVCG, initial_mean: Any) -> IndividualRationality:
    mean = initial_mean_vector(mech, initial_mean)
    second = mech.agents.input_variances(mech.horizon)
    value = mech.solution.value[: mech.horizon]
    welfare = float((np.einsum("tii->ti", value) * second).sum() + mean @ value[0] @ mean)
    pivots = _expected_pivots(mech, second).sum(axis=0)
    pivots += _pivot_of_mean(mech, mean)
    return IndividualRationality(
        expected_utilities=frozen(welfare - pivots),
        outside_options=frozen(outside_option(mech, mean)),
    )


def _pivot_of_mean(mech: LayeredVCG, mean: np.ndarray) -> np.ndarray:
    """``h_i(0)`` evaluated at ``E x(0)`` (the mean's part of ``E h_i(0)``), shape (N,)."""
    if mech.pivot == "none" or mech.agents.n == 1 or not mean.any():
        return np.zeros(mech.agents.n)
    return mech._pivots_at(mean, 0)


@dataclass(frozen=True)
class BudgetReport:
    """The ISO's budget ``sum_i p_i(s)`` per layer.

    Attributes
    ----------
    per_layer : ndarray, shape (T,)
        Expected (or realized) budget of each layer; positive: the ISO collects.
    """

    per_layer: np.ndarray

    @property
    def total(self) -> float:
        return float(self.per_layer.sum())

    @property
    def deficit_layers(self) -> int:
        """Number of layers where the ISO pays out more than it collects."""
        return int((self.per_layer < 0).sum())


def expected_budget(mech: LayeredVCG, initial_mean: Any = None) -> BudgetReport:
    """Expected budget per layer with truthful bids, in closed form.

    ``E sum_i p_i(s) = sum_i E h_i(s) - (N-1) E[X(s,s)' S_s X(s,s)]`` (the cross terms of the
    layer welfare have mean zero).

    Examples
    --------
    >>> from stochmech.lqg import LQGAgents, LayeredVCG
    >>> agents = LQGAgents([1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [0.0, 0.0],
    ...                    [1.0, 0.0])
    >>> expected_budget(LayeredVCG(agents, horizon=1, pivot="none")).per_layer.tolist()
    [1.0]
    """
    _check_mech(mech)
    with np.errstate(over="ignore", invalid="ignore"):
        out = _expected_budget(mech, initial_mean)
    cause = "the agents' a, q, sigma, zeta over the horizon (and initial_mean)"
    check_finite_result("the per layer", out.per_layer, cause)
    return out


def _expected_budget(mech: LayeredVCG, initial_mean: Any) -> BudgetReport:
    n = mech.agents.n
    mean = initial_mean_vector(mech, initial_mean)
    second = mech.agents.input_variances(mech.horizon)
    value = mech.solution.value[: mech.horizon]
    layer_welfare = (np.einsum("tii->ti", value) * second).sum(axis=1)
    layer_welfare[0] += mean @ value[0] @ mean
    pivots = _expected_pivots(mech, second).sum(axis=1)
    pivots[0] += _pivot_of_mean(mech, mean).sum()
    return BudgetReport(per_layer=frozen(pivots - (n - 1) * layer_welfare))


def realized_budget(run: LayeredRun) -> BudgetReport:
    """The budget per layer of one run, ``sum_i p_i(s)``."""
    return BudgetReport(per_layer=frozen(run.payments.sum(axis=1)))
