"""The generic interface of a two-stage stochastic game (first paper, Section II).

A game fixes a finite public type space Delta = {0, ..., K-1} (each type index may carry a
numeric value), ``n`` players, valuations ``v_i(type, o1, o2[, omega])``, the planner's cost
``c(o1, o2[, omega])`` and the welfare-maximizing decision rules g1* and g2*. An optional
exogenous public state omega, IID across days, is revealed to the planner in the second stage
(docs/modelling.md, "The public state omega"); every expectation is then also over omega.

Conventions shared by every game
--------------------------------
* ``supertypes`` is an (n, K) float array of pmfs over Delta (validated by the caller).
* A batch of L days is processed at once: ``types`` is an (L, n) integer array, ``states`` is
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
    #: number of types K (size of the type space Delta)
    n_types: int
    #: optional numeric value of each type index, shape (K,), or None
    type_values: np.ndarray | None = None

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
        """C(t, s) = E_{delta_-i ~ bids_-i}[v_i(t, o1, g2*(o1, (s, delta_-i)))], shape (K, K).

        ``t`` is player i's true type and ``s`` its type bid; o1 = g1*(supertype_bids).
        The transport LP of the audit (docs/modelling.md, "The best stationary deviation")
        maximizes over couplings of this.
        """
