"""The strategic LQG system (second paper): static, dynamic deterministic and layered VCG.

Where things live:

* :mod:`stochmech.lqg.static` - static VCG/Groves under ``sum_i u_i = 0``;
* :mod:`stochmech.lqg.deterministic` - dynamic deterministic VCG (Theorem 2);
* :mod:`stochmech.lqg.agents`, :mod:`stochmech.lqg.layered` - the LQG agents and the layered
  dynamic stochastic VCG (:class:`LayeredVCG`), on the Riccati solver of
  :mod:`stochmech.lqg.riccati`;
* :mod:`stochmech.lqg.reference` - plain dense-KKT references the fast paths are tested against;
* :mod:`stochmech.lqg.rationality` - individual rationality and budget;
* :mod:`stochmech.lqg.scenario` - TOML scenario files for ``stochmech lqg run|verify``;
* :mod:`stochmech.lqg.verification` - efficiency, welfare and Theorem 3 checks;
* :mod:`stochmech.lqg.plots`, :mod:`stochmech.cli.lqg` - figures and ``stochmech lqg``.

Sign conventions (docs/modelling.md, "Sign conventions"): utilities are valuations minus
payments; a payment is what an agent pays the ISO (negative: received).
"""

from stochmech.lqg.agents import LQGAgents
from stochmech.lqg.deterministic import (
    DynamicVCGResult,
    LinearQuadraticBid,
    dynamic_utilities,
    dynamic_vcg,
)
from stochmech.lqg.layered import (
    BatchUtilities,
    History,
    LayeredBatch,
    LayeredRun,
    LayeredVCG,
    LayerStep,
)
from stochmech.lqg.rationality import (
    BudgetReport,
    IndividualRationality,
    expected_budget,
    individual_rationality,
    outside_option,
)
from stochmech.lqg.riccati import (
    ConstrainedLQSolution,
    constrained_riccati,
    dual_sweep,
    riccati_sweep,
    solve_constrained_lq,
)
from stochmech.lqg.scenario import LQGScenario, load_lqg_scenario, parse_lqg_scenario
from stochmech.lqg.static import (
    ConcaveUtility,
    QuadraticUtility,
    StaticVCGResult,
    balanced_allocation,
    static_utilities,
    static_vcg,
)

__all__ = [
    "BatchUtilities",
    "BudgetReport",
    "ConcaveUtility",
    "ConstrainedLQSolution",
    "DynamicVCGResult",
    "History",
    "IndividualRationality",
    "LQGAgents",
    "LQGScenario",
    "LayerStep",
    "LayeredBatch",
    "LayeredRun",
    "LayeredVCG",
    "LinearQuadraticBid",
    "QuadraticUtility",
    "StaticVCGResult",
    "balanced_allocation",
    "constrained_riccati",
    "dual_sweep",
    "dynamic_utilities",
    "dynamic_vcg",
    "expected_budget",
    "individual_rationality",
    "load_lqg_scenario",
    "outside_option",
    "parse_lqg_scenario",
    "riccati_sweep",
    "solve_constrained_lq",
    "static_utilities",
    "static_vcg",
]
