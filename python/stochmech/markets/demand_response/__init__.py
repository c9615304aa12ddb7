"""The demand-response market of Section IV, as a package.

* :mod:`~stochmech.markets.demand_response.market`: the market, its exact expectations and the
  posted price;
* :mod:`~stochmech.markets.demand_response.figures`: Figs. 2-4 (exact against simulated);
* :mod:`~stochmech.markets.demand_response.incentives`: a liar's gain under the mechanism, a
  posted price and pay as bid.

The market's public names are re-exported here, so ``from stochmech.markets.demand_response
import DemandResponseMarket`` keeps working.
"""

from stochmech.markets.demand_response.market import (
    RESERVE,
    SHORTAGE,
    DemandResponseMarket,
    LaplaceQuadrature,
    MarketExpectations,
    MonteCarloEstimate,
    PostedPriceOptimum,
    betaprime_parameters,
    betaprime_supertype,
)

__all__ = [
    "RESERVE",
    "SHORTAGE",
    "DemandResponseMarket",
    "LaplaceQuadrature",
    "MarketExpectations",
    "MonteCarloEstimate",
    "PostedPriceOptimum",
    "betaprime_parameters",
    "betaprime_supertype",
]
