"""stochmech: incentive-compatible market mechanisms for stochastic, repeated settings.

The library implements two mechanisms and the tools to verify them on the numbers:

* the two-stage repeated stochastic game mechanism that makes truthful bidding a Dominant
  Strategy Non-Bankrupting Equilibrium (DNBE), with its running frequency and
  joint-independence statistics kept by a Rust :class:`BidLedger`, and its demand-response
  market application (:mod:`stochmech.markets.demand_response`);
* the strategic LQG system with static, dynamic deterministic and layered dynamic stochastic
  VCG payments (:mod:`stochmech.lqg`).

Examples
--------
>>> import stochmech
>>> round(stochmech.window(1), 6)  # the detection window r(l) of eq. (11) on day 1
0.588705
"""

from stochmech._core import __version__
from stochmech._window import DEFAULT_GAMMA, window
from stochmech.games.finite import Estimate, FiniteGame
from stochmech.ledger import BidLedger, LedgerRecord, PowerPenalty
from stochmech.mechanism import Clearing, DNBEMechanism, Market, Opening
from stochmech.schemes import PayAsBid, PaymentScheme, PostedPrice, Settlement
from stochmech.simulation import Simulation, SimulationResult, simulate
from stochmech.supertype import Supertype

__all__ = [
    "DEFAULT_GAMMA",
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
