"""Two-stage stochastic games: the generic interface and concrete games."""

from stochmech.games.base import TwoStageGame

__all__ = ["TwoStageGame"]
