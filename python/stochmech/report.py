"""What ``stochmech run`` and ``stochmech audit`` print and write for a scenario file.

:func:`run_command` and :func:`audit_command` take the parsed command-line arguments (see
:mod:`stochmech.cli`), load the scenario, simulate or audit it, print a readable report (or JSON
with ``--json``) and write the PNG figures of :mod:`stochmech.plots` into ``--out`` (default
``stochmech-out/<scenario name>``). :func:`run_summary` and :func:`format_run` are the report of
a run, usable without the command line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from stochmech.scenario import Scenario, load_scenario
from stochmech.simulation import SimulationResult

__all__ = ["audit_command", "format_run", "run_command", "run_summary", "truthful_utilities"]


def truthful_utilities(scenario: Scenario, supertype_bids: np.ndarray) -> np.ndarray:
    """Each player's long-run utility if it bid truthfully against the others' declarations:
    W*(theta_i, theta_hat_-i) - W*(theta_hat_-i), or nu_i(theta_i, theta_hat_-i) without the
    first-stage payment.

    Examples
    --------
    >>> from stochmech.scenario import parse_scenario
    >>> s = parse_scenario('[game]\\nkind = "demand-response"\\nreserve = 1.0\\n'
    ...                    '[[players]]\\nsupertype = 1.0\\n')
    >>> truthful_utilities(s, s.true_supertypes).round(6).tolist()
    [0.25]
    """
    game = scenario.game
    out = np.empty(game.n_players)
    for i in range(game.n_players):
        bids = np.array(supertype_bids, dtype=float)
        bids[i] = scenario.true_supertypes[i]
        if scenario.mechanism.first_stage_payment:
            out[i] = float(game.optimal_welfare(bids)) - float(
                game.optimal_welfare_without(bids, i)
            )
        else:
            out[i] = float(np.asarray(game.expected_valuations(bids))[i])
    return out


def run_summary(scenario: Scenario, result: SimulationResult) -> dict[str, Any]:
    """The JSON-ready report of a run."""
    truthful = truthful_utilities(scenario, result.supertype_bids)
    m = scenario.mechanism
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "source": scenario.source,
        "game": repr(scenario.game),
        "mechanism": {
            "gamma": m.gamma,
            "penalty": repr(m.penalty),
            "first_stage_payment": m.first_stage_payment,
            "penalize": m.penalize,
        },
        "days": result.days,
        "seed": result.seed,
        "players": [
            {
                "name": scenario.player_names[i],
                "strategy": scenario.strategy_specs[i],
                "true_supertype": scenario.true_supertypes[i].tolist(),
                "declared": result.supertype_bids[i].tolist(),
                "average_utility": float(result.average_utility[i]),
                "truthful_utility": float(truthful[i]),
                "average_payment": float(result.average_payment[i]),
                "average_penalty": float(result.average_penalty[i]),
                "penalty_days": int(result.penalty_days[i]),
                "last_penalty_day": int(result.last_penalty_day[i]),
            }
            for i in range(len(truthful))
        ],
        "first_stage_outcome": result.summary()["first_stage_outcome"],
        "planner_budget_per_day": result.budget,
        "average_welfare": result.average_welfare,
        "optimal_welfare": result.optimal_welfare,
    }


def format_run(summary: dict[str, Any]) -> str:
    """The readable report of a run, from :func:`run_summary`."""
    m = summary["mechanism"]
    lines = [
        f"Scenario {summary['scenario']!r}"
        + (f": {summary['description']}" if summary["description"] else ""),
        f"game: {summary['game']}",
        f"mechanism: gamma = {m['gamma']}, penalty = {m['penalty']}, first-stage payment "
        f"{'on' if m['first_stage_payment'] else 'OFF'}, penalties "
        f"{'on' if m['penalize'] else 'OFF'}",
        f"{summary['days']} days, seed {summary['seed']}, first-stage outcome "
        f"{summary['first_stage_outcome']}",
        "",
        f"{'player':<16} {'strategy':<44} {'utility/day':>12} {'if truthful':>12} "
        f"{'paid/day':>11} {'pen. days':>9} {'last pen.':>9}",
    ]
    for p in summary["players"]:
        lines.append(
            f"{p['name'][:16]:<16} {p['strategy'][:44]:<44} {p['average_utility']:>12.5g} "
            f"{p['truthful_utility']:>12.5g} {p['average_payment']:>11.5g} "
            f"{p['penalty_days']:>9} {p['last_penalty_day']:>9}"
        )
    gap = summary["optimal_welfare"] - summary["average_welfare"]
    lines += [
        "",
        "'if truthful': the long-run utility of bidding truthfully against the others' "
        "declarations (W*(theta_i, theta_hat_-i) - W*(theta_hat_-i)).",
        f"planner's budget: {summary['planner_budget_per_day']:+.6g} per day (payments received)",
        f"average welfare: {summary['average_welfare']:.6g}; W*(theta) = "
        f"{summary['optimal_welfare']:.6g} (gap {gap:+.3g})",
    ]
    return "\n".join(lines)


def _load(args: argparse.Namespace) -> Scenario:
    try:
        scenario = load_scenario(args.scenario)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    for flag in ("days", "seed"):
        value = getattr(args, flag, None)
        if value is not None and value < (1 if flag == "days" else 0):
            raise SystemExit(
                f"error: --{flag} must be >= {1 if flag == 'days' else 0}, got {value}"
            )
    return scenario


def _out_dir(args: argparse.Namespace, scenario: Scenario) -> Path:
    return Path(args.out) if args.out else Path("stochmech-out") / scenario.name


def run_command(args: argparse.Namespace) -> int:
    """``stochmech run SCENARIO``: simulate, report, plot."""
    scenario = _load(args)
    result = scenario.simulate(args.days, args.seed, progress=args.progress or None)
    summary = run_summary(scenario, result)
    plots: list[str] = []
    if not args.no_plots:
        from stochmech.plots import plot_penalty_days, plot_utility_convergence, save_figure

        out = _out_dir(args, scenario)
        expected = [p["truthful_utility"] for p in summary["players"]]
        names = list(scenario.player_names)
        plots = [
            str(
                save_figure(
                    plot_utility_convergence(result, names, expected),
                    out / "utility_convergence.png",
                )
            ),
            str(save_figure(plot_penalty_days(result, names), out / "penalty_days.png")),
        ]
    summary["plots"] = plots
    if args.json:
        print(json.dumps(summary, indent=2, allow_nan=False))
        return 0
    print(format_run(summary))
    if plots:
        print("plots: " + ", ".join(plots))
    return 0


def audit_command(args: argparse.Namespace) -> int:
    """``stochmech audit SCENARIO``: audit the chosen players; exit status 1 if any fails."""
    scenario = _load(args)
    if args.no_penalty or args.no_first_stage_payment:
        scenario = scenario.with_switches(
            penalize=False if args.no_penalty else None,
            first_stage_payment=False if args.no_first_stage_payment else None,
        )
    players = args.player if args.player else list(scenario.audit_players)
    n = scenario.game.n_players
    for p in players:
        if not 0 <= p < n:
            raise SystemExit(f"error: --player must be in 0..{n - 1}, got {p}")
    if args.history_days is not None and args.history_days < 2:
        raise SystemExit(f"error: --history-days must be >= 2, got {args.history_days}")
    from stochmech.cli._executors import executor_from_args, progress_from_args

    with executor_from_args(args, local_default=False) as (executor, workers):
        reports = [
            scenario.audit(
                p,
                days=args.days,
                seed=args.seed,
                history_days=args.history_days,
                progress=progress_from_args(args),
                executor=executor,
                workers=workers,
            )
            for p in players
        ]
    plots: list[str] = []
    if not args.no_plots:
        from stochmech.plots import plot_audit, save_figure

        out = _out_dir(args, scenario)
        for r in reports:
            gain, penalty = plot_audit(r)
            plots += [
                str(save_figure(gain, out / f"player{r.player}_audit_gain.png")),
                str(save_figure(penalty, out / f"player{r.player}_audit_penalty_days.png")),
            ]
    passed = all(r.passed for r in reports)
    if args.json:
        data = {
            "scenario": scenario.name,
            "source": scenario.source,
            "passed": passed,
            "audits": [r.to_dict() for r in reports],
            "plots": plots,
        }
        print(json.dumps(data, indent=2, allow_nan=False))
    else:
        head = f"Scenario {scenario.name!r}"
        print(head + (f": {scenario.description}" if scenario.description else ""))
        for r in reports:
            print()
            print(str(r))
        print()
        print(
            f"Overall: {'PASS' if passed else 'FAIL'} ({len(reports)} player"
            f"{'s' if len(reports) != 1 else ''} audited)"
        )
        if plots:
            print("plots: " + ", ".join(plots))
    return 0 if passed else 1
