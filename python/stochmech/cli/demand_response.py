"""Command line of the demand-response market: default ``run``, ``figures``, ``incentives``.

* ``stochmech run`` (no scenario): :func:`run_default` runs the built-in demand-response
  scenario (:data:`DEFAULT_SCENARIO_HELP`) and prints a report: social cost against the exact
  optimum and the best posted price, each provider's average payment and utility, penalty days
  and the planner's budget; it writes a convergence and penalty plot, the running averages
  (CSV) and the report (JSON) to ``--out``.
* ``stochmech figures``: Figs. 2-4 (:mod:`stochmech.markets.demand_response.figures`).
* ``stochmech incentives``: the liar's utility under the mechanism, the posted price and pay as
  bid (:mod:`stochmech.markets.demand_response.incentives`).

Every command takes ``--json`` to print machine-readable results instead of text.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from stochmech.markets._sweeps import default_workers
from stochmech.markets.demand_response import DemandResponseMarket, betaprime_supertype
from stochmech.markets.demand_response.figures import MAX_LEVELS, MAX_SIMULATED_PROVIDERS

__all__ = [
    "DEFAULT_SCENARIO_HELP",
    "DEVIATIONS",
    "add_default_run_arguments",
    "default_market",
    "register",
    "run_default",
]

DEFAULT_SCENARIO_HELP = (
    "Built-in default scenario: the demand-response market of the first paper (Section IV). "
    "n providers (default 10) curtail x at cost delta_i x^2/2; their cost parameters delta_i "
    "are IID beta prime(2, 3) (mean 1, variance 2: the paper's 'beta with unit mean and "
    "variance 2' read as beta prime) discretized to K levels (default 8) by equal-probability "
    "quantile bins at their conditional means; the reserve generator's delta_s has the same "
    "law; the shortage is d = 1 every day. Provider 0 deviates (default: reports its cost one "
    "level higher every day and declares the law those reports follow); the others are "
    "truthful. The DNBE mechanism (gamma = 0.5, penalty l^1.5, Rust bid ledger) runs for "
    "--days days (default 100,000)."
)

#: the deviations of ``stochmech run --deviation``
DEVIATIONS = {
    "inflate": "reports its cost --shift levels higher every day and declares the law those "
    "reports follow (the ledger cannot see it)",
    "inflate-naive": "reports its cost --shift levels higher every day but declares its true "
    "law (the ledger's frequency test catches it)",
    "claim-top": "declares and reports its highest cost level every day",
    "none": "truthful like the others",
}


def default_market(
    providers: int = 10, levels: int = 8, *, heterogeneous: bool = False
) -> DemandResponseMarket:
    """The market of the default scenario (see :data:`DEFAULT_SCENARIO_HELP`).

    With ``heterogeneous``, provider i's cost law is the beta prime law with mean
    ``2 ** (2 i / (n - 1) - 1)`` (from 0.5 to 2, variance 2), discretized to ``levels`` levels of
    its own: no two providers share a level.

    Examples
    --------
    >>> m = default_market(3, 4)
    >>> m.n_players, m.n_types, round(m.reserve.mean(), 12), m.shortage.mean()
    (3, 4, 1.0, 1.0)
    >>> h = default_market(3, 4, heterogeneous=True)
    >>> h.type_counts.tolist(), round(h.providers[2].mean(), 12)
    ([4, 4, 4], 2.0)
    """
    theta = betaprime_supertype(1.0, 2.0, levels)
    if not heterogeneous:
        return DemandResponseMarket([theta] * providers, theta, 1.0)
    means = 2.0 ** (2.0 * np.arange(providers) / max(providers - 1, 1) - 1.0)
    laws = [betaprime_supertype(float(m), 2.0, levels) for m in means]
    return DemandResponseMarket(laws, theta, 1.0)


# ---------------------------------------------------------------------------------------------
# argument registration
# ---------------------------------------------------------------------------------------------
def add_default_run_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The options of the built-in default scenario (``stochmech run`` without a file)."""
    parser.add_argument("--players", type=int, default=10, help="providers n (default 10)")
    parser.add_argument("--types", type=int, default=8, help="levels K per cost law (default 8)")
    parser.add_argument(
        "--heterogeneous",
        action="store_true",
        help="providers with cost laws of their own (means 0.5 to 2), each on its own levels",
    )
    parser.add_argument(
        "--deviation",
        choices=sorted(DEVIATIONS),
        default="inflate",
        help="what provider 0 does: "
        + "; ".join(f"{k}: {v}" for k, v in DEVIATIONS.items())
        + " (default inflate)",
    )
    parser.add_argument(
        "--shift", type=int, default=1, help="levels by which 'inflate' shifts (default 1)"
    )


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
    fig.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"worker processes (default {default_workers()}; 1 runs serially)",
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
    inc.add_argument("--workers", type=int, default=None, help="worker processes")
    inc.add_argument("--json", action="store_true", help="print machine-readable results")
    inc.set_defaults(func=run_incentives)


# ---------------------------------------------------------------------------------------------
# stochmech run (default scenario)
# ---------------------------------------------------------------------------------------------
def _int_option(args: argparse.Namespace, name: str, default: int, lo: int, hi: int) -> int:
    value = getattr(args, name, None)
    value = default if value is None else int(value)
    if not lo <= value <= hi:
        raise SystemExit(f"error: --{name} must be in {lo}..{hi}, got {value}")
    return value


def run_default(args: argparse.Namespace) -> int:
    """``stochmech run`` without a scenario: the built-in demand-response scenario.

    ``args`` needs ``days``, ``seed``, ``out`` and ``json``; ``players``, ``types``,
    ``deviation``, ``shift`` and ``no_plots`` are optional (defaults 10, 8, "inflate", 1,
    False).
    """
    from stochmech.markets.demand_response.incentives import Lie
    from stochmech.mechanism import DNBEMechanism
    from stochmech.simulation import simulate
    from stochmech.strategies import Strategy, Truthful
    from stochmech.supertype import point_mass

    start = time.perf_counter()
    days = int(args.days)
    if days < 2:
        raise SystemExit(f"error: --days must be >= 2, got {days}")
    n = _int_option(args, "players", 10, 2, MAX_SIMULATED_PROVIDERS)
    levels = _int_option(args, "types", 8, 1, MAX_LEVELS)
    heterogeneous = bool(getattr(args, "heterogeneous", False))
    deviation = getattr(args, "deviation", None) or "inflate"
    if deviation not in DEVIATIONS:
        raise SystemExit(f"error: --deviation must be one of {sorted(DEVIATIONS)}")
    shift = getattr(args, "shift", None)
    shift = 1 if shift is None else int(shift)
    seed = int(args.seed)
    out = Path(args.out if args.out is not None else "stochmech-out")

    market = default_market(n, levels, heterogeneous=heterogeneous)
    theta = market.supertype_bids()
    mechanism = DNBEMechanism(market)
    lie = None
    if deviation in ("inflate", "inflate-naive"):
        lie = Lie.inflate(shift, declare="induced" if deviation == "inflate" else "truthful")
    elif deviation == "claim-top":
        top = float(market.levels[0][-1])  # provider 0's own highest level
        lie = Lie.claim(point_mass(top), "claims top cost always")
    strategies: list[Strategy] = [Truthful() for _ in range(n)]
    plan = None
    if lie is not None:
        plan = lie.plan(market, 0)
        strategies[0] = plan.strategy

    try:
        run = simulate(market, theta, strategies, days=days, seed=seed, progress=False)
        truth = (
            run if lie is None else simulate(market, theta, days=days, seed=seed, progress=False)
        )
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    exact = market.expectations()
    best = market.best_posted_price()
    exact_truth = mechanism.long_run_utility(market, theta[0], theta, 0, np.eye(market.n_types))
    exact_lie = exact_truth
    if plan is not None:
        declared = theta.copy()
        declared[0] = plan.declared
        exact_lie = mechanism.long_run_utility(market, theta[0], declared, 0, plan.kernel)

    social = -run.average_welfare
    reserve_cost = float(run.average_valuation.sum()) - run.average_welfare
    # profile groups d_-i of the joint test (eq. 8): prod_{j != 0} K_j (inf beyond floats)
    exact_groups = math.prod(int(k) for k in market.type_counts[1:])
    groups = float(exact_groups) if exact_groups.bit_length() < 1000 else math.inf
    report: dict[str, Any] = {
        "scenario": {
            "description": DEFAULT_SCENARIO_HELP,
            "providers": n,
            "levels": levels,
            "heterogeneous": heterogeneous,
            "type_values": market.levels[0].tolist(),
            "variance_kept": market.providers[0].var(),
            "shortage": 1.0,
            "days": days,
            "seed": seed,
            "deviation": deviation,
            "deviation_description": "none" if lie is None else lie.describe(),
            "shift": shift if deviation in ("inflate", "inflate-naive") else None,
        },
        "social_cost": {
            "this_run": social,
            "all_truthful_same_days": -truth.average_welfare,
            "optimum_exact": exact.social_cost,
            "best_posted_price": best.price,
            "best_posted_price_cost_exact": best.social_cost,
            "excess_over_optimum_percent": 100 * (social / exact.social_cost - 1),
            "posted_price_excess_over_optimum_percent": 100 * best.gap / exact.social_cost,
        },
        "providers": [
            {
                "provider": i,
                "strategy": run.strategies[i] if i or lie is None else lie.name,
                "payment_received": -float(run.average_payment[i]),
                "payment_received_exact_truthful": float(exact.payment_received[i]),
                "utility": float(run.average_utility[i]),
                "utility_exact_truthful": float(exact.utility[i]),
                "penalty_per_day": float(run.average_penalty[i]),
                "penalty_days": int(run.penalty_days[i]),
                "last_penalty_day": int(run.last_penalty_day[i]),
            }
            for i in range(n)
        ],
        "planner": {
            "budget_per_day": run.budget,
            "budget_per_day_exact_truthful": exact.planner_budget,
            "reserve_cost_per_day": reserve_cost,
            "note": "budget = net payments the planner receives per day (negative: it pays)",
        },
        "deviator": {
            "provider": 0,
            "utility": float(run.average_utility[0]),
            "utility_truthful_same_days": float(truth.average_utility[0]),
            "gain": float(run.average_utility[0] - truth.average_utility[0]),
            "exact_long_run_gain": None
            if not math.isfinite(exact_lie)
            else exact_lie - exact_truth,
            "caught_by_ledger": not math.isfinite(exact_lie),
        },
        "ledger": {
            "joint_test_groups": groups,
            "joint_test_has_power": groups <= days,
        },
    }
    if getattr(args, "no_plots", False):
        report["files"] = []
    else:
        report["files"] = [str(p) for p in _write_run_files(run, truth, market, report, out)]
    report["seconds"] = time.perf_counter() - start
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(_format_report(report))
    return 0


def _format_report(r: dict[str, Any]) -> str:
    sc, sco, pl, dv = r["scenario"], r["social_cost"], r["planner"], r["deviator"]
    width = max(len(p["strategy"]) for p in r["providers"]) + 2
    lines = [
        "stochmech run: the demand-response market (first paper, Section IV), default scenario",
        f"  {sc['providers']} providers, cost delta_i x^2/2 with delta_i ~ beta prime(2, 3) "
        f"(mean 1, variance 2) on K = {sc['levels']} levels (variance kept "
        f"{sc['variance_kept']:.3f});",
        "  reserve delta_s: the same law; shortage d = 1; DNBE mechanism, gamma = 0.5, "
        "penalty l^1.5;",
        f"  {sc['days']:,} days, seed {sc['seed']}. Provider 0: {sc['deviation_description']}; "
        "the others are truthful.",
        "",
        "Social cost per day",
        f"  this run (simulated)            {sco['this_run']:.6f}   "
        f"({sco['excess_over_optimum_percent']:+.2f} % vs the optimum)",
        f"  all truthful, same days         {sco['all_truthful_same_days']:.6f}",
        f"  optimum (exact)                 {sco['optimum_exact']:.6f}",
        f"  best posted price (exact)       {sco['best_posted_price_cost_exact']:.6f}   "
        f"(p* = {sco['best_posted_price']:.5f}, "
        f"{sco['posted_price_excess_over_optimum_percent']:+.1f} % vs the optimum)",
        "",
        "Providers (per-day averages; payments are RECEIVED; exact = long-run value if truthful)",
        f"  {'#':>3}  {'strategy':<{width}}{'payment':>12}{'exact':>11}{'utility':>12}{'exact':>11}"
        f"{'penalty days':>14}{'last':>8}",
    ]
    for p in r["providers"]:
        lines.append(
            f"  {p['provider']:>3}  {p['strategy']:<{width}}{p['payment_received']:>12.3e}"
            f"{p['payment_received_exact_truthful']:>11.3e}{p['utility']:>12.3e}"
            f"{p['utility_exact_truthful']:>11.3e}{p['penalty_days']:>14,}"
            f"{p['last_penalty_day']:>8}"
        )
    lines += [
        "",
        "Planner",
        f"  budget (net payments received)  {pl['budget_per_day']:.6f} per day "
        f"(exact if all truthful: {pl['budget_per_day_exact_truthful']:.6f})",
        f"  reserve generation cost         {pl['reserve_cost_per_day']:.6f} per day",
    ]
    if sc["deviation"] != "none":
        exact_gain = (
            "minus infinity: the ledger penalizes it on all but finitely many days"
            if dv["caught_by_ledger"]
            else f"{dv['exact_long_run_gain']:+.3e}"
        )
        verdict = "gains" if dv["gain"] > 0 else "loses"
        lines += [
            "",
            "Deviator (provider 0)",
            f"  utility lying {dv['utility']:.4e} vs truthful on the same days "
            f"{dv['utility_truthful_same_days']:.4e}: it {verdict} {abs(dv['gain']):.3e} per day",
            f"  exact long-run gain of this lie: {exact_gain}",
        ]
    if not r["ledger"]["joint_test_has_power"]:
        lines += [
            "",
            "Note: the joint-independence test has K^(n-1) = "
            f"{r['ledger']['joint_test_groups']:.3g}"
            " profile groups, far more than the days simulated; almost every group is seen about "
            "once, so only the frequency test has power at this horizon.",
        ]
    if r["files"]:
        lines += ["", "Files: " + ", ".join(r["files"])]
    lines.append(f"({r['seconds']:.1f} s)")
    return "\n".join(lines)


def _write_run_files(
    run: Any, truth: Any, market: DemandResponseMarket, report: dict[str, Any], out: Path
) -> list[Path]:
    """``run_convergence.png`` (running averages, penalty days), ``run_paths.csv`` and
    ``run_report.json``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)
    days = run.checkpoints
    sco = report["social_cost"]
    exact_u = report["providers"][0]["utility_exact_truthful"]
    n = run.utility_path.shape[1]

    fig = Figure(figsize=(8.0, 9.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True)
    ax1.plot(days, -run.welfare_path, color="C1", label="this run (simulated)")
    if truth is not run:
        ax1.plot(days, -truth.welfare_path, color="C0", ls="--", lw=1.0,
                 label="all truthful, same days")  # fmt: skip
    ax1.axhline(sco["optimum_exact"], color="C2", label="optimum (exact)")
    ax1.axhline(sco["best_posted_price_cost_exact"], color="0.4", ls=":",
                label=f"best posted price p* = {sco['best_posted_price']:.4g} (exact)")  # fmt: skip
    ax1.set_ylabel("running average\nsocial cost per day")
    ax1.set_yscale("log")
    ax1.legend(fontsize=8)
    ax1.set_title(
        f"Default scenario: {n} providers, K = {report['scenario']['levels']} levels, "
        f"{report['scenario']['days']:,} days, seed {report['scenario']['seed']}",
        fontsize=10,
    )

    label0 = report["providers"][0]["strategy"]
    ax2.plot(days, run.utility_path[:, 0], color="C3", label=f"provider 0 ({label0})")
    if truth is not run:
        ax2.plot(days, truth.utility_path[:, 0], color="C3", ls="--", lw=1.0,
                 label="provider 0 if truthful, same days")  # fmt: skip
    if n > 1:
        ax2.plot(days, run.utility_path[:, 1], color="C0", lw=1.0, label="provider 1 (truthful)")
    ax2.axhline(exact_u, color="C2", label="long-run utility if truthful (exact)")
    ax2.set_ylabel("running average\nutility per day")
    # the first days carry the penalties of the wide early window (order J_p(l)/l): zoom on
    # the last two decades, where the averages settle
    late = days >= max(1, days[-1] // 100)
    window = np.concatenate(
        [run.utility_path[late, : min(n, 2)].ravel(), truth.utility_path[late, 0], [exact_u]]
    )
    lo, hi = float(window.min()), float(window.max())
    if lo < -100 * abs(exact_u):  # a caught liar: its average penalty grows without bound
        thresh = 10 * abs(exact_u)
        ax2.set_yscale("symlog", linthresh=thresh)
        ax2.set_ylim(3 * float(run.utility_path[:, 0].min()), thresh)
        first = math.ceil(math.log10(thresh))
        last = math.ceil(math.log10(-3 * float(run.utility_path[:, 0].min())))
        step = max(1, (last - first) // 4)
        ax2.set_yticks([0.0] + [-(10.0**e) for e in range(first, last + 1, step)])
    else:
        pad = 0.25 * (hi - lo) + 0.05 * abs(exact_u)
        ax2.set_ylim(lo - pad, hi + pad)
        ax2.text(0.01, 0.03, "early days off scale (penalties of the first days, decaying "
                 "like 1/l)", transform=ax2.transAxes, fontsize=7.5, color="0.35")  # fmt: skip
    ax2.legend(fontsize=8)

    for i in range(n):
        ax3.step(days, run.penalty_path[:, i], where="post",
                 color="C3" if i == 0 else "0.55", lw=1.4 if i == 0 else 0.8,
                 label="provider 0" if i == 0 else ("truthful" if i == 1 else None))  # fmt: skip
    if run.penalty_path.max() > 50:
        ax3.set_yscale("symlog", linthresh=10.0)
    else:
        ax3.set_ylim(-0.2, run.penalty_path.max() + 1.0)
        ax3.yaxis.get_major_locator().set_params(integer=True)
    ax3.set_ylabel("cumulative\npenalty days")
    ax3.set_xlabel("day l")
    ax3.set_xscale("log")
    ax3.legend(fontsize=8)
    for ax in (ax1, ax2, ax3):
        ax.grid(True, alpha=0.3)
    png = out / "run_convergence.png"
    fig.savefig(png, dpi=110)

    csv = out / "run_paths.csv"
    names = ["day", "social_cost", "social_cost_truthful", "budget"]
    names += [f"utility_{i}" for i in range(n)] + [f"penalty_days_{i}" for i in range(n)]
    data = np.column_stack(
        [days, -run.welfare_path, -truth.welfare_path, run.budget_path, run.utility_path,
         run.penalty_path]
    )  # fmt: skip
    header = (
        "# stochmech run, default demand-response scenario: running averages at log-spaced "
        f"days; {report['scenario']['deviation_description']} (provider 0)\n" + ",".join(names)
    )
    np.savetxt(csv, data, delimiter=",", header=header, comments="", fmt="%.10g")
    side = out / "run_report.json"
    side.write_text(json.dumps({**report, "files": None}, indent=2) + "\n", encoding="utf-8")
    return [png, csv, side]


# ---------------------------------------------------------------------------------------------
# stochmech figures / incentives
# ---------------------------------------------------------------------------------------------
def _executor_for(workers: int | None) -> tuple[str, int | None]:
    if workers is not None and workers < 1:
        raise SystemExit(f"error: --workers must be >= 1, got {workers}")
    return ("serial", None) if workers == 1 else ("process", workers)


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
        raise SystemExit(f"error: {err}") from None
    executor, workers = _executor_for(args.workers)
    ns = DEFAULT_NS if getattr(args, "ns", None) is None else tuple(args.ns)
    try:
        written = write_figures(
            args.out,
            setup,
            which=sorted(set(args.only)),
            ns=ns,
            curve_to=getattr(args, "curve_to", None),
            executor=executor,
            workers=workers,
        )
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    seconds = time.perf_counter() - start
    result = {
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
        print(json.dumps(result, indent=2))
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
        raise SystemExit(
            f"error: --providers must be in 2..{MAX_SIMULATED_PROVIDERS} and --levels in "
            f"1..{MAX_LEVELS // 2}"
        )
    if args.days < 2 or args.replications < 2:
        raise SystemExit("error: --days and --replications must be >= 2")
    executor, workers = _executor_for(args.workers)
    start = time.perf_counter()
    cmp = compare_incentives(
        n_providers=args.providers,
        levels=args.levels,
        days=args.days,
        replications=args.replications,
        seed=args.seed,
        executor=executor,
        workers=workers,
    )
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({**cmp.to_dict(), "seconds": seconds}, indent=2))
        return 0
    print(cmp.table())
    print(f"({seconds:.1f} s)")
    return 0
