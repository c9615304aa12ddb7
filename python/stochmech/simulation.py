"""Long-horizon simulation of the DNBE mechanism.

:func:`simulate` plays the repeated game for many days: nature draws every player's type from
its true supertype (and the public state omega), the strategies bid, the :class:`Market`
clears, and the result reports what a designer needs: each player's average utility, payment
and penalties, the planner's budget, the average welfare against the optimum W*(theta), and
running averages to plot convergence.

Randomness comes from independent streams spawned from ``seed``: one for the true types, one for
the states, one per player's strategy. The true types and states therefore do not depend on the
strategies, so two runs with the same seed and different strategies share their randomness
(common random numbers) and their difference in utility is measured with little noise.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stochmech.games.base import TwoStageGame
from stochmech.mechanism import DNBEMechanism, Opening, check_supertypes
from stochmech.strategies import History, PlayerContext, Strategy, Truthful

__all__ = ["SimulationResult", "simulate"]


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` returns (per-day averages over the whole horizon).

    Attributes
    ----------
    days, seed : int
    strategies : list of str
        Description of each player's strategy.
    supertype_bids : (n, K)
    opening : Opening
        First-stage outcome and payments under the bids.
    average_utility : (n,)
        (1/L) sum_l [v_i(delta_i(l), o1, o2(l)) - p_i,l], eq. (2) over the horizon.
    average_valuation, average_payment, average_penalty : (n,)
    penalty_days : (n,) int
        Days on which E_i(l) occurred.
    last_penalty_day : (n,) int
        The last such day (0 if none).
    budget : float
        Planner's average net income per day, sum_i p_i,l (negative: the planner pays).
    average_welfare : float
        (1/L) sum_l [sum_i v_i(delta_i(l), o1, o2(l)) - c(o1, o2(l))], eq. (4).
    optimal_welfare : float
        W*(theta) under the TRUE supertypes.
    checkpoints : (C,) int
        Days at which running averages were taken (log-spaced).
    utility_path : (C, n), welfare_path : (C,), budget_path : (C,)
        Running averages at the checkpoints.
    penalty_path : (C, n) int
        Cumulative penalty days at the checkpoints.
    daily_utility : (L, n) float or None
        Each day's utility v_i(delta_i(l), o1, o2(l)) - p_i,l (only with ``daily=True``).
    daily_welfare : (L,) float or None
        Each day's welfare (only with ``daily=True``).
    daily_flags : (L, n) bool or None
        Each day's penalty events E_i(l) (only with ``daily=True``).
    daily_budget : (L,) float or None
        Each day's net payments to the planner, sum_i p_i,l (only with ``daily=True``).
    """

    days: int
    seed: int
    strategies: list[str]
    supertype_bids: np.ndarray
    opening: Opening
    average_utility: np.ndarray
    average_valuation: np.ndarray
    average_payment: np.ndarray
    average_penalty: np.ndarray
    penalty_days: np.ndarray
    last_penalty_day: np.ndarray
    budget: float
    average_welfare: float
    optimal_welfare: float
    checkpoints: np.ndarray
    utility_path: np.ndarray
    welfare_path: np.ndarray
    budget_path: np.ndarray
    penalty_path: np.ndarray
    daily_utility: np.ndarray | None = None
    daily_welfare: np.ndarray | None = None
    daily_flags: np.ndarray | None = None
    daily_budget: np.ndarray | None = None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the headline figures."""
        return {
            "days": self.days,
            "seed": self.seed,
            "strategies": self.strategies,
            "first_stage_outcome": _jsonable(self.opening.o1),
            "first_stage_payments": self.opening.first_stage_payments.tolist(),
            "average_utility": self.average_utility.tolist(),
            "average_payment": self.average_payment.tolist(),
            "average_penalty": self.average_penalty.tolist(),
            "penalty_days": self.penalty_days.tolist(),
            "last_penalty_day": self.last_penalty_day.tolist(),
            "planner_budget_per_day": self.budget,
            "average_welfare": self.average_welfare,
            "optimal_welfare": self.optimal_welfare,
        }


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def _checkpoints(days: int, count: int) -> np.ndarray:
    points = np.unique(np.geomspace(1, days, num=max(2, count)).round().astype(np.int64))
    return points[(points >= 1) & (points <= days)]


def simulate(
    game: TwoStageGame,
    true_supertypes: Any,
    strategies: Sequence[Strategy] | None = None,
    days: int = 100_000,
    seed: int = 0,
    *,
    mechanism: DNBEMechanism | None = None,
    chunk: int = 1 << 16,
    checkpoints: int = 200,
    progress: bool | None = None,
    daily: bool = False,
) -> SimulationResult:
    """Plays the mechanism for ``days`` days and reports utilities, penalties and welfare.

    Parameters
    ----------
    game : TwoStageGame
    true_supertypes : array_like, shape (n, K)
        The players' true supertypes theta (nature draws types from them).
    strategies : sequence of Strategy, optional
        One per player (copied, so the caller's objects are not modified); default all
        :class:`~stochmech.strategies.Truthful`.
    days : int
        Horizon L.
    seed : int
        Seed of every random stream (same seed, same result).
    mechanism : DNBEMechanism, optional
        Default ``DNBEMechanism(game)``.
    chunk : int
        Days processed per batch (memory is O(chunk * n)).
    checkpoints : int
        Number of log-spaced days at which running averages are kept.
    progress : bool, optional
        Show a progress bar; by default shown for runs of at least 10^6 days on a terminal.
    daily : bool, default False
        Also keep every day's utilities, welfare, budget and penalty events (memory
        O(days * n)); the audit uses them for batch-means standard errors and catch times.

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> from stochmech.strategies import FixedBid
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> theta = [[0.5, 0.5], [0.5, 0.5]]
    >>> truth = simulate(game, theta, days=20_000, seed=1)
    >>> lie = simulate(game, theta, [FixedBid(1), Truthful()], days=20_000, seed=1)
    >>> bool(truth.average_utility[0] > lie.average_utility[0])
    True
    """
    mechanism = DNBEMechanism(game) if mechanism is None else mechanism
    if mechanism.game is not game:
        raise ValueError("mechanism was built for a different game")
    theta = check_supertypes(game, true_supertypes)
    n, k = theta.shape
    days = int(days)
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    chunk = int(chunk)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if strategies is None:
        strategies = [Truthful() for _ in range(n)]
    if len(strategies) != n:
        raise ValueError(f"need one strategy per player ({n}), got {len(strategies)}")
    for i, s in enumerate(strategies):
        if not isinstance(s, Strategy):
            raise ValueError(f"strategy of player {i} is not a Strategy: {s!r}")
    strategies = [copy.deepcopy(s) for s in strategies]

    streams = np.random.SeedSequence(int(seed)).spawn(2 + n)
    type_rng = np.random.default_rng(streams[0])
    state_rng = np.random.default_rng(streams[1])
    player_rngs = [np.random.default_rng(s) for s in streams[2:]]

    contexts = [
        PlayerContext(player=i, supertype=theta[i].copy(), n_types=k, type_values=game.type_values)
        for i in range(n)
    ]
    for s, ctx in zip(strategies, contexts, strict=False):
        s.prepare(ctx)
    bids_theta = np.array(
        [s.supertype_bid(ctx) for s, ctx in zip(strategies, contexts, strict=False)]
    )
    market = mechanism.open(bids_theta)
    o1 = market.o1
    histories = [
        History(context=ctx, supertype_bid=bids_theta[i], o1=o1) for i, ctx in enumerate(contexts)
    ]
    any_history = any(s.history_dependent for s in strategies)

    cdf = np.cumsum(theta, axis=1)
    cdf[:, -1] = 1.0
    points = _checkpoints(days, checkpoints)
    sums = {name: np.zeros(n) for name in ("utility", "valuation", "payment", "penalty")}
    penalty_days = np.zeros(n, dtype=np.int64)
    last_penalty = np.zeros(n, dtype=np.int64)
    welfare_sum = 0.0
    budget_sum = 0.0
    utility_path = np.zeros((points.size, n))
    welfare_path = np.zeros(points.size)
    budget_path = np.zeros(points.size)
    penalty_path = np.zeros((points.size, n), dtype=np.int64)
    next_point = 0
    if daily:
        daily_utility = np.empty((days, n))
        daily_welfare = np.empty(days)
        daily_flags = np.empty((days, n), dtype=bool)
        daily_budget = np.empty(days)

    if progress is None:
        progress = days >= 1_000_000 and sys.stderr.isatty()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=days, unit="day", unit_scale=True, desc="simulating")

    done = 0
    while done < days:
        size = min(chunk, days - done)
        u = type_rng.random((size, n))
        types = np.empty((size, n), dtype=np.int64)
        for i in range(n):
            types[:, i] = np.minimum(np.searchsorted(cdf[i], u[:, i], side="right"), k - 1)
        states = game.sample_states(state_rng, size)
        bids = np.empty_like(types)
        for i, s in enumerate(strategies):
            if not s.history_dependent:
                bids[:, i] = s.type_bids(types[:, i], player_rngs[i])
        if any_history:
            _play_history_dependent(
                game, o1, strategies, histories, types, bids, states, player_rngs
            )
        clearing = market.clear(bids, states)
        v_true = np.asarray(game.valuations(types, o1, clearing.o2, states), dtype=float)
        cost = np.asarray(game.cost(o1, clearing.o2, states), dtype=float)
        total = clearing.total
        utility = v_true - total

        # running sums, with checkpoints inside the chunk
        cum_u = np.cumsum(utility, axis=0)
        cum_w = np.cumsum(v_true.sum(axis=1) - cost)
        cum_b = np.cumsum(total.sum(axis=1))
        cum_p = np.cumsum(clearing.flags, axis=0)
        if daily:
            daily_utility[done : done + size] = utility
            daily_welfare[done : done + size] = v_true.sum(axis=1) - cost
            daily_flags[done : done + size] = clearing.flags
            daily_budget[done : done + size] = total.sum(axis=1)
        while next_point < points.size and points[next_point] <= done + size:
            row = points[next_point] - done - 1
            day = float(points[next_point])
            utility_path[next_point] = (sums["utility"] + cum_u[row]) / day
            welfare_path[next_point] = (welfare_sum + cum_w[row]) / day
            budget_path[next_point] = (budget_sum + cum_b[row]) / day
            penalty_path[next_point] = penalty_days + cum_p[row]
            next_point += 1
        sums["utility"] += cum_u[-1]
        sums["valuation"] += v_true.sum(axis=0)
        sums["payment"] += total.sum(axis=0)
        sums["penalty"] += clearing.penalty.sum(axis=0)
        welfare_sum += float(cum_w[-1])
        budget_sum += float(cum_b[-1])
        penalty_days += cum_p[-1]
        flagged = clearing.flags.any(axis=0)
        if flagged.any():
            last_rows = size - 1 - np.argmax(clearing.flags[::-1], axis=0)
            last_penalty = np.where(flagged, clearing.days[last_rows], last_penalty)
        done += size
        if bar is not None:
            bar.update(size)
    if bar is not None:
        bar.close()

    return SimulationResult(
        days=days,
        seed=int(seed),
        strategies=[s.describe() for s in strategies],
        supertype_bids=bids_theta,
        opening=market.opening,
        average_utility=sums["utility"] / days,
        average_valuation=sums["valuation"] / days,
        average_payment=sums["payment"] / days,
        average_penalty=sums["penalty"] / days,
        penalty_days=penalty_days,
        last_penalty_day=last_penalty,
        budget=budget_sum / days,
        average_welfare=welfare_sum / days,
        optimal_welfare=float(game.optimal_welfare(theta)),
        checkpoints=points,
        utility_path=utility_path,
        welfare_path=welfare_path,
        budget_path=budget_path,
        penalty_path=penalty_path,
        daily_utility=daily_utility if daily else None,
        daily_welfare=daily_welfare if daily else None,
        daily_flags=daily_flags if daily else None,
        daily_budget=daily_budget if daily else None,
    )


def _play_history_dependent(
    game: TwoStageGame,
    o1: Any,
    strategies: Sequence[Strategy],
    histories: list[History],
    types: np.ndarray,
    bids: np.ndarray,
    states: Any,
    rngs: list[np.random.Generator],
) -> None:
    """Fills the history-dependent players' columns of ``bids`` day by day.

    Each day's outcome is computed from the whole (sealed) bid profile after every player has
    bid, then appended to every player's public history.
    """
    dependent = [i for i, s in enumerate(strategies) if s.history_dependent]
    for row in range(types.shape[0]):
        for i in dependent:
            h = histories[i]
            bids[row, i] = strategies[i].type_bid(int(types[row, i]), h, rngs[i])
        day_state = None if states is None else states[row : row + 1]
        o2 = game.second_stage(o1, bids[row : row + 1], day_state)[0]
        state_row = None if states is None else states[row]
        for i in dependent:
            h = histories[i]
            h.own_types.append(int(types[row, i]))
            h.own_bids.append(int(bids[row, i]))
            h.outcomes.append(o2)
            h.states.append(state_row)
