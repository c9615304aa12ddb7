"""``stochmech lqg``: run and verify the layered mechanism (a scenario file or the example).

``stochmech lqg run|verify SCENARIO.toml`` reads the user's agents, horizon and deviations
(format in ``docs/lqg-scenarios.md``); without a file both commands use the built-in example.
Both report individual rationality and the ISO's budget per layer.

``stochmech lqg run`` simulates one horizon with truthful bids, prints a summary (or JSON with
``--json``) and writes PNG plots of the states, controls and cumulative payments to ``--out``.
``stochmech lqg verify`` prints the Theorem 3 Monte Carlo table (with and without transfers).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from stochmech._json import strict_json
from stochmech.lqg.examples import power_system_example
from stochmech.lqg.layered import LayeredRun, LayeredVCG
from stochmech.lqg.scenario import ir_budget_json, mechanism_ir_budget_lines, scenario_command
from stochmech.lqg.verification import centralized_closed_loop, theorem3_table

__all__ = ["register"]

SCENARIO_HELP = "an LQG scenario file (.toml, see docs/lqg-scenarios.md); default: built-in example"

EXAMPLE_HELP = (
    "Built-in example: 3 generators (gas, hydro, wind) and 2 loads (office, cold-store); states "
    "are deviations from the day-ahead schedule, controls are real-time adjustments balanced at "
    "every step. Noise variances sigma, zeta as in stochmech.lqg.examples."
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``lqg`` command group to the top-level subparsers."""
    lqg = sub.add_parser("lqg", help="layered dynamic stochastic VCG for LQG agents")
    lqg_sub = lqg.add_subparsers(dest="lqg_command", required=True)

    run = lqg_sub.add_parser(
        "run", help="run a scenario file (or the built-in example)", description=EXAMPLE_HELP
    )
    run.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    run.add_argument("--horizon", type=int, help="number of steps T (default 48 or the file's)")
    run.add_argument("--seed", type=int, help="random seed of the noise (default 0 or the file's)")
    run.add_argument("--pivot", choices=["clarke", "none"], help="default clarke or the file's")
    run.add_argument("--out", default="stochmech-out/lqg", help="folder for the PNG plots")
    run.add_argument("--no-plots", action="store_true", help="do not write plots")
    run.add_argument("--json", action="store_true", help="print machine-readable results")
    run.set_defaults(func=_run)

    verify = lqg_sub.add_parser(
        "verify", help="Theorem 3 Monte Carlo table (scenario file or example)",
        description=EXAMPLE_HELP,
    )  # fmt: skip
    verify.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    verify.add_argument("--horizon", type=int, help="default 12 or the file's")
    verify.add_argument("--samples", type=int, help="default 4000 or the file's")
    verify.add_argument("--seed", type=int, help="default 0 or the file's")
    verify.add_argument("--pivot", choices=["clarke", "none"], help="scenario files only")
    verify.add_argument("--agent", type=int, default=0, help="built-in example only")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=_verify)


def _simulate(args: argparse.Namespace) -> tuple[Any, LayeredVCG, LayeredRun, float]:
    ex = power_system_example()
    mech = LayeredVCG(ex.agents, args.horizon, pivot=args.pivot)
    xi = ex.agents.sample_layer_inputs(args.horizon, np.random.default_rng(args.seed))
    run = mech.run(xi)
    _, central = centralized_closed_loop(mech, xi)
    return ex, mech, run, float(np.abs(run.controls - central).max())


def _defaults(args: argparse.Namespace, **values: Any) -> None:
    for key, value in values.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)


def _run(args: argparse.Namespace) -> int:
    if args.scenario is not None:
        return scenario_command("run", args)
    _defaults(args, horizon=48, seed=0, pivot="clarke")
    if args.horizon < 1:
        raise ValueError(f"--horizon must be >= 1, got {args.horizon}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    ex, mech, run, gap = _simulate(args)
    plots = [] if args.no_plots else [str(p) for p in _plot(run, ex.names, args.out)]
    paid = run.payments.sum(axis=0)
    result = {
        "horizon": args.horizon,
        "seed": args.seed,
        "pivot": args.pivot,
        "agents": [
            {
                "name": name,
                "kind": kind,
                **{k: float(getattr(ex.agents, k)[i]) for k in "abqr"},
                "sigma": float(ex.agents.sigma[i]),
                "zeta": float(ex.agents.zeta[i]),
            }
            for i, (name, kind) in enumerate(zip(ex.names, ex.kinds, strict=True))
        ],
        "states": run.states.tolist(),
        "controls": run.controls.tolist(),
        "payments": run.payments.tolist(),
        "valuations": run.valuations.tolist(),
        "total_payments": paid.tolist(),
        "utilities": run.utilities.tolist(),
        "welfare": run.welfare,
        "expected_welfare": mech.expected_welfare(),
        "revenue": run.revenue,
        "balance_residual": float(np.abs(run.controls.sum(axis=1)).max()),
        "centralized_control_gap": gap,
        "plots": plots,
        **ir_budget_json(mech, ex.names),
    }
    if args.json:
        print(strict_json(result))
        return 0
    print(
        f"Layered VCG, built-in example: T = {args.horizon}, seed = {args.seed}, "
        f"pivot = {args.pivot}"
    )
    print(f"{'agent':<11}{'kind':<10}{'valuation':>11}{'paid':>11}{'utility':>11}")
    for i, (name, kind) in enumerate(zip(ex.names, ex.kinds, strict=True)):
        print(
            f"{name:<11}{kind:<10}{run.valuations[i]:>11.4f}{paid[i]:>11.4f}"
            f"{run.utilities[i]:>11.4f}"
        )
    print(f"realized social welfare  {run.welfare:.4f}")
    print(f"expected social welfare  {mech.expected_welfare():.4f} (Riccati value)")
    print(f"ISO revenue              {run.revenue:.4f}  (sum of payments)")
    print(f"max |sum_i u_i(t)|       {result['balance_residual']:.2e}")
    print(f"max |U - K X| (central)  {gap:.2e}")
    print("\n".join(mechanism_ir_budget_lines(mech, ex.names)))
    if plots:
        print("plots: " + ", ".join(plots))
    return 0


def _plot(run: LayeredRun, names: tuple[str, ...], out: str) -> list[Any]:
    from stochmech.lqg.plots import write_run_plots  # matplotlib only when plotting

    return write_run_plots(run, names, out)


def _verify(args: argparse.Namespace) -> int:
    if args.scenario is not None:
        return scenario_command("verify", args)
    _defaults(args, horizon=12, samples=4000, seed=0)
    if args.horizon < 1 or args.samples < 2:
        raise ValueError("--horizon must be >= 1 and --samples >= 2")
    ex = power_system_example()
    if not 0 <= args.agent < ex.agents.n:
        raise ValueError(f"--agent must be in 0..{ex.agents.n - 1}, got {args.agent}")
    mech = LayeredVCG(ex.agents, args.horizon)
    rows = theorem3_table(mech, args.agent, n_samples=args.samples, seed=args.seed)
    if args.json:
        out = [
            {
                "deviation": w.label,
                "gain": w.mean_gain,
                "std_error": w.std_error,
                "exact_gain": w.exact_gain,
                "gain_without_transfers": wo.mean_gain,
                "std_error_without_transfers": wo.std_error,
                "exact_gain_without_transfers": wo.exact_gain,
            }
            for w, wo in rows
        ]
        extra = ir_budget_json(mech, ex.names)
        print(strict_json({"agent": args.agent, "samples": args.samples, "rows": out, **extra}))
        return 0
    print(
        f"Theorem 3 check for agent {args.agent} ({ex.names[args.agent]}), T = {args.horizon}, "
        f"{args.samples} paths, common random numbers; gain = E[u(deviation) - u(truth)]"
    )
    print(f"{'deviation':<46}{'mechanism':>24}{'no transfers':>24}")
    for w, wo in rows:
        print(
            f"{w.label:<46}{w.mean_gain:>+12.5f} ± {w.std_error:<9.5f}"
            f"{wo.mean_gain:>+12.5f} ± {wo.std_error:<9.5f}"
        )
    print("\n".join(mechanism_ir_budget_lines(mech, ex.names)))
    return 0
