"""Markets built on the two-stage game interface: the demand-response market (Section IV)."""

from stochmech.markets.demand_response import DemandResponseMarket, betaprime_supertype

__all__ = ["DemandResponseMarket", "betaprime_supertype"]
