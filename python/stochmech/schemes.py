"""Payment schemes: what the simulation engine runs on a day stream.

:class:`~stochmech.simulation.Simulation` owns the day stream (the true types, the public
states, the strategies' sealed bids, all drawn from streams spawned from one seed) and hands
each batch of days to a payment scheme, which decides the outcome and the payments. Three
schemes ship with the package:

* the DNBE mechanism (:class:`~stochmech.mechanism.DNBEMechanism`, the default);
* :class:`PostedPrice`: every player responds to a posted price at its true type (a fixed price,
  or the price the operator discovers from the declared supertypes);
* :class:`PayAsBid`: the welfare-maximizing outcome for the bids, each player paid its bid
  valuation (in a cost market: its reported cost).

A scheme is any object with a ``name`` and a method ``start(game, supertype_bids)`` that returns
a *run*: an object with the first-stage outcome ``o1``, the ``opening`` (an
:class:`~stochmech.mechanism.Opening` or ``None``) and a method
``settle(types, bids, states) -> Settlement`` for a batch of days. ``settle`` must be
all-or-nothing: validate and compute first, change the run's own state (if it keeps any) last,
so that an error leaves it as it was. The engine checks the settlement's shapes and values
before it changes anything of its own. See docs/schemes.md for a worked example.

Examples
--------
>>> from stochmech.games.finite import FiniteGame
>>> from stochmech.simulation import simulate
>>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
>>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
>>> theta = [[0.5, 0.5], [0.5, 0.5]]
>>> r = simulate(game, theta, days=1_000, seed=0, mechanism=PayAsBid())
>>> r.scheme, r.average_utility.tolist()
('pay as bid', [0.0, 0.0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from stochmech.games.base import TwoStageGame
from stochmech.mechanism import Opening

__all__ = [
    "PayAsBid",
    "PaymentScheme",
    "PostedPrice",
    "PostedPriceRun",
    "SchemeRun",
    "Settlement",
    "check_settlement",
]


@dataclass(frozen=True)
class Settlement:
    """What a scheme decides for a batch of L days (n players).

    Attributes
    ----------
    o2 : array, leading dimension L
        The second-stage outcome of each day.
    valuation : (L, n) float
        Each player's valuation of the day's outcome at its TRUE type.
    payment : (L, n) float
        What each player pays (negative: receives), penalties included.
    penalty : (L, n) float
        The part of ``payment`` that is a penalty (zeros for schemes without one).
    flags : (L, n) bool
        The days on which a player was penalized.
    cost : (L,) float
        The planner's cost of each day.
    """

    o2: Any
    valuation: np.ndarray
    payment: np.ndarray
    penalty: np.ndarray
    flags: np.ndarray
    cost: np.ndarray


@runtime_checkable
class SchemeRun(Protocol):
    """A scheme running on one game after the day-1 declarations (see the module docstring)."""

    @property
    def o1(self) -> Any: ...

    @property
    def opening(self) -> Opening: ...

    def settle(self, types: np.ndarray, bids: np.ndarray, states: Any) -> Settlement: ...


@runtime_checkable
class PaymentScheme(Protocol):
    """A payment scheme: ``name`` and ``start(game, supertype_bids) -> SchemeRun``."""

    @property
    def name(self) -> str: ...

    def start(self, game: TwoStageGame, supertype_bids: np.ndarray) -> SchemeRun: ...


def check_settlement(s: Any, days: int, n: int) -> Settlement:
    """Validates a scheme's output for ``days`` days and ``n`` players (shapes, finite values).

    Raises ``ValueError`` naming the field and the first bad day and player.
    """
    if not isinstance(s, Settlement):
        raise ValueError(f"a scheme's settle() must return a Settlement, got {type(s).__name__}")
    fields = {"valuation": (days, n), "payment": (days, n), "penalty": (days, n)}
    for name, shape in fields.items():
        a = getattr(s, name)
        if not isinstance(a, np.ndarray) or a.shape != shape:
            got = getattr(a, "shape", type(a).__name__)
            raise ValueError(f"settlement {name} must be a float array of shape {shape}, got {got}")
        # a finite sum has no NaN nor infinity among its terms (one pass, nothing allocated);
        # only a sum that is not finite needs the search for the first bad value
        with np.errstate(over="ignore", invalid="ignore"):
            total = a.sum()
        if not np.isfinite(total) and not np.all(np.isfinite(a)):
            day, i = (int(x) for x in np.argwhere(~np.isfinite(a))[0])
            raise ValueError(
                f"settlement {name} of player {i} on batch day {day} is {float(a[day, i])!r}; "
                "must be finite"
            )
    if not isinstance(s.flags, np.ndarray) or s.flags.shape != (days, n):
        raise ValueError(f"settlement flags must be a bool array of shape {(days, n)}")
    if not isinstance(s.cost, np.ndarray) or s.cost.shape != (days,):
        raise ValueError(f"settlement cost must be a float array of shape ({days},)")
    if not np.all(np.isfinite(s.cost)):
        day = int(np.flatnonzero(~np.isfinite(s.cost))[0])
        raise ValueError(f"settlement cost on batch day {day} is {float(s.cost[day])!r}")
    return s


def _zeros_opening(game: TwoStageGame, o1: Any) -> Opening:
    n = game.n_players
    nan = np.full(n, math.nan)
    return Opening(
        o1=o1,
        welfare=math.nan,
        welfare_without=nan,
        expected_valuations=nan,
        first_stage_payments=np.zeros(n),
    )


# ---------------------------------------------------------------------------------------------
# pay as bid
# ---------------------------------------------------------------------------------------------
class PayAsBid:
    """Pay as bid: the welfare-maximizing outcome for the bids; each player pays its bid
    valuation ``v_i(bid_i, o1, o2)`` (in a cost market: it receives its reported cost).

    The declarations set o1 = g1*(declarations) and nothing else; there are no penalties.
    Every game defines it.

    Examples
    --------
    >>> PayAsBid().name
    'pay as bid'
    """

    name = "pay as bid"

    def start(self, game: TwoStageGame, supertype_bids: np.ndarray) -> _PayAsBidRun:
        return _PayAsBidRun(game, game.first_stage(np.asarray(supertype_bids, dtype=float)))

    def long_run_utility(
        self,
        game: TwoStageGame,
        true_supertype: np.ndarray,
        supertype_bids: np.ndarray,
        player: int,
        kernel: np.ndarray,
    ) -> float:
        """Exact long-run utility of ``player`` reporting by ``kernel`` (others truthful):
        ``sum_{t,s} pi(t, s) (C(t, s) - C(s, s))`` with pi = theta_i(t) kernel(t, s) and C the
        game's deviation payoffs."""
        c = np.asarray(game.deviation_payoffs(supertype_bids, player), dtype=float)
        pi = np.asarray(true_supertype, dtype=float)[:, None] * kernel
        return float((pi * (c - np.diag(c)[None, :])).sum())

    def __repr__(self) -> str:
        return "PayAsBid()"


class _PayAsBidRun:
    def __init__(self, game: TwoStageGame, o1: Any) -> None:
        self.game = game
        self.o1 = o1
        self.opening = _zeros_opening(game, o1)

    def settle(self, types: np.ndarray, bids: np.ndarray, states: Any) -> Settlement:
        game = self.game
        o2 = game.second_stage(self.o1, bids, states)
        v_true = np.asarray(game.valuations(types, self.o1, o2, states), dtype=float)
        v_bid = np.asarray(game.valuations(bids, self.o1, o2, states), dtype=float)
        zeros = np.zeros_like(v_true)
        return Settlement(
            o2=o2,
            valuation=v_true,
            payment=v_bid,
            penalty=zeros,
            flags=np.zeros(v_true.shape, dtype=bool),
            cost=np.asarray(game.cost(self.o1, o2, states), dtype=float),
        )


# ---------------------------------------------------------------------------------------------
# posted price
# ---------------------------------------------------------------------------------------------
class PostedPrice:
    """A posted price: every player responds to the price at its TRUE type and is paid by it.

    Parameters
    ----------
    price : float, optional
        The price; by default the price the operator discovers from the declared supertypes
        (``game.posted_price(supertype_bids)``: in the demand-response market, the best posted
        price of the market in which the declarations are the true laws).

    The game must define ``posted_price(supertype_bids)`` (for the default price) and
    ``price_response(price, types, states) -> (o2, received)`` (the outcome when every player
    responds to the price, and what each receives); the demand-response market does. The
    daily reports play no role.

    Examples
    --------
    >>> PostedPrice(0.5).name, PostedPrice().name
    ('posted price 0.5', 'posted price')
    """

    def __init__(self, price: float | None = None) -> None:
        if price is not None:
            if isinstance(price, bool) or not isinstance(price, (int, float, np.number)):
                raise ValueError(f"price must be a finite number, got {price!r}")
            price = float(price)
            if not math.isfinite(price):
                raise ValueError(f"price must be a finite number, got {price!r}")
        self.price = price
        self.name = "posted price" if price is None else f"posted price {price:g}"

    def price_for(self, game: TwoStageGame, supertype_bids: np.ndarray) -> float:
        """The price posted after the declarations ``supertype_bids``."""
        if self.price is not None:
            return self.price
        discover = getattr(game, "posted_price", None)
        if discover is None:
            raise ValueError(
                f"{type(game).__name__} does not define posted_price(supertype_bids); give "
                "PostedPrice a price"
            )
        return float(discover(supertype_bids))

    def start(self, game: TwoStageGame, supertype_bids: np.ndarray) -> PostedPriceRun:
        if getattr(game, "price_response", None) is None:
            raise ValueError(
                f"{type(game).__name__} does not define price_response(price, types, states): "
                "no posted price on this game"
            )
        price = self.price_for(game, supertype_bids)
        return PostedPriceRun(game, price, game.first_stage(supertype_bids))

    def long_run_utility(
        self,
        game: TwoStageGame,
        true_supertype: np.ndarray,
        supertype_bids: np.ndarray,
        player: int,
        kernel: np.ndarray,
    ) -> float:
        """Exact long-run utility of ``player`` (its reports do not matter, only the price its
        declaration helps discover): ``game.price_utility(price, player, true_supertype)``."""
        price = self.price_for(game, supertype_bids)
        return float(game.price_utility(price, player, true_supertype))  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return "PostedPrice()" if self.price is None else f"PostedPrice({self.price!r})"


class PostedPriceRun:
    """The running state of a :class:`PostedPrice` scheme (what its ``start`` returns): the
    game, the posted price, the first-stage outcome and the zero opening payments."""

    def __init__(self, game: TwoStageGame, price: float, o1: Any) -> None:
        self.game = game
        self.price = price
        self.o1 = o1
        self.opening = _zeros_opening(game, o1)

    def settle(self, types: np.ndarray, bids: np.ndarray, states: Any) -> Settlement:
        game = self.game
        o2, received = game.price_response(self.price, types, states)  # type: ignore[attr-defined]
        v_true = np.asarray(game.valuations(types, self.o1, o2, states), dtype=float)
        return Settlement(
            o2=o2,
            valuation=v_true,
            payment=-np.asarray(received, dtype=float),
            penalty=np.zeros_like(v_true),
            flags=np.zeros(v_true.shape, dtype=bool),
            cost=np.asarray(game.cost(self.o1, o2, states), dtype=float),
        )
