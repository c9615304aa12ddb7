"""stochmech: incentive-compatible market mechanisms for stochastic, repeated settings.

The library implements two mechanisms and the tools to verify them on the numbers:

* the two-stage repeated stochastic game mechanism that makes truthful bidding a Dominant
  Strategy Non-Bankrupting Equilibrium (DNBE), with its running frequency and
  joint-independence statistics kept by a Rust :class:`BidLedger`, and its demand-response
  market application (:mod:`stochmech.markets.demand_response`);
* the strategic LQG system with static, dynamic deterministic and layered dynamic stochastic
  VCG payments (:mod:`stochmech.lqg`).
"""

from stochmech._core import __version__
from stochmech._core import window as _window
from stochmech.games.finite import Estimate, FiniteGame
from stochmech.ledger import BidLedger, LedgerRecord, PowerPenalty
from stochmech.mechanism import Clearing, DNBEMechanism, Market, Opening
from stochmech.schemes import PayAsBid, PaymentScheme, PostedPrice, Settlement
from stochmech.simulation import Simulation, SimulationResult, simulate
from stochmech.supertype import Supertype


def window(day: int, gamma: float = 0.5) -> float:
    """Detection window r(l) of eq. (11), ``sqrt(ln(2 l^(1+gamma)) / (2 l))``, for day ``l >= 1``.

    Examples
    --------
    >>> round(window(1), 6)
    0.588705
    """
    from stochmech._validate import finite, integer

    gamma = finite(gamma, "gamma")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma!r}")
    return _window(integer(day, "day", minimum=1, maximum=(1 << 53)), gamma)


__all__ = [
    "BidLedger",
    "Clearing",
    "DNBEMechanism",
    "Estimate",
    "FiniteGame",
    "LedgerRecord",
    "Market",
    "Opening",
    "PayAsBid",
    "PaymentScheme",
    "PostedPrice",
    "PowerPenalty",
    "Settlement",
    "Simulation",
    "SimulationResult",
    "Supertype",
    "__version__",
    "simulate",
    "window",
]
