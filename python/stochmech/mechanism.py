"""The DNBE mechanism of Section III and its daily operation by a market operator.

Payments are what a player PAYS the planner (negative: money received):

* first stage, eq. (5): ``p_i^F = W*(theta_hat_-i) - E_{delta~theta_hat}[sum_{j!=i} v_j - c]``,
  which equals ``W*(theta_hat_-i) - (W*(theta_hat) - nu_i(theta_hat))``;
* second stage, eq. (14): ``p_i,l^S = v_i(delta_hat_i(l), o1, o2(l)) - nu_i(theta_hat)
  + J_p(l) 1{E_i(l)}`` with the penalty event of the :class:`~stochmech.ledger.BidLedger`;
* total, eq. (15): ``p_i,l = p_i^F + p_i,l^S``.

A :class:`Market` is what an operator runs: opened once with the supertype bids (it fixes o1
and the first-stage payments), then cleared day by day, or a batch of days at a time, with the
type bids (and the public state omega, for games that have one).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from stochmech import _state
from stochmech._persist import read_file, write_atomically
from stochmech._ragged import check_bids_in_range, pad_pmfs, ragged_rows
from stochmech._validate import finite, penalty_values
from stochmech._window import DEFAULT_GAMMA
from stochmech.games.base import TwoStageGame
from stochmech.ledger import BidLedger, LedgerRecord, PenaltySchedule, PowerPenalty

if TYPE_CHECKING:
    from stochmech.schemes import Settlement

__all__ = ["Clearing", "DNBEMechanism", "Market", "Opening"]


def check_supertypes(game: TwoStageGame, supertypes: Any) -> np.ndarray:
    """Validates supertype bids for ``game``; returns the padded (n, K) float64 copy.

    ``supertypes`` is an (n, K) array of pmfs (K = max K_i; zeros beyond each player's own
    K_i) or a sequence of n 1-D pmfs, row i of length K_i.
    """
    return pad_pmfs(supertypes, game.type_counts, "supertype bids")


@dataclass(frozen=True)
class Opening:
    """The first stage of a market: outcome, expectations and first-stage payments.

    Attributes
    ----------
    o1 :
        First-stage outcome g1*(theta_hat).
    welfare : float
        W*(theta_hat), optimal expected welfare under the bids.
    welfare_without : (n,) float
        W*(theta_hat_-i) for each player i.
    expected_valuations : (n,) float
        nu_i(theta_hat).
    first_stage_payments : (n,) float
        p_i^F of eq. (5).
    """

    o1: Any
    welfare: float
    welfare_without: np.ndarray
    expected_valuations: np.ndarray
    first_stage_payments: np.ndarray


@dataclass(frozen=True)
class Clearing:
    """The clearing of a batch of L days for n players (payments are what players pay).

    Attributes
    ----------
    days : (L,) int64
        Day numbers (1-based, continuing).
    o2 : array, leading dimension L
        Second-stage outcomes g2*(o1, delta_hat(l), omega(l)).
    first_stage : (L, n)
        p_i^F (the same every day).
    valuation_term : (L, n)
        ``v_i(delta_hat_i(l), o1, o2(l)) - nu_i`` of eq. (14).
    penalty : (L, n)
        ``J_p(l) 1{E_i(l)}``.
    flags : (L, n) bool
        The penalty events E_i(l).
    """

    days: np.ndarray
    o2: np.ndarray
    first_stage: np.ndarray
    valuation_term: np.ndarray
    penalty: np.ndarray
    flags: np.ndarray

    @property
    def second_stage(self) -> np.ndarray:
        """p_i,l^S of eq. (14): valuation term plus penalty."""
        return self.valuation_term + self.penalty

    @property
    def total(self) -> np.ndarray:
        """p_i,l of eq. (15)."""
        return self.first_stage + self.second_stage


class DNBEMechanism:
    """The mechanism of Section III for a two-stage repeated stochastic game.

    Parameters
    ----------
    game : TwoStageGame
        The game (decision rules g1*, g2*, valuations, cost, expectations).
    gamma : float, default 1.0
        Window exponent of eq. (11) (> 0).
    penalty : PowerPenalty or callable, optional
        Penalty schedule J_p(l) of eq. (12); default ``l**1.5``.
    first_stage_payment : bool, default True
        Charge the first-stage VCG payment of eq. (5).
    penalize : bool, default True
        Charge the penalty J_p(l) on the days E_i(l) occurs. Switching either part off gives
        the broken mechanisms with which the audit shows that each part is needed.

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> mech = DNBEMechanism(game)
    >>> mech.first_stage_payments([[0.5, 0.5], [0.5, 0.5]])
    array([0., 0.])
    """

    def __init__(
        self,
        game: TwoStageGame,
        *,
        gamma: float = DEFAULT_GAMMA,
        penalty: PowerPenalty | PenaltySchedule | None = None,
        first_stage_payment: bool = True,
        penalize: bool = True,
    ) -> None:
        if not isinstance(game, TwoStageGame):
            raise ValueError(f"game must be a TwoStageGame, got {type(game).__name__}")
        gamma = finite(gamma, "gamma")
        if not gamma > 0:
            raise ValueError(f"gamma must be a finite number > 0 (eq. 11), got {gamma!r}")
        self.game = game
        self.gamma = gamma
        self.penalty = PowerPenalty() if penalty is None else penalty
        if not callable(self.penalty):
            raise ValueError(f"penalty must be a PowerPenalty or a callable, got {penalty!r}")
        for name, flag in (("first_stage_payment", first_stage_payment), ("penalize", penalize)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        self.first_stage_payment = bool(first_stage_payment)
        self.penalize = bool(penalize)

    def __repr__(self) -> str:
        return (
            f"DNBEMechanism({self.game!r}, gamma={self.gamma}, penalty={self.penalty!r}, "
            f"first_stage_payment={self.first_stage_payment}, penalize={self.penalize})"
        )

    def opening(self, supertype_bids: Any) -> Opening:
        """First-stage outcome, expectations and payments (eq. 5) for the supertype bids."""
        theta = check_supertypes(self.game, supertype_bids)
        game = self.game
        welfare = game.optimal_welfare(theta)
        without = np.array(
            [game.optimal_welfare_without(theta, i) for i in range(game.n_players)], dtype=float
        )
        nu = np.asarray(game.expected_valuations(theta), dtype=float)
        if self.first_stage_payment:
            pay = without - (float(welfare) - nu)
        else:
            pay = np.zeros(game.n_players)
        for what, value in (
            ("optimal expected welfare W*", welfare),
            ("welfare without a player W*(theta_-i)", without),
            ("expected valuation nu_i", nu),
            ("first-stage payment", pay),
        ):
            if not np.all(np.isfinite(np.asarray(value, dtype=float))):
                raise ValueError(
                    f"the {what} under these supertype bids is not finite ({value!r}): the "
                    "game's valuations or costs are too large"
                )
        return Opening(
            o1=game.first_stage(theta),
            welfare=float(welfare),
            welfare_without=without,
            expected_valuations=nu,
            first_stage_payments=pay,
        )

    def first_stage_payments(self, supertype_bids: Any) -> np.ndarray:
        """p_i^F of eq. (5) for each player."""
        return self.opening(supertype_bids).first_stage_payments

    def open(self, supertype_bids: Any) -> Market:
        """Opens a market with the day-1 supertype bids (see :class:`Market`)."""
        return Market(self, supertype_bids)

    # ----- the payment-scheme protocol of the simulation engine (stochmech.schemes) -----
    name = "mechanism"

    def start(self, game: TwoStageGame, supertype_bids: Any) -> Market:
        """The scheme protocol: opens a market on ``game`` (which must be this mechanism's)."""
        if game is not self.game:
            raise ValueError("mechanism was built for a different game")
        return self.open(supertype_bids)

    def long_run_utility(
        self,
        game: TwoStageGame,
        true_supertype: np.ndarray,
        supertype_bids: np.ndarray,
        player: int,
        kernel: np.ndarray,
    ) -> float:
        """Exact long-run utility of ``player`` declaring ``supertype_bids[player]`` and
        reporting by ``kernel`` (the others bid ``supertype_bids`` truthfully): the truthful
        utility plus :func:`stochmech.audit.stationary_gain` (minus infinity when the reports
        do not follow the declaration and penalties are on)."""
        from stochmech.audit import stationary_gain

        bids = check_supertypes(game, supertype_bids)
        truth = bids.copy()
        own = np.asarray(true_supertype, dtype=float)
        truth[player] = 0.0
        truth[player, : own.size] = own
        if self.first_stage_payment:
            utility = float(game.optimal_welfare(truth)) - float(
                game.optimal_welfare_without(truth, player)
            )
        else:
            utility = float(np.asarray(game.expected_valuations(truth))[player])
        gain = stationary_gain(game, player, true_supertype, bids, kernel, mechanism=self)
        return utility + gain


class Market:
    """A running market: the operator's view of the mechanism, day after day.

    Parameters
    ----------
    mechanism : DNBEMechanism
    supertype_bids : array_like, shape (n, K), or sequence of n pmfs of lengths K_i
        The supertypes the players declared on day 1.

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> market = DNBEMechanism(FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])).open([[.5, .5], [.5, .5]])
    >>> day = market.clear([1, 0])
    >>> day.o2, day.total
    (array([1]), array([[ 1., -1.]]))
    >>> market.day
    1
    """

    def __init__(self, mechanism: DNBEMechanism, supertype_bids: Any) -> None:
        self.mechanism = mechanism
        self.supertype_bids = check_supertypes(mechanism.game, supertype_bids)
        self.opening = mechanism.opening(self.supertype_bids)
        game = mechanism.game
        # each player's own K_i types: the ledger keeps O(sum K_i) marginal statistics
        declared = (
            ragged_rows(self.supertype_bids, game.type_counts)
            if game.ragged
            else self.supertype_bids
        )
        self.ledger = BidLedger(declared, gamma=mechanism.gamma, penalty=mechanism.penalty)
        self._lock = threading.RLock()

    @property
    def game(self) -> TwoStageGame:
        return self.mechanism.game

    @property
    def day(self) -> int:
        """Days cleared so far."""
        with self._lock:
            return self.ledger.day

    @property
    def o1(self) -> Any:
        return self.opening.o1

    def clear(self, type_bids: Any, states: Any = None, *, detail: bool = False) -> Clearing:
        """Clears one day (``type_bids`` of shape (n,)) or a batch of days ((L, n)).

        ``states`` is the public exogenous state of each day, for games that have one. The
        batch is validated in full first: on a bad bid (the error names the player, the day
        and the value) nothing changes. Calls from several threads are serialized.
        """
        with self._lock:
            return self._clear(type_bids, states, detail)

    def _clear(self, type_bids: Any, states: Any, detail: bool) -> Clearing:
        ledger = self.ledger
        bids = ledger._as_bids(type_bids)
        # each bid in its player's own range; the ledger validates the rest before recording
        check_bids_in_range(bids, self.game.type_counts, ledger.day + 1)
        game = self.game
        o2 = game.second_stage(self.o1, bids, states)
        v_bid = np.asarray(game.valuations(bids, self.o1, o2, states), dtype=float)
        bad = np.argwhere(~np.isfinite(v_bid))
        if bad.size:
            row, i = (int(x) for x in bad[0])
            raise ValueError(
                f"the valuation of player {i} on day {self.day + row + 1} is "
                f"{float(v_bid[row, i])!r}; nothing was recorded"
            )
        record = ledger.record(bids, detail=detail)
        penalty = record.penalty if self.mechanism.penalize else np.zeros_like(record.penalty)
        first = np.broadcast_to(self.opening.first_stage_payments, bids.shape)
        return Clearing(
            days=record.days,
            o2=o2,
            first_stage=first,
            valuation_term=v_bid - self.opening.expected_valuations,
            penalty=penalty,
            flags=record.flags,
        )

    def settle(self, types: Any, bids: Any, states: Any = None) -> Settlement:
        """The scheme protocol: clears a batch of days and values it at the TRUE types.

        All or nothing: the bids are validated and every quantity computed before the ledger
        records the days.
        """
        with self._lock:
            return self._settle(types, bids, states)

    def _settle_drawn(
        self,
        types: np.ndarray,
        bids: np.ndarray,
        states: Any,
        differ: np.ndarray | None,
        out: tuple[np.ndarray, ...] | None = None,
    ) -> Settlement:
        """:meth:`settle` for a chunk the simulation engine drew: ``types`` and ``bids`` are
        (L, n) int64 arrays in every player's range (the engine drew or checked them),
        ``states`` came from the game's ``sample_states``, and ``bids[:, i]`` is
        ``types[:, i]`` for every player ``i`` not listed in ``differ`` (None: any may
        differ). The same numbers as :meth:`settle`, without checking the inputs again
        (the ledger still checks the bids before it records them). ``out``: arrays for o2,
        the valuations at the bids and at the types, and the payments (which the game may
        use)."""
        with self._lock:
            terms = self._terms_drawn(types, bids, states, differ, None if out is None else out[:3])
            payment = None if out is None else out[3]
            return self._settlement(self._record_drawn(bids), *terms, out=payment)

    # the three steps of _settle_drawn, which the engine may also run apart: the day's terms
    # (pure), the ledger's record (the only change of state), the payments (pure)
    def _terms_drawn(
        self,
        types: np.ndarray,
        bids: np.ndarray,
        states: Any,
        differ: np.ndarray | None,
        out: tuple[np.ndarray, ...] | None = None,
    ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
        return self.game._day_terms(self.o1, types, bids, states, differ, out)

    def _record_drawn(self, bids: np.ndarray) -> LedgerRecord:
        with self._lock:
            return self.ledger.record(bids)

    def _settle(self, types: Any, bids: Any, states: Any) -> Settlement:
        ledger = self.ledger
        ledger.check(bids)
        bids = np.asarray(bids, dtype=np.int64)
        game = self.game
        o1 = self.o1
        o2 = game.second_stage(o1, bids, states)
        v_bid = np.asarray(game.valuations(bids, o1, o2, states), dtype=float)
        v_true = np.asarray(game.valuations(types, o1, o2, states), dtype=float)
        cost = np.asarray(game.cost(o1, o2, states), dtype=float)
        return self._settlement(ledger.record(bids), o2, v_bid, v_true, cost)

    def _settlement(
        self,
        record: LedgerRecord,
        o2: Any,
        v_bid: np.ndarray,
        v_true: np.ndarray,
        cost: np.ndarray,
        out: np.ndarray | None = None,
    ) -> Settlement:
        """The days' settlement: eq. (15) with the penalties of the ledger's ``record``
        (the payments written to ``out`` when given)."""
        from stochmech.schemes import Settlement

        penalty = self._penalty(record)
        payment = np.empty(v_bid.shape) if out is None else out
        block = max(1, (1 << 17) // max(1, v_bid.shape[1] if v_bid.ndim == 2 else 1))
        for r0 in range(0, v_bid.shape[0], block):
            r1 = min(v_bid.shape[0], r0 + block)
            self._payments(v_bid[r0:r1], penalty[r0:r1], payment[r0:r1])
        return Settlement(
            o2=o2,
            valuation=v_true,
            payment=payment,
            penalty=penalty,
            flags=record.flags,
            cost=cost,
        )

    def _penalty(self, record: LedgerRecord) -> np.ndarray:
        """The penalties of the ledger's ``record`` (zeros when penalties are off)."""
        return record.penalty if self.mechanism.penalize else np.zeros_like(record.penalty)

    def _payments(self, v_bid: np.ndarray, penalty: np.ndarray | float, out: np.ndarray) -> None:
        """Eq. (15) on some rows into ``out``: the same additions, in the same order, as
        :attr:`Clearing.total`, first + ((v_bid - nu) + penalty), in place (``penalty`` 0.0:
        rows without penalties, whose zeros add as one)."""
        np.subtract(v_bid, self.opening.expected_valuations, out=out)
        out += penalty
        out += self.opening.first_stage_payments

    def _penalty_rows(self, record: LedgerRecord) -> Any:
        """``rows(r0, r1, out) -> bool``: writes the penalties of the record's days r0..r1
        to ``out`` and returns True, or returns False when they are all (+0.0) zeros. The
        same numbers as :attr:`LedgerRecord.penalty` without building the (L, n) table: for a
        :class:`PowerPenalty` the schedule J_p(l) is computed again from the record's days
        (as the ledger computed it)."""
        flags = record.flags
        schedule = self.ledger.penalty
        values = penalty_values(schedule, record.days) if self._penalize_power else None

        def rows(r0: int, r1: int, out: np.ndarray) -> bool:
            if not self.mechanism.penalize:
                return False
            if values is None:  # a schedule of the user's: not called again
                out[...] = record.penalty[r0:r1]
                return True
            f = flags[r0:r1]
            if not f.any():
                return False
            out[...] = 0.0
            np.copyto(out, values[r0:r1, None], where=f)  # np.where(flags, J_p, 0.0)
            return True

        return rows

    @property
    def _penalize_power(self) -> bool:
        """Penalties on, with the ledger's schedule a :class:`PowerPenalty`."""
        return self.mechanism.penalize and isinstance(self.ledger.penalty, PowerPenalty)

    # ----- persistence -----
    def to_bytes(self) -> bytes:
        """The running market (game, mechanism, bids, opening, ledger) as bytes.

        The format (``docs/file-format.md``) is data only: loading never runs code. A game of
        a user-defined class or a penalty callable is recorded by its description and must be
        given again to :meth:`from_bytes`.
        """
        with self._lock:
            return _state.market_to_bytes(self)[0]

    @classmethod
    def from_bytes(cls, data: bytes, *, game: Any = None, penalty: Any = None) -> Market:
        """Restores a market from :meth:`to_bytes`.

        Parameters
        ----------
        data : bytes
        game : TwoStageGame, optional
            Required when the market was saved with a game of a user-defined class (the file
            cannot store code), and otherwise refused.
        penalty : callable, optional
            The same for a user-defined penalty schedule.

        Raises
        ------
        ValueError
            For a damaged, truncated, foreign or older file, or fields that are inconsistent
            with each other (e.g. a ledger that does not match the supertype bids); the
            message names the problem. Nothing in the file is executed.
        """
        return _state.market_from_bytes(data, _state.check_supplied(game, penalty, None))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the market to ``path`` atomically and durably (see ``docs/file-format.md``)."""
        write_atomically(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, game: Any = None, penalty: Any = None) -> Market:
        """Reads a market written by :meth:`save` (see :meth:`from_bytes`)."""
        return cls.from_bytes(read_file(path, "market"), game=game, penalty=penalty)

    def __reduce__(self) -> tuple[Any, ...]:
        # in-process copies go through the same safe bytes, handing unstorable objects along
        with self._lock:
            data, supplied = _state.market_to_bytes(self)
        return (_state._market_from_pickle, (data, supplied))

    def __repr__(self) -> str:
        return f"Market(day={self.day}, o1={self.o1!r}, game={self.game!r})"
