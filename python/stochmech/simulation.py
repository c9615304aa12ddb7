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
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stochmech._json import jsonable
from stochmech._persist import pickle_sealed, unpickle_sealed, write_atomically
from stochmech._ragged import pad_pmfs, padded_cdf, player_contexts
from stochmech.games.base import TwoStageGame
from stochmech.mechanism import DNBEMechanism, Opening, check_supertypes
from stochmech.strategies import History, Strategy, Truthful

__all__ = ["Simulation", "SimulationResult", "simulate"]

_SIM_MAGIC = b"STOCHMECH-SIMULATION\n"
_SIM_VERSION = 1


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
        Days at which running averages were taken (a fixed log-spaced grid, 24 per decade,
        and the last day).
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
            "first_stage_outcome": jsonable(self.opening.o1),
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


_POINTS_PER_DECADE = 24


def _checkpoint_grid(upto: int) -> np.ndarray:
    """Log-spaced days 1 <= d <= upto on a fixed grid (independent of the horizon, so that a
    resumed run keeps the same checkpoints as an uninterrupted one)."""
    if upto < 1:
        return np.zeros(0, dtype=np.int64)
    count = int(np.ceil(np.log10(upto) * _POINTS_PER_DECADE)) + 2
    grid = np.unique(np.round(10 ** (np.arange(count) / _POINTS_PER_DECADE)).astype(np.int64))
    return grid[grid <= upto]


def _running(previous: np.ndarray | float, values: np.ndarray) -> np.ndarray:
    """previous + cumulative sums of ``values`` along axis 0, added one day at a time.

    Starting the cumulative sum from the previous total makes the sequence of floating-point
    additions independent of where a run was split into batches or paused.
    """
    head = np.asarray(previous, dtype=np.float64)[None, ...]
    return np.cumsum(np.concatenate([head, values], axis=0), axis=0)[1:]


class Simulation:
    """A resumable long-horizon simulation of the DNBE mechanism.

    ``Simulation(game, theta, strategies, seed).run(days)`` plays ``days`` more days; it can be
    run again to continue, saved with :meth:`save` and continued after :meth:`load`, and its
    :meth:`result` is bit-identical to that of one uninterrupted run of the same total length.
    :func:`simulate` is the one-call form. Parameters are those of :func:`simulate`.

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> theta = [[0.5, 0.5], [0.5, 0.5]]
    >>> sim = Simulation(game, theta, seed=3)
    >>> sim.run(5_000).run(5_000).day
    10000
    >>> once = simulate(game, theta, days=10_000, seed=3)
    >>> bool(np.array_equal(sim.result().average_utility, once.average_utility))
    True
    """

    def __init__(
        self,
        game: TwoStageGame,
        true_supertypes: Any,
        strategies: Sequence[Strategy] | None = None,
        seed: int = 0,
        *,
        mechanism: DNBEMechanism | None = None,
        chunk: int = 1 << 16,
        daily: bool = False,
    ) -> None:
        mechanism = DNBEMechanism(game) if mechanism is None else mechanism
        if mechanism.game is not game:
            raise ValueError("mechanism was built for a different game")
        theta = check_supertypes(game, true_supertypes)
        n = theta.shape[0]
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
        self.game = game
        self.theta = theta
        self.seed = int(seed)
        self.chunk = chunk
        self.strategies = [copy.deepcopy(s) for s in strategies]

        streams = np.random.SeedSequence(self.seed).spawn(2 + n)
        self._type_rng = np.random.default_rng(streams[0])
        self._state_rng = np.random.default_rng(streams[1])
        self._player_rngs = [np.random.default_rng(s) for s in streams[2:]]

        contexts = player_contexts(game, theta)
        for s, ctx in zip(self.strategies, contexts, strict=True):
            s.prepare(ctx)
        self.supertype_bids = pad_pmfs(
            [s.supertype_bid(ctx) for s, ctx in zip(self.strategies, contexts, strict=True)],
            game.type_counts,
            "supertype bids of the strategies",
        )
        self.market = mechanism.open(self.supertype_bids)
        self._histories = [
            History(context=ctx, supertype_bid=self.supertype_bids[i], o1=self.market.o1)
            for i, ctx in enumerate(contexts)
        ]
        self._cdf = padded_cdf(theta, game.type_counts)
        self.day = 0
        self._sums = {name: np.zeros(n) for name in ("utility", "valuation", "payment", "penalty")}
        self._welfare = 0.0
        self._budget = 0.0
        self._penalty_days = np.zeros(n, dtype=np.int64)
        self._last_penalty = np.zeros(n, dtype=np.int64)
        self.daily = bool(daily)
        self._daily: dict[str, list[np.ndarray]] = {
            "utility": [],
            "welfare": [],
            "flags": [],
            "budget": [],
        }
        self._paths: dict[str, list[Any]] = {
            "day": [],
            "utility": [],
            "welfare": [],
            "budget": [],
            "penalty": [],
        }

    def run(self, days: int, *, progress: bool | None = None) -> Simulation:
        """Plays ``days`` more days; returns ``self``.

        ``progress`` shows a progress bar (by default for at least 10^6 days on a terminal).
        """
        days = int(days)
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        if progress is None:
            progress = days >= 1_000_000 and sys.stderr.isatty()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=days, unit="day", unit_scale=True, desc="simulating")
        end = self.day + days
        try:
            while self.day < end:
                # batches end on multiples of the chunk size, wherever the run started
                size = min(self.chunk - self.day % self.chunk, end - self.day)
                self._play(size)
                if bar is not None:
                    bar.update(size)
        finally:
            if bar is not None:
                bar.close()
        return self

    def _play(self, size: int) -> None:
        game, n = self.game, self.theta.shape[0]
        counts = game.type_counts
        o1 = self.market.o1
        u = self._type_rng.random((size, n))
        types = np.empty((size, n), dtype=np.int64)
        for i in range(n):
            top = int(counts[i]) - 1
            types[:, i] = np.minimum(np.searchsorted(self._cdf[i], u[:, i], side="right"), top)
        states = game.sample_states(self._state_rng, size)
        bids = np.empty_like(types)
        for i, s in enumerate(self.strategies):
            if not s.history_dependent:
                bids[:, i] = s.type_bids(types[:, i], self._player_rngs[i])
        if any(s.history_dependent for s in self.strategies):
            _play_history_dependent(
                game, o1, self.strategies, self._histories, types, bids, states, self._player_rngs
            )
        clearing = self.market.clear(bids, states)
        v_true = np.asarray(game.valuations(types, o1, clearing.o2, states), dtype=float)
        cost = np.asarray(game.cost(o1, clearing.o2, states), dtype=float)
        total = clearing.total

        if self.daily:
            self._daily["utility"].append(v_true - total)
            self._daily["welfare"].append(v_true.sum(axis=1) - cost)
            self._daily["flags"].append(clearing.flags.copy())
            self._daily["budget"].append(total.sum(axis=1))
        cum_u = _running(self._sums["utility"], v_true - total)
        cum_w = _running(self._welfare, v_true.sum(axis=1) - cost)
        cum_b = _running(self._budget, total.sum(axis=1))
        cum_p = self._penalty_days + np.cumsum(clearing.flags, axis=0)
        first = self.day
        for point in _checkpoint_grid(first + size):
            if point > first:
                row = point - first - 1
                self._paths["day"].append(int(point))
                self._paths["utility"].append(cum_u[row] / point)
                self._paths["welfare"].append(cum_w[row] / point)
                self._paths["budget"].append(cum_b[row] / point)
                self._paths["penalty"].append(cum_p[row].copy())
        self._sums["utility"] = cum_u[-1]
        self._sums["valuation"] = _running(self._sums["valuation"], v_true)[-1]
        self._sums["payment"] = _running(self._sums["payment"], total)[-1]
        self._sums["penalty"] = _running(self._sums["penalty"], clearing.penalty)[-1]
        self._welfare = float(cum_w[-1])
        self._budget = float(cum_b[-1])
        self._penalty_days = cum_p[-1]
        flagged = clearing.flags.any(axis=0)
        if flagged.any():
            last_rows = size - 1 - np.argmax(clearing.flags[::-1], axis=0)
            self._last_penalty = np.where(flagged, clearing.days[last_rows], self._last_penalty)
        self.day += size

    def result(self) -> SimulationResult:
        """The figures of the days played so far."""
        if self.day == 0:
            raise ValueError("no day has been played yet: call run(days) first")
        days = self.day
        paths = dict(self._paths)
        if not paths["day"] or paths["day"][-1] != days:
            paths = {key: [*value] for key, value in paths.items()}
            paths["day"].append(days)
            paths["utility"].append(self._sums["utility"] / days)
            paths["welfare"].append(self._welfare / days)
            paths["budget"].append(self._budget / days)
            paths["penalty"].append(self._penalty_days.copy())
        return SimulationResult(
            days=days,
            seed=self.seed,
            strategies=[s.describe() for s in self.strategies],
            supertype_bids=self.supertype_bids,
            opening=self.market.opening,
            average_utility=self._sums["utility"] / days,
            average_valuation=self._sums["valuation"] / days,
            average_payment=self._sums["payment"] / days,
            average_penalty=self._sums["penalty"] / days,
            penalty_days=self._penalty_days.copy(),
            last_penalty_day=self._last_penalty.copy(),
            budget=self._budget / days,
            average_welfare=self._welfare / days,
            optimal_welfare=float(self.game.optimal_welfare(self.theta)),
            checkpoints=np.array(paths["day"], dtype=np.int64),
            utility_path=np.array(paths["utility"]),
            welfare_path=np.array(paths["welfare"]),
            budget_path=np.array(paths["budget"]),
            penalty_path=np.array(paths["penalty"], dtype=np.int64),
            **self._daily_series(),
        )

    def _daily_series(self) -> dict[str, np.ndarray | None]:
        if not self.daily:
            return {}
        return {f"daily_{name}": np.concatenate(parts) for name, parts in self._daily.items()}

    # ----- persistence -----
    def to_bytes(self) -> bytes:
        """The whole simulation (market, strategies, random streams, sums) as checksummed bytes.

        A pickle inside: strategies must be picklable (a ``HistoryDependent`` policy defined as
        a module-level function is; a lambda is not). Load only files you trust.
        """
        return pickle_sealed(self, _SIM_MAGIC, _SIM_VERSION, "simulation")

    @classmethod
    def from_bytes(cls, data: bytes) -> Simulation:
        """Restores a simulation from :meth:`to_bytes`; damage raises ``ValueError``."""
        return unpickle_sealed(data, _SIM_MAGIC, _SIM_VERSION, Simulation, "simulation")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the simulation to ``path`` atomically."""
        write_atomically(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Simulation:
        """Reads a simulation written by :meth:`save`."""
        return cls.from_bytes(Path(path).read_bytes())


def simulate(
    game: TwoStageGame,
    true_supertypes: Any,
    strategies: Sequence[Strategy] | None = None,
    days: int = 100_000,
    seed: int = 0,
    *,
    mechanism: DNBEMechanism | None = None,
    chunk: int = 1 << 16,
    progress: bool | None = None,
    daily: bool = False,
) -> SimulationResult:
    """Plays the mechanism for ``days`` days and reports utilities, penalties and welfare.

    Parameters
    ----------
    game : TwoStageGame
    true_supertypes : array_like, shape (n, K), or sequence of n pmfs of lengths K_i
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
        Days processed per batch (memory is O(chunk * n)); results do not depend on it.
    progress : bool, optional
        Show a progress bar; by default shown for runs of at least 10^6 days on a terminal.
    daily : bool, default False
        Also keep every day's utilities, welfare, budget and penalty events (memory
        O(days * n)); the audit uses them for batch-means standard errors and catch times.

    See Also
    --------
    Simulation : the resumable form (run, save, load, continue).

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
    sim = Simulation(
        game, true_supertypes, strategies, seed, mechanism=mechanism, chunk=chunk, daily=daily
    )
    return sim.run(days, progress=progress).result()


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
