"""The audit's checks under truthful play: individual rationality (eq. 16), efficiency, the
planner's budget; batch-means standard errors; and when the penalty caught a deviation.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from stochmech._json import jsonable
from stochmech.audit.bounds import _f, mechanism_for
from stochmech.games.base import TwoStageGame
from stochmech.mechanism import DNBEMechanism, check_supertypes
from stochmech.simulation import SimulationResult

__all__ = [
    "BudgetCheck",
    "CatchTimes",
    "EfficiencyCheck",
    "ParticipationCheck",
    "batch_means",
    "catch_times",
    "efficiency",
    "individual_rationality",
    "planner_budget",
]


def batch_means(x: Any, batches: int = 20) -> tuple[Any, Any]:
    """Mean of a daily series and its batch-means standard error (along axis 0).

    Examples
    --------
    >>> m, se = batch_means(np.arange(100.0), 4)
    >>> float(m), round(float(se), 4)
    (49.5, 16.1374)
    """
    arr = np.asarray(x, dtype=float)
    if arr.shape[0] < 2:
        raise ValueError(f"need at least 2 days for a standard error, got {arr.shape[0]}")
    b = int(batches)
    if b < 2:
        raise ValueError(f"batches must be >= 2, got {batches!r}")
    b = min(b, arr.shape[0])
    means = np.stack([part.mean(axis=0) for part in np.array_split(arr, b, axis=0)])
    return arr.mean(axis=0), means.std(axis=0, ddof=1) / math.sqrt(b)


def _require_daily(result: SimulationResult) -> None:
    if result.daily_utility is None:
        raise ValueError("the simulation must be run with daily=True")


@dataclass(frozen=True)
class ParticipationCheck:
    """Individual rationality (Theorem 1, part 2) at the given supertypes.

    Attributes
    ----------
    margins : (n,)
        W*(theta) - W*(theta_-i): eq. (16) at theta.
    expected_utility : (n,)
        Each player's long-run utility when everyone is truthful: the margin with the
        first-stage payment, nu_i(theta) without it.
    simulated_utility, stderr : (n,) or None
        Average utility of each truthful player in the simulation, with its standard error.
    penalty_days, last_penalty_day : (n,) int or None
        Penalty events of the truthful players (Lemma 1: finitely many).
    days : int or None
    """

    margins: np.ndarray
    expected_utility: np.ndarray
    simulated_utility: np.ndarray | None = None
    stderr: np.ndarray | None = None
    penalty_days: np.ndarray | None = None
    last_penalty_day: np.ndarray | None = None
    days: int | None = None

    @property
    def holds(self) -> np.ndarray:
        """Eq. (16) at these supertypes, player by player (1e-12 slack)."""
        return self.margins >= -1e-12

    def to_dict(self) -> dict[str, Any]:
        return {
            "margins": self.margins.tolist(),
            "holds": self.holds.tolist(),
            "expected_utility": self.expected_utility.tolist(),
            "simulated_utility": _list(self.simulated_utility),
            "stderr": _list(self.stderr),
            "penalty_days": _list(self.penalty_days),
            "last_penalty_day": _list(self.last_penalty_day),
            "days": self.days,
        }


def _list(x: Any) -> Any:
    return None if x is None else np.asarray(x).tolist()


def individual_rationality(
    game: TwoStageGame,
    true_supertypes: Any,
    result: SimulationResult | None = None,
    *,
    mechanism: DNBEMechanism | None = None,
    batches: int = 20,
) -> ParticipationCheck:
    """Eq. (16) at ``true_supertypes``, beside an all-truthful simulation if given.

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> individual_rationality(game, [[0.5, 0.5], [0.5, 0.5]]).margins.tolist()
    [1.0, 1.0]
    """
    mech = mechanism_for(game, mechanism)
    theta = check_supertypes(game, true_supertypes)
    welfare = _f(game.optimal_welfare(theta))
    margins = np.array(
        [welfare - _f(game.optimal_welfare_without(theta, i)) for i in range(game.n_players)]
    )
    if mech.first_stage_payment:
        expected = margins.copy()
    else:
        expected = np.asarray(game.expected_valuations(theta), dtype=float)
    if result is None:
        return ParticipationCheck(margins, expected)
    _require_daily(result)
    mean, se = batch_means(result.daily_utility, batches)
    return ParticipationCheck(
        margins,
        expected,
        mean,
        se,
        result.penalty_days.copy(),
        result.last_penalty_day.copy(),
        result.days,
    )


def _enumerated_first_stage(game: TwoStageGame, theta: np.ndarray) -> np.ndarray | None:
    """Expected welfare of every first-stage outcome by plain enumeration (FiniteGame only)."""
    from stochmech.games.finite import FiniteGame

    if not isinstance(game, FiniteGame) or game.expectation != "exact":
        return None
    n, k = theta.shape
    if k**n > 1 << 16:
        return None
    v, c = game.valuation_table, game.cost_table
    values = np.zeros(game.n_first)
    for profile in itertools.product(range(k), repeat=n):
        prob = math.prod(theta[j, profile[j]] for j in range(n))
        if prob == 0:
            continue
        for a in range(game.n_first):
            best = max(
                sum(v[j, profile[j], a, b] for j in range(n)) - c[a, b]
                for b in range(game.n_second)
            )
            values[a] += prob * best
    return values


@dataclass(frozen=True)
class EfficiencyCheck:
    """Efficiency (Theorem 1, part 3): truthful average welfare against W*(theta).

    Attributes
    ----------
    optimal_welfare : float
        W*(theta).
    first_stage : Any
        g1*(theta) as the game computes it.
    enumerated_welfare : (A,) or None
        Expected welfare of every first-stage outcome by plain enumeration (finite games).
    average_welfare, stderr : float or None
        Simulated average welfare under truthful play and its standard error.
    """

    optimal_welfare: float
    first_stage: Any
    enumerated_welfare: np.ndarray | None = None
    average_welfare: float | None = None
    stderr: float | None = None

    @property
    def first_stage_ok(self) -> bool | None:
        """Whether g1*(theta) attains the enumerated optimum (None: nothing to compare)."""
        if self.enumerated_welfare is None:
            return None
        best = float(self.enumerated_welfare.max())
        got = float(self.enumerated_welfare[int(self.first_stage)])
        return bool(got >= best - 1e-9 * max(1.0, abs(best)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimal_welfare": self.optimal_welfare,
            "first_stage": jsonable(self.first_stage),
            "enumerated_welfare": _list(self.enumerated_welfare),
            "first_stage_ok": self.first_stage_ok,
            "average_welfare": self.average_welfare,
            "stderr": self.stderr,
        }


def efficiency(
    game: TwoStageGame,
    true_supertypes: Any,
    result: SimulationResult | None = None,
    *,
    batches: int = 20,
) -> EfficiencyCheck:
    """W*(theta), g1*(theta) against enumeration, and the simulated welfare if given.

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> check = efficiency(game, [[0.5, 0.5], [0.5, 0.5]])
    >>> check.optimal_welfare, check.enumerated_welfare.tolist(), check.first_stage_ok
    (1.0, [0.0, 1.0], True)
    """
    theta = check_supertypes(game, true_supertypes)
    out = EfficiencyCheck(
        optimal_welfare=_f(game.optimal_welfare(theta)),
        first_stage=game.first_stage(theta),
        enumerated_welfare=_enumerated_first_stage(game, theta),
    )
    if result is None:
        return out
    _require_daily(result)
    mean, se = batch_means(result.daily_welfare, batches)
    return EfficiencyCheck(
        out.optimal_welfare, out.first_stage, out.enumerated_welfare, float(mean), float(se)
    )


@dataclass(frozen=True)
class BudgetCheck:
    """The planner's budget: net payments received per day.

    Attributes
    ----------
    first_stage_payments : (n,)
        p_i^F(theta) of eq. (5) under truthful bids.
    expected : float
        Long-run budget per day under truthful play, sum_i p_i^F (the second-stage payments
        average to zero and truthful penalties vanish, Lemma 1). Negative: the planner pays.
    simulated, stderr : float or None
    """

    first_stage_payments: np.ndarray
    expected: float
    simulated: float | None = None
    stderr: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_stage_payments": self.first_stage_payments.tolist(),
            "expected": self.expected,
            "simulated": self.simulated,
            "stderr": self.stderr,
        }


def planner_budget(
    game: TwoStageGame,
    true_supertypes: Any,
    result: SimulationResult | None = None,
    *,
    mechanism: DNBEMechanism | None = None,
    batches: int = 20,
) -> BudgetCheck:
    """Expected budget per day under truthful play, beside a simulation if given.

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> planner_budget(game, [[0.5, 0.5], [0.5, 0.5]]).expected
    0.0
    """
    mech = mechanism_for(game, mechanism)
    theta = check_supertypes(game, true_supertypes)
    pay = mech.first_stage_payments(theta)
    expected = float(pay.sum())
    if result is None:
        return BudgetCheck(pay, expected)
    _require_daily(result)
    mean, se = batch_means(result.daily_budget, batches)
    return BudgetCheck(pay, expected, float(mean), float(se))


# ---------------------------------------------------------------------------------------------
# how long the penalty takes to catch a deviation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatchTimes:
    """When the mechanism caught a deviation (days are 1-based; 0 means never).

    Attributes
    ----------
    days : int
        Horizon.
    penalty_days : int
        Days on which the deviator was flagged (E_i(l)).
    first_flag_day : int
    flagged_every_day_from : int
        First day of the final run of consecutive flagged days (0 if not flagged on the last
        day): from then on the deviator pays J_p(l) every day.
    fraction : float
    flagged_fraction_from : int
        Smallest day from which the deviator was flagged on at least ``fraction`` of the days
        up to the horizon (0 if none).
    last_ahead_day : int
        The last day on which the deviator's running average utility exceeded the truthful
        one's (0 if never).
    """

    days: int
    penalty_days: int
    first_flag_day: int
    flagged_every_day_from: int
    fraction: float
    flagged_fraction_from: int
    last_ahead_day: int

    @property
    def ahead_at_horizon(self) -> bool:
        """The deviator's running average was still ahead of the truth on the last day."""
        return self.last_ahead_day == self.days

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "penalty_days": self.penalty_days,
            "first_flag_day": self.first_flag_day,
            "flagged_every_day_from": self.flagged_every_day_from,
            "fraction": self.fraction,
            "flagged_fraction_from": self.flagged_fraction_from,
            "last_ahead_day": self.last_ahead_day,
            "ahead_at_horizon": self.ahead_at_horizon,
        }


def catch_times(flags: Any, difference: Any, fraction: float = 0.9) -> CatchTimes:
    """Catch times from a deviator's daily flags and daily utility difference (dev - truth).

    Examples
    --------
    >>> flags = np.array([0, 1, 0, 0, 1, 1, 1], dtype=bool)
    >>> diff = np.array([1.0, -0.5, 0.2, 0.1, -9.0, -9.0, -9.0])
    >>> c = catch_times(flags, diff, fraction=0.75)
    >>> c.first_flag_day, c.flagged_every_day_from, c.flagged_fraction_from, c.last_ahead_day
    (2, 5, 4, 4)
    """
    f = np.asarray(flags, dtype=bool).reshape(-1)
    d = np.asarray(difference, dtype=float).reshape(-1)
    if f.shape != d.shape or f.size == 0:
        raise ValueError(
            f"flags and difference must be equal-length series, got {f.shape}, {d.shape}"
        )
    q = float(fraction)
    if not 0 < q <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    days = f.size
    hits = np.flatnonzero(f)
    first = int(hits[0]) + 1 if hits.size else 0
    if f[-1]:
        quiet = np.flatnonzero(~f)
        every = int(quiet[-1]) + 2 if quiet.size else 1
    else:
        every = 0
    suffix = np.cumsum(f[::-1])[::-1]
    share = suffix / np.arange(days, 0, -1)
    ok = np.flatnonzero(share >= q)
    from_day = int(ok[0]) + 1 if ok.size else 0
    ahead = np.flatnonzero(np.cumsum(d) > 0)
    last_ahead = int(ahead[-1]) + 1 if ahead.size else 0
    return CatchTimes(days, int(hits.size), first, every, q, from_day, last_ahead)


# ---------------------------------------------------------------------------------------------
# the audit: a catalog of deviations, simulated against the truth with common random numbers
# ---------------------------------------------------------------------------------------------
