"""Choosing the window exponent gamma and the penalty J_p(l) = scale * l**exponent.

The paper only asks ``r(l) >= sqrt(ln(2 l^(1+gamma)) / (2 l))`` with gamma > 0 (eq. 11) and
``J_p(l) / l -> infinity`` (eq. 12). Within those rules the designer trades two things:

* **truthful risk.** An honest player is flagged on day l with probability about
  l^-(1+gamma) (exactly: :func:`~stochmech.audit.truthful_risk`), and pays J_p(l) when flagged.
  The expected penalty per day, ``(1/L) sum_l J_p(l) P(flag on day l)``, vanishes with the horizon
  L only if ``exponent < 1 + gamma``; eq. (12) needs ``exponent > 1``. A larger gamma makes
  honest players' flags rarer (P(any flag after day 100) falls fast with gamma).
* **detection.** A liar whose bids move a test statistic (a frequency ``N_t/l - theta(t)`` of
  eq. 6, or a joint-independence discrepancy of eq. 8) by delta away from zero is flagged once
  r(l) < delta, so it is caught from about day ``l*(delta) = min {l >= 2 : r(l) <= delta}``
  (:func:`detection_day`: the expected-drift day; the fluctuation of the statistic, of order
  sqrt(theta (1 - theta) / l), spreads the actual day around it). A larger gamma widens the
  window and delays detection, slowly: r(l) grows like sqrt(1 + gamma).

**Scale.** ``J_p(l) = u * l**exponent`` with u the market's value per day (a player's truthful
utility per day): with exponent > 1 a fine on day l is worth more than everything the player
earns over days 1..l, in every market's own currency, and the truthful risk relative to the
truthful utility, ``E[penalty] / (u L) = (1/L) sum_l l**exponent P(flag on day l)``, does not
depend on u. :func:`calibrate` takes u from a game (the smallest positive truthful utility per
day among the players) or as a number.

:func:`calibrate` searches a grid of (gamma, exponent) and returns the smallest gamma (soonest
detection of every reference lie) whose truthful risk meets the targets, with the largest
exponent (the strongest deterrent once caught) that still meets them and stays below 1 + gamma.

Examples
--------
>>> cal = calibrate(1.0, [[0.5, 0.5]], 10_000)
>>> cal.gamma, cal.exponent, bool(cal.relative_risk <= 0.01), bool(cal.tail_risk <= 1e-3)
(1.0, 1.75, True, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stochmech._validate import integer, pmf_rows
from stochmech._window import DEFAULT_GAMMA, window
from stochmech.audit.risk import flag_probabilities, joint_excess_by_day
from stochmech.games.base import TwoStageGame
from stochmech.ledger import PowerPenalty

__all__ = [
    "Calibration",
    "calibrate",
    "detection_day",
    "lie_size",
    "plot_calibration",
    "truthful_utility_scale",
]

DEFAULT_GAMMAS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
DEFAULT_EXPONENTS = (1.1, 1.25, 1.5, 1.75, 2.0, 2.5)
DEFAULT_LIES = (0.2, 0.1, 0.05)
#: Path-days per gamma of :func:`calibrate`'s joint-test simulation (100 paths of 10,000 days;
#: about 0.3 s per gamma with n = 2); later days are bounded
#: (:func:`~stochmech.audit.joint_fire_bound`).
DEFAULT_CALIBRATE_JOINT_BUDGET = 1_000_000


def detection_day(lie: float, gamma: float = DEFAULT_GAMMA, *, limit: int = 10**12) -> int:
    """The expected-drift detection day of a lie of size ``lie``: min {l >= 2 : r(l) <= lie}.

    A statistic of eq. (6) or (8) that settles at ``lie`` instead of 0 crosses the window on
    about that day (r(l) decreases for l >= 2). Returns ``limit + 1`` if it does not by ``limit``.

    Examples
    --------
    >>> detection_day(0.1), detection_day(0.1, gamma=0.5)
    (689, 501)
    """
    delta = float(lie)
    if not (math.isfinite(delta) and delta > 0):
        raise ValueError(f"lie size must be a finite number > 0, got {lie!r}")
    g = float(gamma)
    if not (math.isfinite(g) and g > 0):
        raise ValueError(f"gamma must be a finite number > 0 (eq. 11), got {gamma!r}")

    def r(day: int) -> float:
        return window(day, g)

    if r(2) <= delta:
        return 2
    lo, hi = 2, 4
    while r(hi) > delta:
        lo, hi = hi, hi * 2
        if hi > limit:
            return limit + 1 if r(limit) > delta else _bisect(r, lo, limit, delta)
    return _bisect(r, lo, hi, delta)


def _bisect(r: Any, lo: int, hi: int, delta: float) -> int:
    # invariant: r(lo) > delta >= r(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if r(mid) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def lie_size(declared: Any, bid_law: Any) -> float:
    """The frequency test's drift of a lie: ``max_t |q(t) - theta(t)|`` between the law q of the
    bids and the declaration theta.

    Examples
    --------
    >>> lie_size([0.5, 0.5], [0.6, 0.4])
    0.1
    """
    a = np.asarray(declared, dtype=float)
    b = np.asarray(bid_law, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"declared and bid_law must be pmfs of one shape, got {a.shape}, {b.shape}"
        )
    return round(float(np.abs(a - b).max()), 15)


def truthful_utility_scale(game: TwoStageGame, supertypes: Any, **mechanism: Any) -> np.ndarray:
    """Each player's truthful utility per day, ``nu_i(theta) - p_i^F(theta)`` (the second-stage
    payment averages to zero under truth, penalties aside), (n,).

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> truthful_utility_scale(game, [[0.5, 0.5], [0.5, 0.5]]).round(3).tolist()
    [1.0, 1.0]
    """
    from stochmech.mechanism import DNBEMechanism

    opening = DNBEMechanism(game, **mechanism).opening(supertypes)
    return np.asarray(opening.expected_valuations, dtype=float) - opening.first_stage_payments


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` returns.

    Attributes
    ----------
    gamma, exponent, scale : float
        The chosen window exponent and penalty ``J_p(l) = scale * l**exponent``.
    feasible : bool
        Whether any grid point met both targets (if not, the point with the smallest relative
        risk is returned and ``feasible`` is False).
    relative_risk : float
        Largest expected truthful penalty over days 1..L among the players, divided by
        ``value_scale * L``: the frequency test's (an upper bound with more than two types)
        plus, with n >= 2 and ``joint`` on, the joint test's extra risk (see ``joint_note``).
    tail_risk : float
        Largest union bound on P(some flag after ``after_day``) among the players (with the
        joint test's extra flags when they are included).
    detection_days : tuple of int
        :func:`detection_day` of each reference lie at the chosen gamma.
    value_scale : float
    days, after_day : int
    grid : list of dict
        Every (gamma, exponent) tried with its relative risk (and its joint-test part,
        ``joint_relative_risk``), tail risk and detection days.
    joint_note : str
        What the risk covers: the frequency test only (one player, or ``joint=False``), or
        also the joint test (days simulated, days bounded).
    """

    gamma: float
    exponent: float
    scale: float
    feasible: bool
    relative_risk: float
    tail_risk: float
    detection_days: tuple[int, ...]
    lies: tuple[float, ...]
    value_scale: float
    days: int
    after_day: int
    target_risk: float
    target_tail: float
    grid: list[dict[str, Any]] = field(repr=False, default_factory=list)
    joint_note: str = "frequency test only"

    @property
    def penalty(self) -> PowerPenalty:
        """The chosen penalty schedule."""
        return PowerPenalty(scale=self.scale, exponent=self.exponent)

    def mechanism_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~stochmech.DNBEMechanism` (``gamma``, ``penalty``)."""
        return {"gamma": self.gamma, "penalty": self.penalty}

    def to_dict(self) -> dict[str, Any]:
        return {
            "gamma": self.gamma,
            "exponent": self.exponent,
            "scale": self.scale,
            "feasible": self.feasible,
            "relative_risk": self.relative_risk,
            "tail_risk": self.tail_risk,
            "detection_days": list(self.detection_days),
            "lies": list(self.lies),
            "value_scale": self.value_scale,
            "days": self.days,
            "after_day": self.after_day,
            "target_risk": self.target_risk,
            "target_tail": self.target_tail,
            "joint_note": self.joint_note,
        }

    def __str__(self) -> str:
        det = ", ".join(
            f"{d} (lie {x:g})" for d, x in zip(self.detection_days, self.lies, strict=True)
        )
        status = "meets" if self.feasible else "does NOT meet"
        return (
            f"gamma = {self.gamma:g}, J_p(l) = {self.scale:.4g} * l^{self.exponent:g} "
            f"({status} the targets over {self.days} days)\n"
            f"  truthful expected penalty {100 * self.relative_risk:.3g}% of truthful utility "
            f"(target {100 * self.target_risk:g}%)\n"
            f"  P(any flag after day {self.after_day}) <= {self.tail_risk:.3g} "
            f"(target {self.target_tail:g})\n"
            f"  detection day (expected drift): {det}\n"
            f"  risk covers: {self.joint_note}"
        )


def calibrate(
    game_or_value_scale: TwoStageGame | float,
    supertypes: Any,
    days: int,
    *,
    target_risk: float = 0.01,
    target_tail: float = 1e-3,
    after_day: int = 100,
    lies: Sequence[float] = DEFAULT_LIES,
    gammas: Sequence[float] = DEFAULT_GAMMAS,
    exponents: Sequence[float] = DEFAULT_EXPONENTS,
    joint: bool = True,
    joint_paths: int = 100,
    joint_budget: int = DEFAULT_CALIBRATE_JOINT_BUDGET,
    seed: int = 0,
) -> Calibration:
    """The (gamma, exponent, scale) that meet truthful-risk targets and detect lies soonest.

    Parameters
    ----------
    game_or_value_scale : TwoStageGame or float
        A game (the value scale is then the smallest positive truthful utility per day among
        the players, :func:`truthful_utility_scale`) or the value scale u itself (> 0).
    supertypes : array_like, shape (n, K)
        The declared supertypes.
    days : int
        Horizon L.
    target_risk : float, default 0.01
        Largest allowed expected truthful penalty over L days as a share of the truthful
        utility over L days (``scale = u``, so this is ``(1/L) sum_l l**a P(flag on day l)``).
    target_tail : float, default 1e-3
        Largest allowed union bound on P(some flag after ``after_day``).
    after_day : int, default 100
    lies : sequence of float
        Reference lie sizes (:func:`lie_size`) whose :func:`detection_day` is reported.
    gammas, exponents : sequence of float
        The grid searched (exponents must be > 1; those >= 1 + gamma are skipped).
    joint : bool, default True
        With n >= 2 players, add the joint test's extra truthful risk, as
        :func:`~stochmech.audit.truthful_risk` computes it: simulated on ``joint_paths``
        paths for the first ``joint_budget // joint_paths`` days (one simulation per gamma
        serves every player and exponent), bounded after, zero where proved. On by default:
        it costs about 0.3 s per gamma with n = 2 at the default budget.
    joint_paths, joint_budget, seed : int
        That simulation's paths, path-days per gamma and seed.

    Returns
    -------
    Calibration

    Notes
    -----
    The risk is the frequency test's (exact with two types, the union bound otherwise) plus,
    with n >= 2 and ``joint`` on, the joint test's extra risk (a simulation estimate on the
    simulated days and a rigorous bound after; ``joint_note`` says which). With ``joint=False``
    or one player it is the frequency test's only, and ``joint_note`` says so. The detection
    days of every lie
    grow with gamma and do not depend on the exponent, so the smallest feasible gamma detects
    every reference lie soonest.
    """
    theta = pmf_rows(supertypes, None, "supertype")
    horizon = integer(days, "days", minimum=1)
    if isinstance(game_or_value_scale, TwoStageGame):
        utility = truthful_utility_scale(game_or_value_scale, theta)
        positive = utility[utility > 0]
        if positive.size == 0:
            raise ValueError(
                "no player has a positive truthful utility per day "
                f"({utility.tolist()}); pass the value scale as a number"
            )
        value = float(positive.min())
    else:
        try:
            value = float(game_or_value_scale)
        except (TypeError, ValueError):
            raise ValueError(
                f"game_or_value_scale must be a TwoStageGame or a number > 0, "
                f"got {game_or_value_scale!r}"
            ) from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(
                f"value scale must be a finite number > 0, got {game_or_value_scale!r}"
            )
    for name, x in (("target_risk", target_risk), ("target_tail", target_tail)):
        if not (math.isfinite(float(x)) and float(x) > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    m = int(after_day)
    if not 0 <= m:
        raise ValueError(f"after_day must be >= 0, got {after_day!r}")
    lie_sizes = tuple(float(x) for x in lies)
    for x in lie_sizes:
        if not (math.isfinite(x) and x > 0):
            raise ValueError(f"lie sizes must be finite numbers > 0, got {x!r}")
    grid_g = sorted({float(g) for g in gammas})
    grid_a = sorted({float(a) for a in exponents})
    for g in grid_g:
        if not (math.isfinite(g) and g > 0):
            raise ValueError(f"gammas must be finite numbers > 0, got {g!r}")
    for a in grid_a:
        if not (math.isfinite(a) and a > 1):
            raise ValueError(f"exponents must be finite numbers > 1 (eq. 12), got {a!r}")
    if not grid_g or not grid_a:
        raise ValueError("gammas and exponents must not be empty")

    n = theta.shape[0]
    use_joint = bool(joint) and n >= 2
    sim_days = paths = 0
    if use_joint:
        paths = integer(joint_paths, "joint_paths", minimum=2)
        budget = integer(joint_budget, "joint_budget", minimum=1)
        sim_days = min(horizon, max(1, budget // paths))
    day_arr = np.arange(1, horizon + 1, dtype=np.int64)
    rows, row_of = np.unique(theta, axis=0, return_inverse=True)
    row_of = np.asarray(row_of).reshape(-1)
    grid: list[dict[str, Any]] = []
    for g in grid_g:
        probs = np.stack([flag_probabilities(row, day_arr, gamma=g)[0] for row in rows])
        # per player: frequency-test flag probability and the joint test's extra, per day
        extra = np.zeros((n, horizon))
        if use_joint:
            extra = joint_excess_by_day(
                theta, horizon, g, joint_days=sim_days, paths=paths, seed=int(seed)
            )
        per_player = probs[row_of] + extra
        tail = float(per_player[:, m:].sum(axis=1).max()) if m < horizon else 0.0
        det = tuple(detection_day(x, g) for x in lie_sizes)
        for a in grid_a:
            if a >= 1.0 + g:
                continue
            weights = day_arr.astype(np.float64) ** a
            risks = per_player @ weights
            worst = int(np.argmax(risks))
            rel = float(risks[worst]) / horizon
            grid.append(
                {
                    "gamma": g,
                    "exponent": a,
                    "relative_risk": rel,
                    "joint_relative_risk": float(extra[worst] @ weights) / horizon,
                    "tail_risk": min(tail, 1.0),
                    "detection_days": det,
                    "feasible": rel <= target_risk and tail <= target_tail,
                }
            )
    if not grid:
        raise ValueError("no grid point has exponent < 1 + gamma; widen gammas or exponents")
    feasible = [p for p in grid if p["feasible"]]
    if feasible:
        g_best = min(p["gamma"] for p in feasible)
        best = max((p for p in feasible if p["gamma"] == g_best), key=lambda p: p["exponent"])
    else:
        best = min(
            grid,
            key=lambda p: (p["relative_risk"] > target_risk, p["tail_risk"], p["relative_risk"]),
        )
    return Calibration(
        gamma=best["gamma"],
        exponent=best["exponent"],
        scale=value,
        feasible=bool(best["feasible"]),
        relative_risk=best["relative_risk"],
        tail_risk=best["tail_risk"],
        detection_days=best["detection_days"],
        lies=lie_sizes,
        value_scale=value,
        days=horizon,
        after_day=m,
        target_risk=float(target_risk),
        target_tail=float(target_tail),
        grid=grid,
        joint_note=_joint_note(n, bool(joint), sim_days, horizon, paths if use_joint else 0),
    )


def _joint_note(n: int, joint: bool, sim_days: int, horizon: int, paths: int) -> str:
    if n < 2:
        return "frequency test only (one player: there is no joint test)"
    if not joint:
        return "frequency test only (joint=False: the joint test's extra risk is NOT included)"
    note = (
        f"frequency test + joint test's extra risk (simulated on days 1..{sim_days}, "
        f"{paths} paths per gamma"
    )
    if sim_days < horizon:
        note += f"; bounded on days {sim_days + 1}..{horizon}"
    return note + ")"


def plot_calibration(calibration: Calibration, *, lie: float | None = None, ax: Any = None) -> Any:
    """The trade-off: truthful risk against days to detection, one curve per exponent.

    Each point is a grid point of :func:`calibrate`; x is the detection day of ``lie``
    (default: the middle reference lie), y the relative truthful risk; the targets are drawn
    as a line and the chosen point is circled. Draws on ``ax`` if given; returns the Figure.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = plot_calibration(calibrate(1.0, [[0.5, 0.5]], 2_000))
    >>> len(fig.axes)
    1
    """
    import matplotlib.pyplot as plt

    lies = calibration.lies
    if lie is None:
        idx = len(lies) // 2
    else:
        if float(lie) not in lies:
            raise ValueError(f"lie {lie!r} is not one of the calibration's lies {list(lies)}")
        idx = lies.index(float(lie))
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
    else:
        fig = ax.figure
    for a in sorted({p["exponent"] for p in calibration.grid}):
        pts = sorted(
            (p["detection_days"][idx], p["relative_risk"], p["gamma"])
            for p in calibration.grid
            if p["exponent"] == a
        )
        xs = [x for x, _, _ in pts]
        ys = [max(y, 1e-300) for _, y, _ in pts]
        ax.plot(xs, ys, marker="o", label=f"exponent {a:g}")
    ax.axhline(calibration.target_risk, color="k", ls="--", lw=1, label="target risk")
    ax.scatter(
        [calibration.detection_days[idx]],
        [max(calibration.relative_risk, 1e-300)],
        s=160,
        facecolors="none",
        edgecolors="r",
        lw=2,
        label=f"chosen: gamma {calibration.gamma:g}, exponent {calibration.exponent:g}",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"detection day of a lie of size {lies[idx]:g} (expected drift)")
    ax.set_ylabel(f"truthful expected penalty / utility over {calibration.days} days")
    ax.set_title("Truthful risk against detection (points: gamma grid)")
    ax.legend(fontsize=7)
    return fig
