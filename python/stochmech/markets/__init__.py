"""Markets built on the two-stage game interface: the demand-response market (Section IV).

* :mod:`~stochmech.markets.demand_response`: the market, its exact expectations and the posted
  price;
* :mod:`~stochmech.markets.demand_response.figures`: Figs. 2-4 (exact against simulated);
* :mod:`~stochmech.markets.demand_response.incentives`: a liar's gain under the mechanism, a
  posted price and pay as bid;
* :mod:`~stochmech.cli.demand_response`: ``stochmech run`` (default scenario),
  ``stochmech figures`` and ``stochmech incentives``.
"""

from stochmech.markets.demand_response import DemandResponseMarket, betaprime_supertype
from stochmech.markets.demand_response.figures import FigureSetup, write_figures
from stochmech.markets.demand_response.incentives import Lie, compare_incentives

__all__ = [
    "DemandResponseMarket",
    "FigureSetup",
    "Lie",
    "betaprime_supertype",
    "compare_incentives",
    "write_figures",
]
