"""Long-horizon simulation: one engine for every payment scheme.

:func:`simulate` plays the repeated game for many days: nature draws every player's type from
its true supertype (and the public state omega), the strategies bid, a payment scheme settles
the day (the DNBE mechanism by default; a posted price, pay as bid or a user-written scheme of
:mod:`stochmech.schemes`), and the result reports what a designer needs: each player's average
utility, payment and penalties, the planner's budget, the average welfare against the optimum
W*(theta), and running averages to plot convergence.

Randomness comes from independent streams spawned from ``seed``: one for the true types, one for
the states, one per player's strategy. The true types and states therefore do not depend on the
strategies, so two runs with the same seed and different strategies share their randomness
(common random numbers) and their difference in utility is measured with little noise; two
runs with the same seed and strategies under different schemes see the same days.

A run is played in chunks of days. A chunk is all or nothing: if anything raises inside it (a
strategy's error or bad bid, a scheme's bad output, ``KeyboardInterrupt``), the random streams,
the strategies, the histories and the scheme are put back as they were before the chunk, so the
simulation stays at the last completed chunk, with its day, ledger, streams and histories
agreeing, and continuing from there (or from a save made there) is bit-identical to a run that
was never interrupted. A ``KeyboardInterrupt`` that arrives while a chunk is being recorded is
held until the chunk is complete.

Under the DNBE mechanism, when no strategy reads the history, the ledger records chunk k on a
worker thread (it records with the GIL released) while chunk k+1 is drawn and valued; chunk k
is then paid and added to the sums. The computations are the same, in the same order for each
number, so the results are those of a run on one thread, bit for bit; each chunk stays all or
nothing (a failure while drawing chunk k+1 lets chunk k complete first).
"""

from __future__ import annotations

import copy
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from stochmech import _state
from stochmech._display import fmt_array, html_table, pandas, short_repr
from stochmech._json import jsonable
from stochmech._persist import read_file, write_atomically
from stochmech._ragged import padded_cdf, player_contexts
from stochmech._sampling import TypeTable
from stochmech._seeding import SeedLike, describe_seed, normalize_seed, seed_record, spawn
from stochmech._validate import integer
from stochmech.games.base import TwoStageGame
from stochmech.ledger import LedgerRecord
from stochmech.mechanism import DNBEMechanism, Market, Opening, check_supertypes
from stochmech.schemes import PaymentScheme, SchemeRun, Settlement, check_settlement
from stochmech.strategies import (
    FixedBid,
    History,
    StationaryMisreport,
    Strategy,
    SupertypeLie,
    Truthful,
)

__all__ = ["Simulation", "SimulationResult", "simulate"]

#: built-in strategies (exactly these classes) whose bidding leaves them unchanged: a chunk's
#: snapshot need not copy them
_STATELESS = frozenset({Truthful, FixedBid, StationaryMisreport, SupertypeLie})
#: built-in strategies that never draw from their random stream
_NO_STREAM = frozenset({Truthful, FixedBid})


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
        First-stage outcome and payments under the bids (for schemes without a first-stage
        payment: the outcome, zero payments and NaN expectations).
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
    seed: int | np.random.SeedSequence
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
    scheme: str = "mechanism"

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the headline figures."""
        return {
            "days": self.days,
            "seed": seed_record(self.seed),
            "scheme": self.scheme,
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

    # ----- notebooks -----
    def _lines(self) -> list[tuple[str, Any]]:
        share = (
            f" ({100 * self.average_welfare / self.optimal_welfare:.2f} % of W* "
            f"{self.optimal_welfare:.5g})"
            if self.optimal_welfare
            else f" (W* {self.optimal_welfare:.5g})"
        )
        return [
            ("average utility", fmt_array(self.average_utility)),
            ("average payment", fmt_array(self.average_payment)),
            ("penalty days", fmt_array(self.penalty_days)),
            ("welfare / day", f"{self.average_welfare:.5g}{share}"),
            ("planner budget / day", f"{self.budget:.5g}"),
        ]

    def _title(self) -> str:
        n = self.average_utility.shape[0]
        return (
            f"SimulationResult: {self.days:,} days, {n} player{'s' if n != 1 else ''}, "
            f"{self.scheme}, seed {describe_seed(self.seed)}"
        )

    def __repr__(self) -> str:
        return short_repr(self._title(), self._lines())

    def _repr_html_(self) -> str:
        cols = ["player", "strategy", "utility", "valuation", "payment", "penalty", "penalty days"]
        rows = [
            [
                i,
                self.strategies[i],
                self.average_utility[i],
                self.average_valuation[i],
                self.average_payment[i],
                self.average_penalty[i],
                self.penalty_days[i],
            ]
            for i in range(self.average_utility.shape[0])
        ]
        return html_table(self._title(), self._lines()[3:], cols, rows)

    def to_pandas(self, kind: str = "paths") -> Any:
        """A pandas DataFrame (pandas is the optional extra ``stochmech[pandas]``).

        ``kind``:

        * ``"paths"`` (default): one row per checkpoint day (index ``day``), columns
          ``utility_<i>`` and ``penalty_days_<i>`` per player, ``welfare`` and ``budget``
          (running averages);
        * ``"daily"``: one row per day 1..L, columns ``utility_<i>``, ``flagged_<i>``,
          ``welfare`` and ``budget`` (needs a run with ``daily=True``);
        * ``"players"``: one row per player with the averages of the horizon.

        Examples
        --------
        >>> from stochmech.games.finite import FiniteGame
        >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
        >>> res = simulate(FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]]), [[.5, .5], [.5, .5]],
        ...                days=1000, daily=True)
        >>> res.to_pandas().columns.tolist()
        ['utility_0', 'utility_1', 'penalty_days_0', 'penalty_days_1', 'welfare', 'budget']
        >>> res.to_pandas("daily").shape, res.to_pandas("players").shape
        ((1000, 6), (2, 7))
        """
        pd = pandas()
        n = self.average_utility.shape[0]
        if kind == "paths":
            data: dict[str, Any] = {f"utility_{i}": self.utility_path[:, i] for i in range(n)}
            data |= {f"penalty_days_{i}": self.penalty_path[:, i] for i in range(n)}
            data |= {"welfare": self.welfare_path, "budget": self.budget_path}
            return pd.DataFrame(data, index=pd.Index(self.checkpoints, name="day"))
        if kind == "daily":
            if self.daily_utility is None:
                raise ValueError("kind='daily' needs a run with daily=True")
            assert self.daily_flags is not None
            data = {f"utility_{i}": self.daily_utility[:, i] for i in range(n)}
            data |= {f"flagged_{i}": self.daily_flags[:, i] for i in range(n)}
            data |= {"welfare": self.daily_welfare, "budget": self.daily_budget}
            days = np.arange(1, self.days + 1, dtype=np.int64)
            return pd.DataFrame(data, index=pd.Index(days, name="day"))
        if kind == "players":
            return pd.DataFrame(
                {
                    "strategy": self.strategies,
                    "average_utility": self.average_utility,
                    "average_valuation": self.average_valuation,
                    "average_payment": self.average_payment,
                    "average_penalty": self.average_penalty,
                    "penalty_days": self.penalty_days,
                    "last_penalty_day": self.last_penalty_day,
                },
                index=pd.Index(np.arange(n), name="player"),
            )
        raise ValueError(f"kind must be 'paths', 'daily' or 'players', got {kind!r}")


def default_chunk(n_players: int) -> int:
    """Days per batch by default: 65,536, fewer beyond 64 players so that a batch's (days, n)
    tables hold about 2^22 numbers (32 MiB each at 1,000 players, whatever the horizon).

    Examples
    --------
    >>> default_chunk(10), default_chunk(1_000)
    (65536, 4194)
    """
    return max(1, min(1 << 16, (1 << 22) // max(1, int(n_players))))


def _block_rows(n_players: int) -> int:
    """Rows of (rows, n) blocks that stay in a core's cache (about 2^17 numbers, 1 MiB)."""
    return max(8, (1 << 17) // max(1, int(n_players)))


def _has_negative_zero(x: np.ndarray) -> bool:
    return bool(np.signbit(x[x == 0]).any())


def _sequential_reduce() -> bool:
    """Whether numpy's ``add.reduce`` along axis 0 of a C-ordered (rows, n) float array with
    many columns adds the rows one after the other, as a row-by-row loop does (checked once,
    bit for bit, on numbers whose sum depends on the order of the additions)."""
    global _SEQUENTIAL_REDUCE
    if _SEQUENTIAL_REDUCE is None:
        rng = np.random.default_rng(0)
        values = rng.normal(size=(200, 64)) * 10.0 ** rng.integers(-12, 17, size=(200, 64))
        acc = values[0].copy()
        for row in values[1:]:
            acc += row
        _SEQUENTIAL_REDUCE = bool(np.array_equal(np.add.reduce(values, axis=0), acc))
    return _SEQUENTIAL_REDUCE


_SEQUENTIAL_REDUCE: bool | None = None


class _Totals:
    """Per-player running totals, added one day at a time, fed by blocks of at most ``block``
    rows: write a block into :meth:`slots`, then :meth:`add` it.

    The total sits in the row before the block (``stacked[0]``), so that one pass over the
    rows adds them to it in order: numpy's ``cumsum`` along axis 0 (an accumulate, row after
    row, never a pairwise sum) for few players; for many players ``add.reduce`` along axis 0
    (the rows one after the other into a vector of totals, which does the same additions much
    faster than an accumulate over many short columns), unless numpy is found not to add that
    way (:func:`_sequential_reduce`) or a total is -0.0 (which a reduction may start from
    +0.0); then a row-by-row loop of vector additions.
    """

    def __init__(self, previous: np.ndarray | float, n: int, block: int) -> None:
        self.total = np.array(np.broadcast_to(previous, (n,)), dtype=np.float64)
        self.wide = n > 48
        self.stacked = np.empty((block + 1, n))

    def slots(self, m: int) -> np.ndarray:
        """The (m, n) rows to fill with the next m days."""
        return self.stacked[1 : m + 1]

    def add(self, m: int, cuts: Sequence[int] = (), sparse: bool = False) -> list[np.ndarray]:
        """Adds the m rows of :meth:`slots`; returns the totals after each row in ``cuts``
        (increasing, < m). ``sparse``: first check whether a run of rows is all zeros,
        which leaves every total that is not -0.0 as it is."""
        stacked = self.stacked
        at = []
        s = 0
        for c in [*cuts, m - 1]:
            e = c + 1  # stacked[s] takes the total, stacked[s + 1 : e + 1] are the rows
            part = stacked[s + 1 : e + 1]
            negative_zero = _has_negative_zero(self.total)
            if sparse and not negative_zero and not part.any():
                pass
            elif self.wide and (e - s < 8 or negative_zero or not _sequential_reduce()):
                total = self.total.copy()
                for row in part:
                    total += row
                self.total = total
            else:
                stacked[s] = self.total
                if self.wide:
                    self.total = np.add.reduce(stacked[s : e + 1], axis=0)
                else:
                    self.total = np.cumsum(stacked[s : e + 1], axis=0)[-1].copy()
            at.append(self.total.copy())
            s = e
        return at[:-1]


def _running(
    previous: np.ndarray | float, values: np.ndarray, rows: Sequence[int] = ()
) -> tuple[list[Any], Any]:
    """previous + cumulative sums of ``values`` along axis 0, added one day at a time: the
    running totals at ``rows`` (increasing) and after the last row.

    Starting the cumulative sum from the previous total makes the sequence of floating-point
    additions independent of where a run was split into batches or paused. Per-player values,
    (L, n), are added row after row (:class:`_Totals`, in blocks of about 2^16 numbers: no
    (L, n) cumulative table is built); per-player flags, (L, n) bool, are counted (integers:
    any order is exact).
    """
    if values.ndim == 1:
        head = np.asarray(previous, dtype=values.dtype if values.dtype.kind == "i" else np.float64)
        cum = np.cumsum(np.concatenate([head[None], values]))[1:]
        return [cum[r] for r in rows], cum[-1]
    stops = [*rows, values.shape[0] - 1]
    if values.dtype == np.bool_:
        counts = np.array(previous, dtype=np.int64)
        at: list[Any] = []
        start = 0
        for stop in stops:
            counts = counts + np.count_nonzero(values[start : stop + 1], axis=0)
            at.append(counts)
            start = stop + 1
        return at[:-1], counts
    n = values.shape[1]
    block = max(8, (1 << 16) // max(1, n))
    totals = _Totals(previous, n, block)
    at = []
    for r0 in range(0, values.shape[0], block):
        part = values[r0 : r0 + block]
        totals.slots(part.shape[0])[...] = part
        at += totals.add(part.shape[0], [r - r0 for r in rows if r0 <= r < r0 + block])
    return at, totals.total


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Holds SIGINT (Ctrl-C) while the block runs and raises ``KeyboardInterrupt`` after it.

    Only in the main thread, and only when Python's default handler is installed (anything else
    is somebody else's choice and is left alone).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        caught.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


def _wait(future: Future[Any]) -> None:
    """Waits for ``future`` to finish, whatever it returns or raises."""
    try:
        future.result()
    except BaseException:
        pass


@dataclass
class _Drawn:
    """A chunk drawn and valued, waiting for (or being recorded by) the ledger."""

    size: int
    snap: tuple[Any, ...]
    bids: np.ndarray
    terms: tuple[Any, np.ndarray, np.ndarray, np.ndarray]
    record: Future[LedgerRecord] | None = None


class Simulation:
    """A resumable long-horizon simulation under a payment scheme (the DNBE mechanism by default).

    ``Simulation(game, theta, strategies, seed).run(days)`` plays ``days`` more days; it can be
    run again to continue, saved with :meth:`save` and continued after :meth:`load`, and its
    :meth:`result` is bit-identical to that of one uninterrupted run of the same total length.
    If :meth:`run` raises (a strategy's error, ``KeyboardInterrupt``), the simulation is left at
    the last completed chunk of days, consistent and ready to continue (see the module
    docstring). :func:`simulate` is the one-call form. Parameters are those of
    :func:`simulate`.

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
        seed: SeedLike = 0,
        *,
        mechanism: PaymentScheme | None = None,
        chunk: int | None = None,
        daily: bool = False,
    ) -> None:
        scheme = DNBEMechanism(game) if mechanism is None else mechanism
        if not callable(getattr(scheme, "start", None)) or not isinstance(
            getattr(scheme, "name", None), str
        ):
            raise ValueError(
                "mechanism must be a payment scheme (a DNBEMechanism, PostedPrice, PayAsBid or "
                f"an object with a name and start(game, supertype_bids)), got {mechanism!r}"
            )
        theta = check_supertypes(game, true_supertypes)
        n = theta.shape[0]
        chunk = default_chunk(n) if chunk is None else chunk
        chunk = integer(chunk, "chunk", minimum=1, maximum=1 << 40)
        seed = normalize_seed(seed)
        if not isinstance(daily, (bool, np.bool_)):
            raise ValueError(f"daily must be True or False, got {daily!r}")
        if strategies is None:
            strategies = [Truthful() for _ in range(n)]
        if len(strategies) != n:
            raise ValueError(f"need one strategy per player ({n}), got {len(strategies)}")
        for i, s in enumerate(strategies):
            if not isinstance(s, Strategy):
                raise ValueError(f"strategy of player {i} is not a Strategy: {s!r}")
        self.game = game
        self.theta = theta
        self.seed = seed
        self.chunk = chunk
        self.scheme = scheme
        self.strategies = [copy.deepcopy(s) for s in strategies]

        streams = spawn(self.seed, 2 + n)
        self._type_rng = np.random.default_rng(streams[0])
        self._state_rng = np.random.default_rng(streams[1])
        self._player_rngs = [np.random.default_rng(s) for s in streams[2:]]

        contexts = player_contexts(game, theta)
        for s, ctx in zip(self.strategies, contexts, strict=True):
            s.prepare(ctx)
        self.supertype_bids = check_supertypes(
            game, [s.supertype_bid(ctx) for s, ctx in zip(self.strategies, contexts, strict=True)]
        )
        self.market: SchemeRun = scheme.start(game, self.supertype_bids)
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
        self._lock = threading.RLock()

    def run(
        self,
        days: int,
        *,
        progress: bool | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
    ) -> Simulation:
        """Plays ``days`` more days; returns ``self``.

        ``progress`` shows a progress bar (by default for at least 10^6 days on a terminal).
        With ``checkpoint`` the simulation is saved there every ``checkpoint_every`` days (at
        the first chunk boundary after each multiple; default: only at the end). If the call
        raises, the simulation is at the last completed chunk (see the module docstring).
        Calls from several threads are serialized.
        """
        with self._lock:
            return self._run(days, progress, checkpoint, checkpoint_every)

    def _run(
        self,
        days: int,
        progress: bool | None,
        checkpoint: str | os.PathLike[str] | None,
        checkpoint_every: int | None,
    ) -> Simulation:
        # days are counted exactly in float64 up to 2**53
        days = integer(days, "days", minimum=1, maximum=(1 << 53) - self.day)
        every = None
        if checkpoint_every is not None:
            every = integer(checkpoint_every, "checkpoint_every", minimum=1)
        if every is not None and checkpoint is None:
            raise ValueError("checkpoint_every needs a checkpoint path")
        if progress is None:
            progress = days >= 1_000_000 and sys.stderr.isatty()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=days, unit="day", unit_scale=True, desc="simulating")
        end = self.day + days
        saved = self.day

        def save_due(day: int) -> bool:
            return every is not None and day - saved >= every and day < end

        def played(size: int) -> None:
            nonlocal saved
            if bar is not None:
                bar.update(size)
            if save_due(self.day):
                self.save(checkpoint)  # type: ignore[arg-type]
                saved = self.day

        try:
            if self._overlap(end):
                self._run_overlapped(end, played, save_due)
            else:
                while self.day < end:
                    # batches end on multiples of the chunk size, wherever the run started
                    size = min(self.chunk - self.day % self.chunk, end - self.day)
                    self._play(size)
                    played(size)
        finally:
            if bar is not None:
                bar.close()
            self.__dict__.pop("_pool", None)  # the work arrays live as long as the run
        if checkpoint is not None:
            self.save(checkpoint)
        return self

    # ----- the ledger in the background -----
    def _overlap(self, end: int) -> bool:
        """Whether to record each chunk in the ledger while the next one is drawn: under the
        DNBE mechanism (whose ledger records with the GIL released), for runs of several
        chunks, when no strategy reads the history (the next chunk's bids then do not depend
        on this chunk's outcomes, so the order of the computations, not their numbers,
        changes)."""
        return (
            isinstance(self.market, Market)
            and end - self.day > self.chunk
            and not any(s.history_dependent for s in self.strategies)
        )

    def _run_overlapped(self, end: int, played: Any, save_due: Any) -> None:
        """Plays up to day ``end`` with the ledger one chunk behind, on a worker thread.

        Chunk k+1 is drawn and valued while the ledger records chunk k; then chunk k+1 goes
        to the ledger and chunk k is paid and added to the sums. Each chunk stays all or
        nothing: a failure while drawing chunk k+1 lets chunk k complete first; a failure
        of chunk k's record or settlement puts everything back to before chunk k (chunk k+1,
        drawn after it, is dropped with it); interruptions are held from the moment a chunk
        starts to complete until it has. A checkpoint falls on a completed chunk with
        nothing drawn beyond it.
        """
        from concurrent.futures import ThreadPoolExecutor

        market = self.market
        assert isinstance(market, Market)
        pending: _Drawn | None = None  # drawn, valued and being recorded
        with ThreadPoolExecutor(1, thread_name_prefix="stochmech-ledger") as worker:
            try:
                while True:
                    planned = self.day + (pending.size if pending is not None else 0)
                    if planned >= end:
                        break
                    if pending is not None and save_due(planned):
                        with _interrupts_held():
                            done, pending = pending, None
                            self._add_recorded(done, self._recorded(done))
                        played(done.size)
                        continue
                    size = min(self.chunk - planned % self.chunk, end - planned)
                    drawn = self._prepare(size, None if pending is None else pending.record)
                    with _interrupts_held():
                        if pending is None:
                            drawn.record = worker.submit(market._record_drawn, drawn.bids)
                            pending = drawn
                            continue
                        done, pending = pending, None
                        record = self._recorded(done)
                        drawn.record = worker.submit(market._record_drawn, drawn.bids)
                        try:
                            self._add_recorded(done, record)
                        except BaseException:  # a settlement refused: the ledger keeps both
                            _wait(drawn.record)
                            raise
                        pending = drawn
                    played(done.size)
                if pending is not None:
                    with _interrupts_held():
                        done, pending = pending, None
                        self._add_recorded(done, self._recorded(done))
                    played(done.size)
            except BaseException:
                if pending is not None:  # recorded in the background: completed before leaving
                    with _interrupts_held():
                        done, pending = pending, None
                        self._add_recorded(done, self._recorded(done))
                raise

    def _prepare(self, size: int, before: Future[Any] | None) -> _Drawn:
        """Draws and values the next chunk (all or nothing: put back if anything raises);
        ``before`` is the record of the chunk before, if it is still being made."""
        snap = self._snapshot()
        # the work arrays of the other generation: the chunk before is still being recorded
        self._generation = 1 - self.__dict__.get("_generation", 0)
        try:
            types, states, bids, special = self._draw(size, True)
            self._check_drawn(bids, special, before)
            assert isinstance(self.market, Market)
            work = self._work(size, settlement=False)
            terms = self.market._terms_drawn(types, bids, states, special, work[:3])
        except BaseException:
            with _interrupts_held():
                self._restore(snap)
            raise
        return _Drawn(size, snap, bids, terms)

    def _recorded(self, drawn: _Drawn) -> LedgerRecord:
        """The ledger's record of a chunk whose recording was started in the background; if
        it failed, the simulation is put back to before the chunk (the ledger is unchanged)."""
        assert drawn.record is not None
        try:
            return drawn.record.result()
        except BaseException:
            self._restore(drawn.snap)
            raise

    def _add_recorded(self, drawn: _Drawn, record: LedgerRecord) -> None:
        """Pays a recorded chunk and adds it to the sums (:meth:`_add`, the payments made a
        block of rows at a time in cache); if anything fails, the simulation is put back to
        before the chunk (the ledger keeps its record, as when a settlement is refused)."""
        market = self.market
        assert isinstance(market, Market)
        _, v_bid, v_true, cost = drawn.terms
        penalty = market._penalty_rows(record)

        def payment(r0: int, r1: int, out: np.ndarray, pen: np.ndarray | float) -> None:
            market._payments(v_bid[r0:r1], pen, out)

        def refused() -> None:
            settled = market._settlement(record, *drawn.terms)
            check_settlement(settled, drawn.size, self.theta.shape[0])
            raise ValueError("the settlement of the chunk is not finite")  # pragma: no cover

        try:
            self._add(drawn.size, v_true, cost, record.flags, penalty, payment, refused)
        except BaseException:
            self._restore(drawn.snap)
            raise

    # ----- one chunk, all or nothing -----
    def _snapshot(self) -> tuple[Any, ...]:
        # what a chunk can change besides the sums: the random streams the chunk may draw
        # from, the strategies that may hold a state, and the histories of the players who
        # keep one (the others' histories stay empty; their streams are never drawn from)
        strategies = self.strategies
        drawing = [i for i, s in enumerate(strategies) if type(s) not in _NO_STREAM]
        memo: dict[int, Any] = {id(s): s for s in strategies if type(s) in _STATELESS}
        copied = (
            list(strategies)
            if len(memo) == len(strategies)
            else copy.deepcopy(strategies, memo)  # the stateless ones stay as they are
        )
        recording = [i for i, s in enumerate(strategies) if s.history_dependent]
        return (
            self._type_rng.bit_generator.state,
            self._state_rng.bit_generator.state,
            [(i, self._player_rngs[i].bit_generator.state) for i in drawing],
            copied,
            [
                (i, len(h.own_types), len(h.own_bids), len(h.outcomes), len(h.states))
                for i, h in ((i, self._histories[i]) for i in recording)
            ],
        )

    def _restore(self, snap: tuple[Any, ...]) -> None:
        type_state, state_state, player_states, strategies, lengths = snap
        self._type_rng.bit_generator.state = type_state
        self._state_rng.bit_generator.state = state_state
        for i, st in player_states:
            self._player_rngs[i].bit_generator.state = st
        self.strategies = strategies
        for i, a, b, c, d in lengths:
            h = self._histories[i]
            del h.own_types[a:], h.own_bids[b:], h.outcomes[c:], h.states[d:]

    def _buffer(self, name: str, rows: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A work array of ``rows`` rows kept from chunk to chunk during a run, one per
        generation of the pipeline (a fresh array of tens of MiB would cost the kernel's
        faults and zeroing on every chunk). Only for arrays that stay inside the engine and
        the DNBE market."""
        pool: dict[tuple[str, int], np.ndarray] = self.__dict__.setdefault("_pool", {})
        key = (name, self.__dict__.get("_generation", 0))
        a = pool.get(key)
        if a is None or a.shape[0] < rows or a.shape[1:] != shape or a.dtype != dtype:
            a = pool[key] = np.empty((rows, *shape), dtype)
        return a[:rows]

    def _work(self, size: int, settlement: bool = True) -> tuple[Any, ...]:
        """The work arrays of a chunk's terms and, for a whole settlement, of o2 and the
        payments (the sums need neither: o2 is then not kept, the payments are made a block
        at a time): o2 or None, valuations at the bids and at the types, payments or None."""
        n = self.theta.shape[0]
        return (
            self._buffer("o2", size, (n + 1,), np.float64) if settlement else None,
            self._buffer("v_bid", size, (n,), np.float64),
            self._buffer("v_true", size, (n,), np.float64),
            self._buffer("payment", size, (n,), np.float64) if settlement else None,
        )

    def _types(self, size: int, out: np.ndarray | None = None) -> np.ndarray:
        """The next ``size`` days of true types, (size, n) int64: the uniforms of the type
        stream, row after row, through each player's inverse CDF (:mod:`stochmech._sampling`),
        in blocks of rows small enough to stay in cache."""
        n = self.theta.shape[0]
        # built on first use from the CDFs (which a loaded simulation sets anew)
        cached = getattr(self, "_type_table", None)
        if cached is None or cached[0] is not self._cdf:
            cached = (self._cdf, TypeTable(self._cdf, self.game.type_counts))
            self._type_table = cached
        table = cached[1]
        types = np.empty((size, n), dtype=np.int64) if out is None else out
        block = _block_rows(n)
        u = np.empty((min(block, size), n))
        for start in range(0, size, block):
            part = u[: min(block, size - start)]
            self._type_rng.random(out=part)
            table.draw(part, types[start : start + part.shape[0]])
        return types

    def _draw(
        self, size: int, reuse: bool = False
    ) -> tuple[np.ndarray, Any, np.ndarray, np.ndarray]:
        """The next ``size`` days of the day stream: true types, states and sealed bids, and
        the players whose bids may differ from their types (none: the bids are the types,
        the same array). ``reuse``: the types and bids go to the engine's work arrays (which
        the next chunks overwrite; only the DNBE market sees them)."""
        game = self.game
        n = self.theta.shape[0]
        out = self._buffer("types", size, (n,), np.int64) if reuse else None
        types = self._types(size, out)
        states = game.sample_states(self._state_rng, size)
        # truthful players bid their types: their columns are the drawn types, in range
        special = [i for i, s in enumerate(self.strategies) if type(s) is not Truthful]
        if not special:
            bids = types
        elif reuse:
            bids = self._buffer("bids", size, (n,), np.int64)
            bids[...] = types
        else:
            bids = types.copy()
        for i in special:
            s = self.strategies[i]
            if not s.history_dependent:
                own = types[:, i]
                if reuse and type(s) not in _STATELESS:
                    own = own.copy()  # a strategy of its own may keep what it is given
                out = np.asarray(s.type_bids(own, self._player_rngs[i]))
                if out.shape != (size,):
                    raise ValueError(
                        f"strategy of player {i} ({s.describe()}) returned bids of shape "
                        f"{out.shape} for {size} days"
                    )
                bids[:, i] = out
        if any(self.strategies[i].history_dependent for i in special):
            _play_history_dependent(
                game,
                self.market.o1,
                self.strategies,
                self._histories,
                types,
                bids,
                states,
                self._player_rngs,
            )
        return types, states, bids, np.array(special, dtype=np.int64)

    def _settle(
        self, types: np.ndarray, states: Any, bids: np.ndarray, special: np.ndarray
    ) -> Settlement:
        """The scheme's settlement of a drawn chunk. A market of the DNBE mechanism is handed
        bids it need not check again: the truthful players' bids are drawn types, and the
        others' are checked here (with the ledger's own message)."""
        market = self.market
        if not isinstance(market, Market):
            return market.settle(types, bids, states)
        self._check_drawn(bids, special)
        return market._settle_drawn(types, bids, states, special, self._work(bids.shape[0]))

    def _check_drawn(
        self, bids: np.ndarray, special: np.ndarray, before: Future[Any] | None = None
    ) -> None:
        """Refuses a chunk in which a player who is not truthful bids outside its types (with
        the ledger's message, once the ledger has recorded the chunk ``before``, if any)."""
        if special.size:
            assert isinstance(self.market, Market)
            counts = self.game.type_counts
            own = bids[:, special]
            if own.size and (own.min() < 0 or np.any(own.max(axis=0) >= counts[special])):
                if before is not None:
                    _wait(before)  # the ledger's message counts the days it has recorded
                self.market.ledger.check(bids)  # raises, naming the first bad bid

    def _play(self, size: int) -> None:
        snap = self._snapshot()
        committed = False
        try:
            types, states, bids, special = self._draw(size, isinstance(self.market, Market))
            with _interrupts_held():
                settled = check_settlement(
                    self._settle(types, states, bids, special), size, self.theta.shape[0]
                )
                self._record(size, settled)
                committed = True  # a Ctrl-C held above is raised after this point
        except BaseException:
            if not committed:
                with _interrupts_held():
                    self._restore(snap)
            raise

    def _record(self, size: int, settled: Settlement) -> None:
        """Adds a settled chunk to the sums and paths (pure arithmetic, then assignment)."""
        paid, charged = settled.payment, settled.penalty

        def penalty(r0: int, r1: int, out: np.ndarray) -> bool:
            out[...] = charged[r0:r1]
            return True

        def payment(r0: int, r1: int, out: np.ndarray, pen: Any) -> None:
            out[...] = paid[r0:r1]

        self._add(size, settled.valuation, settled.cost, settled.flags, penalty, payment)

    def _add(
        self,
        size: int,
        v_true: np.ndarray,
        cost: np.ndarray,
        flags: np.ndarray,
        penalty: Any,
        payment: Any,
        refused: Any = None,
    ) -> None:
        """Adds a chunk to the sums and paths (pure arithmetic, then assignment).

        ``penalty(r0, r1, out)`` writes the penalties of rows r0..r1 to ``out`` and returns
        True, or returns False if they are all +0.0; ``payment(r0, r1, out, penalties)``
        writes the payments of rows r0..r1 to ``out`` (``penalties``: those rows' penalties,
        or 0.0 when they are all +0.0). The per-player
        quantities are taken a block of rows at a time (payments, utility, the day's welfare
        and budget, and the running totals), so that each block is read from memory once and
        worked on in cache. ``refused``, when given, is called (and must raise) if a day's
        welfare or budget is not finite: some valuation or payment is not (a finite sum has
        finite terms), which the caller has not checked before.
        """
        n = v_true.shape[1]
        first = self.day
        points = [int(p) for p in _state.checkpoint_grid(first + size) if p > first]
        rows = [p - first - 1 for p in points]
        block = _block_rows(n)
        sums = self._sums
        utility_sum = _Totals(sums["utility"], n, block)
        valuation_sum = _Totals(sums["valuation"], n, block)
        payment_sum = _Totals(sums["payment"], n, block)
        penalty_sum = _Totals(sums["penalty"], n, block)
        utility = np.empty((size, n)) if self.daily else None
        welfare = np.empty(size)
        budget = np.empty(size)
        at_u: list[np.ndarray] = []
        for r0 in range(0, size, block):
            r1 = min(size, r0 + block)
            m = r1 - r0
            cuts = [r - r0 for r in rows if r0 <= r < r1]
            charged = penalty_sum.slots(m)
            charged_any = penalty(r0, r1, charged)
            v, paid = v_true[r0:r1], payment_sum.slots(m)
            payment(r0, r1, paid, charged if charged_any else 0.0)
            u = np.subtract(v, paid, out=utility_sum.slots(m))
            if utility is not None:
                utility[r0:r1] = u
            np.subtract(v.sum(axis=1), cost[r0:r1], out=welfare[r0:r1])
            np.sum(paid, axis=1, out=budget[r0:r1])
            at_u += utility_sum.add(m, cuts)
            valuation_sum.slots(m)[...] = v
            valuation_sum.add(m)
            payment_sum.add(m)
            if charged_any:
                penalty_sum.add(m, sparse=True)
            else:  # zeros: x + 0.0 is x, but -0.0 + 0.0 is +0.0, whatever their number
                penalty_sum.total = penalty_sum.total + 0.0
        if refused is not None and not (np.isfinite(welfare).all() and np.isfinite(budget).all()):
            refused()
        at_w, end_w = _running(self._welfare, welfare, rows)
        at_b, end_b = _running(self._budget, budget, rows)
        at_p, end_p = _running(self._penalty_days, flags, rows)
        new_paths: dict[str, list[Any]] = {
            "day": points,
            "utility": [u / p for u, p in zip(at_u, points, strict=True)],
            "welfare": [w / p for w, p in zip(at_w, points, strict=True)],
            "budget": [b / p for b, p in zip(at_b, points, strict=True)],
            "penalty": at_p,
        }
        new_sums = {
            "utility": utility_sum.total,
            "valuation": valuation_sum.total,
            "payment": payment_sum.total,
            "penalty": penalty_sum.total,
        }
        last = self._last_penalty
        flagged = flags.any(axis=0)
        if flagged.any():
            last_rows = size - 1 - np.argmax(flags[::-1], axis=0)
            last = np.where(flagged, first + 1 + last_rows, last)
        # commit
        if utility is not None:
            self._daily["utility"].append(utility)
            self._daily["welfare"].append(welfare)
            self._daily["flags"].append(flags.copy())
            self._daily["budget"].append(budget)
        for key, values in new_paths.items():
            self._paths[key].extend(values)
        self._sums = new_sums
        self._welfare = float(end_w)
        self._budget = float(end_b)
        self._penalty_days = end_p
        self._last_penalty = last
        self.day += size

    def result(self) -> SimulationResult:
        """The figures of the days played so far."""
        with self._lock:
            return self._result()

    def _result(self) -> SimulationResult:
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
            scheme=self.scheme.name,
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
        """The whole simulation (market, strategies, random streams, sums) as bytes.

        The format (``docs/file-format.md``) is data only: loading never runs code. Built-in
        strategies are stored with their parameters and state; a strategy of a user-defined
        class (e.g. :class:`~stochmech.strategies.HistoryDependent`, whose policy is code),
        a user-defined game or penalty schedule is recorded by its description and must be
        given again to :meth:`from_bytes`.
        """
        with self._lock:
            return _state.simulation_to_bytes(self)[0]

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        game: Any = None,
        penalty: Any = None,
        strategies: Mapping[int, Strategy] | None = None,
        mechanism: Any = None,
    ) -> Simulation:
        """Restores a simulation from :meth:`to_bytes`.

        Parameters
        ----------
        data : bytes
        game, penalty : optional
            Required when the simulation was saved with a user-defined game or penalty
            schedule (see :meth:`Market.from_bytes <stochmech.mechanism.Market.from_bytes>`).
        strategies : mapping {player: Strategy}, optional
            The strategies of user-defined classes, by player, as they were built (they are
            copied and prepared again; they must declare the saved supertype bid). Each is
            required for a player who played one, and refused for the others.
        mechanism : payment scheme, optional
            Required when the simulation ran under a scheme of a user-defined class (it is
            started again with the saved supertype bids), and otherwise refused.

        Raises
        ------
        ValueError
            For a damaged, truncated, foreign or older file, or inconsistent fields; the
            message names the problem. Nothing in the file is executed.
        """
        supplied = _state.check_supplied(game, penalty, strategies, mechanism)
        return _state.simulation_from_bytes(data, supplied)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the simulation to ``path`` atomically and durably."""
        write_atomically(path, self.to_bytes())

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        game: Any = None,
        penalty: Any = None,
        strategies: Mapping[int, Strategy] | None = None,
        mechanism: Any = None,
    ) -> Simulation:
        """Reads a simulation written by :meth:`save` (see :meth:`from_bytes`)."""
        data = read_file(path, "simulation")
        return cls.from_bytes(
            data, game=game, penalty=penalty, strategies=strategies, mechanism=mechanism
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # in-process copies go through the same safe bytes, handing unstorable objects along
        with self._lock:
            data, supplied = _state.simulation_to_bytes(self)
        return (_state._simulation_from_pickle, (data, supplied))


def simulate(
    game: TwoStageGame,
    true_supertypes: Any,
    strategies: Sequence[Strategy] | None = None,
    days: int = 100_000,
    seed: SeedLike = 0,
    *,
    mechanism: PaymentScheme | None = None,
    chunk: int | None = None,
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
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Seed of every random stream (same seed, same result; a ``Generator`` is consumed:
        four words drawn from it seed the run, see ``stochmech._seeding``).
    mechanism : payment scheme, optional
        Default ``DNBEMechanism(game)``; or :class:`~stochmech.schemes.PostedPrice`,
        :class:`~stochmech.schemes.PayAsBid` or any object following the protocol of
        :mod:`stochmech.schemes`. Runs with the same seed and strategies see the same days
        whatever the scheme.
    chunk : int, optional
        Days processed per batch (memory is O(chunk * n)); default :func:`default_chunk`
        (65,536 days up to 64 players, then 2^22 / n days).
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
    days = integer(days, "days", minimum=1, maximum=1 << 53)
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
            bid = strategies[i].type_bid(int(types[row, i]), h, rngs[i])
            k = h.context.n_types
            if not 0 <= bid < k:
                raise ValueError(
                    f"the bid {bid!r} of player {i} ({strategies[i].describe()}) on day "
                    f"{h.day + 1} is outside the type space 0..{k - 1}"
                )
            bids[row, i] = bid
        day_state = None if states is None else states[row : row + 1]
        o2 = game.second_stage(o1, bids[row : row + 1], day_state)[0]
        state_row = None if states is None else states[row]
        for i in dependent:
            h = histories[i]
            h.own_types.append(int(types[row, i]))
            h.own_bids.append(int(bids[row, i]))
            h.outcomes.append(o2)
            h.states.append(state_row)
