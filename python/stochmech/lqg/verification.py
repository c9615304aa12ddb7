"""Numerical checks of the layered mechanism's claims: efficiency, welfare value, Theorem 3.

What Theorem 3 claims, and what is checked here
-----------------------------------------------
Summing the layered payments over ``s`` collapses the cross terms (the layer decomposition is
exact), so agent ``i``'s utility is ``sum_t F_i(x_i(t), u_i(t)) + sum_{j != i} sum_t
F_j(x_hat_j(t), u_j(t)) - sum_s h_i(X_hat_-i(s, s))``: its TRUE valuation plus the others'
REPORTED welfare, minus terms it cannot move. With the others truthful and ``U(t) = K_t X_hat(t)``,
a misreport by ``i`` is just another causal control policy for the true system, which cannot beat
the closed-loop optimum: no deviation gains in expectation. The module measures this three ways:

* :func:`exact_expected_utilities`: exact expectation over the Gaussian inputs for any AFFINE
  strategy (utilities are then quadratic in the inputs, and a symmetric sigma-point rule with
  ``2 T N + 1`` runs is exact); affinity is checked numerically, not assumed.
* :func:`single_layer_loss`: the closed form ``g_i(s) <= 0`` of the expected utility change per
  unit squared lie at layer ``s`` (truthful past and future, any current bids of the others).
* :func:`monte_carlo_gain`: Monte Carlo with common random numbers, with standard errors, for any
  strategy (also non-affine ones). ``transfers=False`` drops the payments: then deviations DO gain,
  which shows the check can fail.

Where the strong reading of Theorem 3 does not hold (measured, see tests/test_lqg_theorem3.py)
-----------------------------------------------------------------------------------------------
* Uniqueness: at the last layer ``T-1`` (``K_{T-1} = 0``) and for any agent whose bids move no
  control, every bid gives the same utility; truth is optimal but not the unique optimum.
* Off the truthful path: after an own lie at layer ``s0``, reporting the true noise at later
  layers leaves the lie in the ISO's belief forever; reporting the true state residual
  (:class:`CorrectingDeviation`) does strictly better. Truth is optimal at ``s`` given a truthful
  own history, which is what the backward induction uses.
* Others' future misreports: dominance holds against the others' CURRENT bids given truthful
  later play (the paper's rational agents), not against persistent misreports. If another agent
  biases every bid, agent ``i``'s utility credits that agent's reported (drifting) welfare and
  ``i`` gains by a bias of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stochmech._seeding import SeedLike, normalize_seed, seed_sequence
from stochmech.lqg._validation import as_float_array, check_int
from stochmech.lqg.layered import History, LayeredVCG, Strategy

#: Working memory of one chunk of paths in the Monte Carlo and exact evaluators (bytes).
CHUNK_BYTES = 64 * 2**20

__all__ = [
    "BiasedDeviation",
    "CorrectingDeviation",
    "Deviation",
    "DeviationEstimate",
    "ExaggeratingDeviation",
    "FeedbackDeviation",
    "Profile",
    "ScaledDeviation",
    "WelfareCheck",
    "ZeroedDeviation",
    "best_scaled_deviation",
    "centralized_closed_loop",
    "check_expected_welfare",
    "deviation_gains",
    "exact_expected_utilities",
    "exact_gain",
    "initial_mean_vector",
    "monte_carlo_gain",
    "single_layer_loss",
    "standard_deviations",
    "theorem3_table",
]


# ---------------------------------------------------------------------------------- strategies
@dataclass(frozen=True)
class Deviation:
    """A misreporting strategy of one agent; the others' entries are left as given.

    Calling it as ``dev(s, history)`` returns the whole bid profile (truth for the others), so a
    deviation is itself a strategy profile; :class:`Profile` combines several.

    Attributes
    ----------
    agent : int
        The deviating agent.
    layers : tuple of int or None
        The layers at which it lies (all if None); it bids the truth elsewhere.
    """

    agent: int
    layers: tuple[int, ...] | None = None
    #: whether the bid is an affine function of the history (exact expectation applies)
    affine: bool = field(default=True, init=False, repr=False)

    def lies_at(self, s: int) -> bool:
        return self.layers is None or s in self.layers

    def bid(self, s: int, history: History, truth: np.ndarray) -> np.ndarray:
        """Agent's bid at ``s`` given its truthful bid ``truth`` (shape (...,))."""
        raise NotImplementedError

    def apply(self, s: int, history: History, profile: np.ndarray) -> np.ndarray:
        out = np.array(profile, dtype=np.float64, copy=True)
        if self.lies_at(s):
            out[..., self.agent] = self.bid(s, history, history.truth[..., self.agent])
        return out

    def __call__(self, s: int, history: History) -> np.ndarray:
        return self.apply(s, history, history.truth)

    @property
    def label(self) -> str:
        where = "all layers" if self.layers is None else f"layers {list(self.layers)}"
        return (
            f"{type(self).__name__.removesuffix('Deviation').lower()} ({self._detail()}; {where})"
        )

    def _detail(self) -> str:
        return ""


@dataclass(frozen=True)
class ScaledDeviation(Deviation):
    """Bid ``factor * truth``."""

    factor: float = 1.0

    def bid(self, s: int, history: History, truth: np.ndarray) -> np.ndarray:
        return self.factor * truth

    def _detail(self) -> str:
        return f"x{self.factor:g}"


@dataclass(frozen=True)
class BiasedDeviation(Deviation):
    """Bid ``truth + bias``."""

    bias: float = 0.0

    def bid(self, s: int, history: History, truth: np.ndarray) -> np.ndarray:
        return truth + self.bias

    def _detail(self) -> str:
        return f"{self.bias:+g}"


@dataclass(frozen=True)
class ZeroedDeviation(Deviation):
    """Bid zero (hide the disturbance)."""

    def bid(self, s: int, history: History, truth: np.ndarray) -> np.ndarray:
        return np.zeros_like(truth)

    def _detail(self) -> str:
        return "0"


@dataclass(frozen=True)
class FeedbackDeviation(Deviation):
    """History-dependent: ``truth + control_gain * u_i(s-1) + state_gain * x_i(s-1)``."""

    control_gain: float = 0.0
    state_gain: float = 0.0

    def bid(self, s: int, history: History, truth: np.ndarray) -> np.ndarray:
        if s == 0:
            return truth
        i = self.agent
        last_u = history.controls[..., s - 1, i]
        last_x = history.states[..., s - 1, i]
        return truth + self.control_gain * last_u + self.state_gain * last_x

    def _detail(self) -> str:
        return f"u-gain {self.control_gain:g}, x-gain {self.state_gain:g}"


@dataclass(frozen=True)
class CorrectingDeviation(Deviation):
    """Bid ``truth + bias`` at ``layers``; elsewhere report the true STATE residual.

    Outside the lying layers the bid is ``x_i(s) - predicted_i(s)``, which sets the ISO's belief
    of ``x_i(s)`` to the truth (undoing earlier lies) instead of reporting the noise ``w_i(s-1)``.
    """

    bias: float = 0.0

    def apply(self, s: int, history: History, profile: np.ndarray) -> np.ndarray:
        out = np.array(profile, dtype=np.float64, copy=True)
        i = self.agent
        if self.lies_at(s):
            out[..., i] = history.truth[..., i] + self.bias
        else:
            out[..., i] = history.states[..., s, i] - history.predicted_state[..., i]
        return out

    def _detail(self) -> str:
        return f"{self.bias:+g} then correct"


@dataclass(frozen=True)
class ExaggeratingDeviation(Deviation):
    """Non-affine: ``truth + amount * sign(truth)`` (Monte Carlo only)."""

    amount: float = 0.0
    affine: bool = field(default=False, init=False, repr=False)

    def bid(self, s: int, history: History, truth: np.ndarray) -> np.ndarray:
        return truth + self.amount * np.sign(truth)

    def _detail(self) -> str:
        return f"{self.amount:+g} sign"


@dataclass(frozen=True)
class Profile:
    """Several agents' deviations played together (everyone else truthful)."""

    deviations: tuple[Deviation, ...]

    def __call__(self, s: int, history: History) -> np.ndarray:
        out = np.array(history.truth, dtype=np.float64, copy=True)
        for dev in self.deviations:
            out = dev.apply(s, history, out)
        return out

    @property
    def affine(self) -> bool:
        return all(d.affine for d in self.deviations)

    @property
    def label(self) -> str:
        return " + ".join(f"agent {d.agent}: {d.label}" for d in self.deviations)


def standard_deviations(agent: int, horizon: int) -> list[Deviation]:
    """The deviation families used in the Theorem 3 checks (all affine except the last)."""
    mid = tuple(range(horizon // 3, max(horizon // 3 + 1, 2 * horizon // 3)))
    return [
        ScaledDeviation(agent, factor=1.5),
        ScaledDeviation(agent, factor=0.5),
        ScaledDeviation(agent, factor=-1.0),
        BiasedDeviation(agent, bias=0.3),
        ZeroedDeviation(agent),
        ScaledDeviation(agent, layers=(0,), factor=2.0),
        BiasedDeviation(agent, layers=mid, bias=-0.3),
        FeedbackDeviation(agent, control_gain=0.5, state_gain=-0.2),
        CorrectingDeviation(agent, layers=(0,), bias=0.5),
        ExaggeratingDeviation(agent, amount=0.2),
    ]


# ---------------------------------------------------------------------------------- exact
def _is_affine(strategy: Strategy | None) -> bool:
    return strategy is None or bool(getattr(strategy, "affine", False))


def _chunk_size(mech: LayeredVCG, limit: int) -> int:
    """Paths per chunk so that about 16 (T, N) arrays per path fit in :data:`CHUNK_BYTES`."""
    per_path = 16 * 8 * mech.horizon * mech.agents.n
    return max(1, min(limit, CHUNK_BYTES // per_path))


def initial_mean_vector(mech: LayeredVCG, initial_mean: Any) -> np.ndarray:
    """``E x(0)`` as an (N,) array (zeros when ``initial_mean`` is None), validated."""
    n = mech.agents.n
    if initial_mean is None:
        return np.zeros(n)
    mean = as_float_array("initial_mean", initial_mean, ndim=1)
    if mean.shape != (n,):
        raise ValueError(f"initial_mean must have shape ({n},), got {mean.shape}")
    return mean


def exact_expected_utilities(
    mech: LayeredVCG,
    strategy: Strategy | None = None,
    *,
    transfers: bool = True,
    check_affine: bool = True,
    initial_mean: Any = None,
) -> np.ndarray:
    """Exact expected utilities (or valuations) for an affine strategy profile, shape (N,).

    With affine bids every state, control and payment is affine in the Gaussian inputs
    ``xi`` (``T N`` independent coordinates), so a utility is a quadratic ``f`` and
    ``E f = f(mu) + 1/2 sum_k [f(mu + sd_k e_k) + f(mu - sd_k e_k) - 2 f(mu)]`` exactly. The
    ``2 T N + 1`` runs are evaluated in chunks of paths (bounded memory) with
    :meth:`LayeredVCG.utilities_batch`.

    Parameters
    ----------
    mech : LayeredVCG
    strategy : callable or None
        The bidding profile (None: truth).
    transfers : bool
        Utilities with payments (True) or bare valuations (False).
    check_affine : bool
        Verify along two random directions that ``f`` is quadratic (second differences scale by 4,
        first differences by 2); raise ``ValueError`` otherwise.
    initial_mean : array_like of shape (N,), optional
        ``E x(0)`` (default zero); ``x(0)`` has variance ``zeta`` around it.

    Examples
    --------
    >>> from stochmech.lqg import LQGAgents, LayeredVCG
    >>> agents = LQGAgents([1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [0.5, 0.5],
    ...                    [1.0, 1.0])
    >>> mech = LayeredVCG(agents, horizon=3)
    >>> bool(abs(exact_expected_utilities(mech, transfers=False).sum()
    ...          - mech.expected_welfare()) < 1e-12)
    True
    """
    utilities, valuations = _exact_expectations(mech, strategy, check_affine, initial_mean)
    return utilities if transfers else valuations


def _exact_expectations(
    mech: LayeredVCG, strategy: Strategy | None, check_affine: bool, initial_mean: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Sigma-point expectations of the utilities and of the valuations, from the same runs."""
    horizon, n = mech.horizon, mech.agents.n
    mu: np.ndarray = np.zeros((horizon, n))
    mu[0] = initial_mean_vector(mech, initial_mean)
    mu = mu.reshape(-1)
    sd = np.sqrt(mech.agents.input_variances(horizon)).reshape(-1)
    active = np.flatnonzero(sd > 0)
    d = len(active)
    extra = np.zeros((0, horizon * n))
    if check_affine:
        rng = np.random.default_rng(12345)
        dirs = rng.standard_normal((2, horizon * n)) * sd
        extra = np.concatenate([dirs, -dirs, 2 * dirs, -2 * dirs])
    total = 1 + 2 * d + len(extra)
    both = np.empty((2, total, n))
    chunk = _chunk_size(mech, total)
    for start in range(0, total, chunk):
        rows = np.arange(start, min(total, start + chunk))
        pts = np.tile(mu, (len(rows), 1))
        k = rows - 1
        plus = (k >= 0) & (k < d)
        pts[plus, active[k[plus]]] += sd[active[k[plus]]]
        minus = (k >= d) & (k < 2 * d)
        pts[minus, active[k[minus] - d]] -= sd[active[k[minus] - d]]
        more = k >= 2 * d
        pts[more] += extra[k[more] - 2 * d]
        out = mech.utilities_batch(pts.reshape(-1, horizon, n), strategy)
        both[0, rows], both[1, rows] = out.utilities, out.valuations
    return _sigma_rule(both[0], d, check_affine), _sigma_rule(both[1], d, check_affine)


def _sigma_rule(vals: np.ndarray, d: int, check_affine: bool) -> np.ndarray:
    f0 = vals[0]
    plus, minus = vals[1 : 1 + d], vals[1 + d : 1 + 2 * d]
    if check_affine:
        ext = vals[1 + 2 * d :]
        p1, m1, p2, m2 = ext[0:2], ext[2:4], ext[4:6], ext[6:8]
        scale = 1.0 + np.abs(vals).max()
        second = np.abs((p2 + m2 - 2 * f0) - 4 * (p1 + m1 - 2 * f0)).max()
        first = np.abs((p2 - m2) - 2 * (p1 - m1)).max()
        if max(second, first) > 1e-8 * scale:
            raise ValueError(
                "the strategy is not affine in the inputs (utilities are not quadratic: "
                f"discrepancy {max(second, first):.3g}); use monte_carlo_gain instead"
            )
    return f0 + 0.5 * (plus + minus - 2 * f0).sum(axis=0)


def exact_gain(
    mech: LayeredVCG,
    agent: int,
    strategy: Strategy,
    baseline: Strategy | None = None,
    *,
    transfers: bool = True,
    initial_mean: Any = None,
) -> float:
    """Exact ``E[u_agent(strategy)] - E[u_agent(baseline)]`` for affine profiles."""
    agent = check_int("agent", agent, minimum=0)
    kw = {"transfers": transfers, "initial_mean": initial_mean}
    dev = exact_expected_utilities(mech, strategy, **kw)
    base = exact_expected_utilities(mech, baseline, **kw)
    return float(dev[agent] - base[agent])


def single_layer_loss(mech: LayeredVCG) -> np.ndarray:
    """Closed form ``g_i(s)``: expected utility change per unit squared lie, shape (T, N).

    Agent ``i`` bids ``w_i(s-1) + eps`` at layer ``s`` only; the past was truthful and everyone
    is truthful afterwards (the paper's rational agents); the others' current bids are arbitrary.
    Its expected utility then changes by ``g_i(s) * E[eps^2]`` with::

        g_i(s) = sum_{t >= s} dY(t)' Q dY(t) + dU(t)' R dU(t),   dY(s) = 0,
        dU(t) = K_t (dY(t) - a_i^(t-s) e_i),  dY(t+1) = A dY(t) + B dU(t),

    the welfare cost of the offset the lie leaves in the ISO's belief. ``g <= 0`` always, and
    ``g_i(T-1) = 0``: the last layer's bid moves nothing (``K_{T-1} = 0``), so truth is then
    weakly but not uniquely optimal.
    """
    ag, horizon = mech.agents, mech.horizon
    gains = mech.solution.gains
    n = ag.n
    out = np.zeros((horizon, n))
    for s in range(horizon):
        dy = np.zeros((n, n))  # column i: perturbation caused by agent i's unit lie
        e = np.ones(n)
        for t in range(s, horizon):
            du = gains[t] @ (dy - np.diag(e))
            out[s] += ag.q @ dy**2 + ag.r @ du**2
            dy = ag.a[:, None] * dy + ag.b[:, None] * du
            e = e * ag.a
    return out


# ---------------------------------------------------------------------------------- Monte Carlo
@dataclass(frozen=True)
class DeviationEstimate:
    """Gain of a deviation over a baseline for one agent.

    Attributes
    ----------
    label : str
    agent : int
    transfers : bool
        Whether payments were included.
    mean_gain : float
        Monte Carlo mean of ``u_agent(deviation) - u_agent(baseline)`` (common random numbers).
    std_error : float
        Its standard error.
    n_samples : int
    exact_gain : float or None
        The exact expectation when the profiles are affine, else None.
    """

    label: str
    agent: int
    transfers: bool
    mean_gain: float
    std_error: float
    n_samples: int
    exact_gain: float | None

    @property
    def z_score(self) -> float:
        """``mean_gain / std_error`` (``inf`` sign-preserving when the error is zero)."""
        if self.std_error == 0:
            return 0.0 if self.mean_gain == 0 else float(np.sign(self.mean_gain) * np.inf)
        return self.mean_gain / self.std_error


def monte_carlo_gain(
    mech: LayeredVCG,
    agent: int,
    strategy: Strategy,
    baseline: Strategy | None = None,
    *,
    n_samples: int = 4000,
    seed: SeedLike = 0,
    transfers: bool = True,
    exact: bool = True,
    label: str | None = None,
    initial_mean: Any = None,
) -> DeviationEstimate:
    """Monte Carlo gain of ``strategy`` over ``baseline`` for ``agent``, common random numbers.

    Both profiles are run on the same ``n_samples`` input paths; the reported standard error is
    that of the paired differences. ``exact=True`` also computes the exact gain when both profiles
    are affine. The paths are drawn and evaluated in chunks (:data:`CHUNK_BYTES` of working
    memory) with :meth:`LayeredVCG.utilities_batch`; the draws do not depend on the chunking.
    ``initial_mean`` is ``E x(0)`` (default zero).

    Examples
    --------
    >>> from stochmech.lqg import LQGAgents, LayeredVCG
    >>> agents = LQGAgents([0.9, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [0.5, 0.5],
    ...                    [1.0, 1.0])
    >>> est = monte_carlo_gain(LayeredVCG(agents, 4), 0, ScaledDeviation(0, factor=2.0),
    ...                        n_samples=500)
    >>> est.exact_gain < 0 and est.mean_gain < 0
    True
    """
    agent = check_int("agent", agent, minimum=0)
    if agent >= mech.agents.n:
        raise ValueError(f"agent must be < {mech.agents.n}, got {agent}")
    n_samples = check_int("n_samples", n_samples, minimum=2)
    mean = initial_mean_vector(mech, initial_mean)
    rng = np.random.default_rng(seed_sequence(seed))
    diffs = np.empty(n_samples)
    chunk = _chunk_size(mech, n_samples)
    for start in range(0, n_samples, chunk):
        size = min(chunk, n_samples - start)
        xi = mech.agents.sample_layer_inputs(mech.horizon, rng, size=size)
        xi[:, 0] += mean
        dev = mech.utilities_batch(xi, strategy)
        base = mech.utilities_batch(xi, baseline)
        if transfers:
            diffs[start : start + size] = dev.utilities[:, agent] - base.utilities[:, agent]
        else:
            diffs[start : start + size] = dev.valuations[:, agent] - base.valuations[:, agent]
    exact_value = None
    if exact and _is_affine(strategy) and _is_affine(baseline):
        exact_value = exact_gain(
            mech, agent, strategy, baseline, transfers=transfers, initial_mean=mean
        )
    name = label if label is not None else str(getattr(strategy, "label", repr(strategy)))
    return DeviationEstimate(
        label=name,
        agent=agent,
        transfers=transfers,
        mean_gain=float(diffs.mean()),
        std_error=float(diffs.std(ddof=1) / np.sqrt(n_samples)),
        n_samples=n_samples,
        exact_gain=exact_value,
    )


def deviation_gains(
    mech: LayeredVCG,
    agent: int,
    strategy: Strategy,
    baseline: Strategy | None = None,
    *,
    n_samples: int = 4000,
    seed: SeedLike = 0,
    exact: bool = True,
    label: str | None = None,
    initial_mean: Any = None,
) -> tuple[DeviationEstimate, DeviationEstimate]:
    """:func:`monte_carlo_gain` with and without transfers, from the same runs.

    Returns the same two estimates as two calls of :func:`monte_carlo_gain` (same seed, so the
    same draws), at the cost of one.

    Examples
    --------
    >>> from stochmech.lqg import LQGAgents, LayeredVCG
    >>> agents = LQGAgents([0.9, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [0.5, 0.5],
    ...                    [1.0, 1.0])
    >>> with_t, without = deviation_gains(LayeredVCG(agents, 4), 0, ScaledDeviation(0, factor=2.0),
    ...                                   n_samples=500)
    >>> with_t.transfers, without.transfers
    (True, False)
    """
    agent = check_int("agent", agent, minimum=0)
    if agent >= mech.agents.n:
        raise ValueError(f"agent must be < {mech.agents.n}, got {agent}")
    n_samples = check_int("n_samples", n_samples, minimum=2)
    mean = initial_mean_vector(mech, initial_mean)
    rng = np.random.default_rng(seed_sequence(seed))
    diffs = np.empty((2, n_samples))
    chunk = _chunk_size(mech, n_samples)
    for start in range(0, n_samples, chunk):
        size = min(chunk, n_samples - start)
        xi = mech.agents.sample_layer_inputs(mech.horizon, rng, size=size)
        xi[:, 0] += mean
        dev = mech.utilities_batch(xi, strategy)
        base = mech.utilities_batch(xi, baseline)
        diffs[0, start : start + size] = dev.utilities[:, agent] - base.utilities[:, agent]
        diffs[1, start : start + size] = dev.valuations[:, agent] - base.valuations[:, agent]
    exact_values: list[float | None] = [None, None]
    if exact and _is_affine(strategy) and _is_affine(baseline):
        dev_u, dev_v = _exact_expectations(mech, strategy, True, mean)
        base_u, base_v = _exact_expectations(mech, baseline, True, mean)
        exact_values = [float(dev_u[agent] - base_u[agent]), float(dev_v[agent] - base_v[agent])]
    name = label if label is not None else str(getattr(strategy, "label", repr(strategy)))
    out = []
    for k, transfers in enumerate((True, False)):
        out.append(
            DeviationEstimate(
                label=name,
                agent=agent,
                transfers=transfers,
                mean_gain=float(diffs[k].mean()),
                std_error=float(diffs[k].std(ddof=1) / np.sqrt(n_samples)),
                n_samples=n_samples,
                exact_gain=exact_values[k],
            )
        )
    return out[0], out[1]


def best_scaled_deviation(
    mech: LayeredVCG, agent: int, *, transfers: bool = False
) -> ScaledDeviation:
    """The scale factor ``k`` maximizing the exact expected gain of bidding ``k * truth``.

    The gain is quadratic in ``k`` (exact evaluation at three points). Without transfers this is
    the agent's most profitable scaled lie; with transfers it is ``k = 1`` (truth) up to rounding.
    """
    g = {k: exact_gain(mech, agent, ScaledDeviation(agent, factor=k), transfers=transfers)
         for k in (0.5, 1.5)}  # fmt: skip
    c1, c2 = g[1.5] - g[0.5], 2.0 * (g[1.5] + g[0.5])  # gain(1 + d) = c1 d + c2 d^2
    d = 0.0 if c2 >= 0 or c1 == 0 else -c1 / (2.0 * c2)
    return ScaledDeviation(agent, factor=float(1.0 + d))


def theorem3_table(
    mech: LayeredVCG,
    agent: int = 0,
    deviations: Iterable[Deviation] | None = None,
    *,
    n_samples: int = 4000,
    seed: SeedLike = 0,
) -> list[tuple[DeviationEstimate, DeviationEstimate]]:
    """For each deviation: (gain under the mechanism, gain without transfers).

    The default list is :func:`standard_deviations` plus the most profitable scaled lie WITHOUT
    transfers (:func:`best_scaled_deviation`), which shows what the transfers prevent.
    """
    if deviations is None:
        devs = [*standard_deviations(agent, mech.horizon), best_scaled_deviation(mech, agent)]
    else:
        devs = list(deviations)
    seed = normalize_seed(seed)  # a Generator is consumed once: every row, the same paths
    return [deviation_gains(mech, agent, dev, n_samples=n_samples, seed=seed) for dev in devs]


# ---------------------------------------------------------------------------------- efficiency
def centralized_closed_loop(
    mech: LayeredVCG, layer_inputs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """States and controls of the centralized closed-loop optimum ``U(t) = K_t X(t)``."""
    xi = np.asarray(layer_inputs, dtype=np.float64)
    ag, gains = mech.agents, mech.solution.gains
    states = np.zeros_like(xi)
    controls = np.zeros_like(xi)
    for t in range(mech.horizon):
        states[t] = xi[0] if t == 0 else ag.a * states[t - 1] + ag.b * controls[t - 1] + xi[t]
        controls[t] = gains[t] @ states[t]
    return states, controls


@dataclass(frozen=True)
class WelfareCheck:
    """Expected social welfare computed four ways.

    Attributes
    ----------
    riccati : float
        ``tr(S_0 Z) + sum_{t>=1} tr(S_t Sigma)``.
    covariance : float
        ``sum_t tr((Q + K_t' R K_t) P_t)`` with the closed-loop covariance ``P_t``.
    exact_mechanism : float
        Exact expectation of the mechanism's realized welfare (sigma points, truthful bids).
    monte_carlo : float
        Mean realized welfare of the mechanism over ``n_samples`` runs.
    std_error : float
        Its standard error.
    n_samples : int
    """

    riccati: float
    covariance: float
    exact_mechanism: float
    monte_carlo: float
    std_error: float
    n_samples: int


def check_expected_welfare(
    mech: LayeredVCG, *, n_samples: int = 4000, seed: SeedLike = 0
) -> WelfareCheck:
    """Compare the Riccati value with the mechanism's welfare (exactly and by Monte Carlo)."""
    ag, sol, horizon = mech.agents, mech.solution, mech.horizon
    cov = np.diag(ag.zeta)
    covariance = 0.0
    for t in range(horizon):
        k = sol.gains[t]
        covariance += float(np.trace((np.diag(ag.q) + k.T @ np.diag(ag.r) @ k) @ cov))
        f = sol.closed_loop[t]
        cov = f @ cov @ f.T + np.diag(ag.sigma)
    exact_value = float(exact_expected_utilities(mech, transfers=False).sum())
    rng = np.random.default_rng(seed_sequence(seed))
    welfare = mech.run_batch(ag.sample_layer_inputs(horizon, rng, size=n_samples)).welfare
    return WelfareCheck(
        riccati=mech.expected_welfare(),
        covariance=covariance,
        exact_mechanism=exact_value,
        monte_carlo=float(welfare.mean()),
        std_error=float(welfare.std(ddof=1) / np.sqrt(n_samples)),
        n_samples=n_samples,
    )
