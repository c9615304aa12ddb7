"""The generic interface of a two-stage stochastic game (first paper, Section II).

A game gives each of its ``n`` players its own finite public type space
Delta_i = {0, ..., K_i-1} (each type index may carry a numeric value of that player's own),
valuations ``v_i(type, o1, o2[, omega])``, the planner's cost ``c(o1, o2[, omega])`` and the
welfare-maximizing decision rules g1* and g2*. An optional exogenous public state omega, IID
across days, is revealed to the planner in the second stage (docs/modelling.md, "The public
state omega"); every expectation is then also over omega.

Conventions shared by every game
--------------------------------
* ``supertypes`` is an (n, K) float array of pmfs, K = max K_i, row i a pmf over Delta_i padded
  with zeros beyond K_i (validated by the caller; see :attr:`TwoStageGame.type_counts`).
* A batch of L days is processed at once: ``types`` is an (L, n) integer array with
  0 <= types[l, i] < K_i, ``states`` is
  whatever :meth:`TwoStageGame.sample_states` returns for L days (an array with leading
  dimension L) or ``None`` for games without exogenous state.
* ``o1`` is whatever :meth:`first_stage` returns; an ``o2`` batch is an array whose leading
  dimension is L, with a game-specific trailing shape.
* g2* maximizes welfare pointwise given o1, so it depends on the supertype bids only through
  o1: ``second_stage(o1, types, states)``.
* Welfare is sum of valuations minus cost; payments are what a player pays the planner.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class TwoStageGame(ABC):
    """Abstract two-stage stochastic game; see the module docstring for conventions."""

    #: number of players n
    n_players: int
    #: K = max_i K_i, the width of padded supertype arrays (K_i for every player when equal)
    n_types: int
    #: optional numeric value of each type index shared by every player, shape (K,), or None
    #: (None too when the players' type spaces differ: see :meth:`values_of`)
    type_values: np.ndarray | None = None
    #: per-player type counts K_i, set by games whose players' type spaces differ
    _type_counts: np.ndarray | None = None
    #: per-player type values, set by games whose players' type spaces differ
    _player_values: tuple[np.ndarray, ...] | None = None

    @property
    def type_counts(self) -> np.ndarray:
        """K_i, the number of types of each player, shape (n,) int64."""
        if self._type_counts is None:
            return np.full(self.n_players, self.n_types, dtype=np.int64)
        return self._type_counts

    @property
    def ragged(self) -> bool:
        """True when the players' type counts differ."""
        counts = self.type_counts
        return bool(np.any(counts != counts[0]))

    def values_of(self, player: int) -> np.ndarray | None:
        """The numeric values of player ``player``'s own types, shape (K_i,), or None."""
        if self._player_values is not None:
            return self._player_values[int(player)]
        if self.type_values is None:
            return None
        return self.type_values[: int(self.type_counts[int(player)])]

    # ----- decision rules and per-day quantities (vectorized over days) -----
    @abstractmethod
    def first_stage(self, supertypes: np.ndarray) -> Any:
        """g1*(theta): the first-stage outcome that maximizes expected welfare."""

    @abstractmethod
    def second_stage(self, o1: Any, types: np.ndarray, states: Any = None) -> np.ndarray:
        """g2*: welfare-maximizing recourse for each day of a batch; leading dimension L."""

    @abstractmethod
    def valuations(
        self, types: np.ndarray, o1: Any, o2: np.ndarray, states: Any = None
    ) -> np.ndarray:
        """v_i(types[l, i], o1, o2[l]) for every day l and player i: an (L, n) float array."""

    @abstractmethod
    def cost(self, o1: Any, o2: np.ndarray, states: Any = None) -> np.ndarray:
        """Planner's cost c(o1, o2[l]) for every day: an (L,) float array."""

    def _day_terms(
        self,
        o1: Any,
        types: np.ndarray,
        bids: np.ndarray,
        states: Any,
        differ: Any = None,
        out: Any = None,
    ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
        """``(o2, valuations at the bids, valuations at the types, cost)`` of a batch of days
        whose types and bids are in range (the simulation engine drew or checked them) and
        whose states come from :meth:`sample_states`. ``differ`` lists the players whose
        bids may differ from their types (None: any); ``out``, when given, holds arrays for
        o2 and the two valuations that a game may write to. A game may compute these faster;
        it must give exactly the numbers of :meth:`second_stage`, :meth:`valuations` and
        :meth:`cost`, which this default calls."""
        o2 = self.second_stage(o1, bids, states)
        v_bid = np.asarray(self.valuations(bids, o1, o2, states), dtype=float)
        v_true = np.asarray(self.valuations(types, o1, o2, states), dtype=float)
        cost = np.asarray(self.cost(o1, o2, states), dtype=float)
        return o2, v_bid, v_true, cost

    def sample_states(self, rng: np.random.Generator, size: int) -> Any:
        """Draw ``size`` IID exogenous states; ``None`` for games without a state."""
        return None

    def state_support(self) -> tuple[Any, np.ndarray] | None:
        """The finite law of omega as ``(states, probs)``, for exact enumeration; optional.

        ``states`` has the layout of :meth:`sample_states` for as many days as support points
        (leading dimension = number of states), ``probs`` their probabilities (shape (S,)).
        ``None`` (the default) for games without a state or whose state law is not finite.
        """
        return None

    # ----- expectations under supertypes (the mechanism's payments need these) -----
    @abstractmethod
    def optimal_welfare(self, supertypes: np.ndarray) -> float:
        """W*(theta): optimal expected welfare (eq. 1)."""

    @abstractmethod
    def optimal_welfare_without(self, supertypes: np.ndarray, player: int) -> float:
        """W*(theta_-i): the same game with ``player`` removed (valuation dropped)."""

    @abstractmethod
    def expected_valuations(self, supertypes: np.ndarray) -> np.ndarray:
        """nu_i(theta), shape (n,): each player's expected valuation when the bids are theta.

        nu_i(theta) = E_{delta~theta}[v_i(delta_i, g1*(theta), g2*(theta, delta))].
        """

    @abstractmethod
    def deviation_payoffs(self, supertype_bids: np.ndarray, player: int) -> np.ndarray:
        """C(t, s) = E_{delta_-i ~ bids_-i}[v_i(t, o1, g2*(o1, (s, delta_-i)))], shape (K_i, K_i).

        ``t`` is player i's true type and ``s`` its type bid; o1 = g1*(supertype_bids).
        The transport LP of the audit (docs/modelling.md, "The best stationary deviation")
        maximizes over couplings of this.
        """
