"""Command line of the demand-response market: ``figures`` and ``incentives``.

(``stochmech run`` without a scenario runs the built-in demand-response scenario, a scenario
file shipped with the package, through the same code as any scenario: :mod:`stochmech.report`.)

* ``stochmech figures``: Figs. 2-4 (:mod:`stochmech.markets.demand_response.figures`).
* ``stochmech incentives``: the liar's utility under the mechanism, the posted price and pay as
  bid (:mod:`stochmech.markets.demand_response.incentives`).

Every command takes ``--json`` to print machine-readable results instead of text.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from stochmech._json import strict_json
from stochmech.cli._executors import (
    add_executor_arguments,
    executor_from_args,
    progress_from_args,
)
from stochmech.markets.demand_response.figures import MAX_LEVELS, MAX_SIMULATED_PROVIDERS

__all__ = ["register", "run_figures", "run_incentives"]


def register(sub: argparse._SubParsersAction) -> None:
    """Adds ``figures`` and ``incentives`` to the top-level subcommands."""
    fig = sub.add_parser(
        "figures",
        help="regenerate Figs. 2-4 of the demand-response market (PNG, CSV, JSON)",
        description="Figs. 2-4 of the first paper: exact expectations (quadrature) against "
        "long-horizon simulations of the DNBE mechanism. Shortage d = 1; costs and the "
        "reserve's delta_s beta prime(2, 3) (mean 1, variance 2) discretized to --levels "
        "levels; Fig. 2: n = 1..50; Figs. 3 and 4: n = 10. Each point: --replications runs "
        "of --days days.",
    )
    fig.add_argument("--out", default="stochmech-out", help="output folder (stochmech-out)")
    fig.add_argument("--days", type=int, default=50_000, help="days per run (default 50,000)")
    fig.add_argument(
        "--replications", type=int, default=8, help="independent runs per point (default 8)"
    )
    fig.add_argument("--levels", type=int, default=8, help="levels K per law (default 8)")
    fig.add_argument(
        "--ns",
        type=int,
        nargs="+",
        default=None,
        help="Fig. 2's simulated numbers of providers (default 1..50; at most "
        f"{MAX_SIMULATED_PROVIDERS:,})",
    )
    fig.add_argument(
        "--curve-to",
        type=int,
        default=None,
        help="Fig. 2's exact curve up to this many providers (default: the largest --ns; any "
        "number, e.g. 10000)",
    )
    fig.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_executor_arguments(fig)
    fig.add_argument(
        "--checkpoints",
        metavar="FOLDER",
        default=None,
        help="every run saves itself here every 100,000 days and resumes from its file "
        "(a lost worker or an interrupted sweep started again loses little work)",
    )
    fig.add_argument(
        "--only", type=int, nargs="+", choices=[2, 3, 4], default=[2, 3, 4], help="figures"
    )
    fig.add_argument("--json", action="store_true", help="print machine-readable results")
    fig.set_defaults(func=run_figures)

    inc = sub.add_parser(
        "incentives",
        help="a lying provider's gain under the mechanism, a posted price and pay as bid",
        description="One provider lies (inflates its reported cost, or lies about its "
        "supertype), the others are truthful; its utility gain over the truth under the DNBE "
        "mechanism, a posted price discovered from the declared supertypes, and pay as bid "
        "(paid the reported cost), exactly and by simulation with common random numbers.",
    )
    inc.add_argument("--providers", type=int, default=10, help="providers n (default 10)")
    inc.add_argument("--levels", type=int, default=8, help="levels K (default 8)")
    inc.add_argument("--days", type=int, default=20_000, help="days per run (default 20,000)")
    inc.add_argument("--replications", type=int, default=8, help="runs (default 8)")
    inc.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_executor_arguments(inc)
    inc.add_argument("--json", action="store_true", help="print machine-readable results")
    inc.set_defaults(func=run_incentives)


def run_figures(args: argparse.Namespace) -> int:
    """``stochmech figures``: writes Figs. 2-4 and prints where, with their accuracy."""
    from stochmech.markets.demand_response.figures import (
        DEFAULT_NS,
        FigureSetup,
        write_figures,
    )

    start = time.perf_counter()
    try:
        setup = FigureSetup(
            levels=int(args.levels),
            days=int(args.days),
            replications=int(args.replications),
            seed=int(args.seed),
        )
    except ValueError as err:
        raise ValueError(f"{err}") from None
    ns = DEFAULT_NS if getattr(args, "ns", None) is None else tuple(args.ns)
    with executor_from_args(args) as (executor, workers):
        written = write_figures(
            args.out,
            setup,
            which=sorted(set(args.only)),
            ns=ns,
            curve_to=getattr(args, "curve_to", None),
            executor=executor,
            workers=workers,
            progress=progress_from_args(args),
            checkpoints=args.checkpoints,
        )
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "seconds": seconds,
        "choices": setup.choices(),
        "figures": [
            {
                "figure": data.key,
                "title": data.title,
                "png": str(files.png),
                "csv": str(files.csv),
                "json": str(files.json),
                "points": len(data.columns["exact"]),
                "max_abs_z": data.max_abs_z(),
                "max_relative_difference": float(
                    np.max(np.abs(data.columns["simulated"] / data.columns["exact"] - 1))
                ),
                **{k: v for k, v in data.extras.items() if k != "choices"},
            }
            for data, files in written
        ],
    }
    if args.json:
        print(strict_json(result))
        return 0
    print(
        f"Figures of the demand-response market: K = {setup.levels} levels, "
        f"{setup.replications} runs x {setup.days:,} days per point, seed {setup.seed}"
    )
    for f in result["figures"]:
        print(
            f"  {f['title']}: {f['points']} points, simulated vs exact: max |z| = "
            f"{f['max_abs_z']:.2f}, max relative difference {f['max_relative_difference']:.2e}"
        )
        if f["figure"] == "fig4":
            print(
                f"    best posted price {f['best_price']:.5g}: gap {f['gap_exact']:.5g} exact, "
                f"{f['gap_simulated']:.5g} ± {2 * f['gap_simulated_se']:.1g} (2 s.e.) simulated "
                f"({100 * f['gap_exact'] / f['mechanism_cost_exact']:.1f} % of the optimum)"
            )
        print(f"    {f['png']}  {f['csv']}  {f['json']}")
    print(f"({seconds:.1f} s)")
    return 0


def run_incentives(args: argparse.Namespace) -> int:
    """``stochmech incentives``: the side-by-side table of a liar's gains."""
    from stochmech.markets.demand_response.incentives import compare_incentives

    if (
        not 2 <= args.providers <= MAX_SIMULATED_PROVIDERS
        or not 1 <= args.levels <= MAX_LEVELS // 2
    ):
        raise ValueError(
            f"--providers must be in 2..{MAX_SIMULATED_PROVIDERS} and --levels in "
            f"1..{MAX_LEVELS // 2}"
        )
    if args.days < 2 or args.replications < 2:
        raise ValueError("--days and --replications must be >= 2")
    start = time.perf_counter()
    with executor_from_args(args) as (executor, workers):
        cmp = compare_incentives(
            n_providers=args.providers,
            levels=args.levels,
            days=args.days,
            replications=args.replications,
            seed=args.seed,
            executor=executor,
            workers=workers,
            progress=progress_from_args(args),
        )
    seconds = time.perf_counter() - start
    if args.json:
        print(strict_json({**cmp.to_dict(), "seconds": seconds}))
        return 0
    print(cmp.table())
    print(f"({seconds:.1f} s)")
    return 0
