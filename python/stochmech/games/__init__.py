"""Two-stage stochastic games: the generic interface and concrete games."""

from stochmech.games.base import TwoStageGame
from stochmech.games.finite import Estimate, FiniteGame

__all__ = ["Estimate", "FiniteGame", "TwoStageGame"]
