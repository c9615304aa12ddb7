"""What ``stochmech run`` and ``stochmech audit`` print and write for a scenario file.

:func:`run_command` and :func:`audit_command` take the parsed command-line arguments (see
:mod:`stochmech.cli`), load the scenario, simulate or audit it, print a readable report (or JSON
with ``--json``) and write the PNG figures of :mod:`stochmech.plots` into ``--out`` (default
``stochmech-out/<scenario name>``). :func:`run_summary` and :func:`format_run` are the report of
a run, usable without the command line.
"""

from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from stochmech._json import strict_json
from stochmech.scenario import Scenario, default_scenario, load_scenario
from stochmech.simulation import Simulation, SimulationResult

__all__ = [
    "audit_command",
    "exact_utilities",
    "format_run",
    "joint_test_groups",
    "resume_command",
    "run_command",
    "run_summary",
    "truthful_risks",
    "truthful_utilities",
]


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


def exact_utilities(scenario: Scenario, supertype_bids: np.ndarray) -> list[float | None]:
    """Each player's exact long-run utility under its scenario strategy, when the strategy is
    stationary (a report kernel of its own type), the others reporting as they declared;
    ``None`` for other strategies and minus infinity when the ledger catches it."""
    from stochmech.audit import stationary_kernel
    from stochmech.strategies import PlayerContext

    game, m = scenario.game, scenario.mechanism
    out: list[float | None] = []
    for i, strategy in enumerate(scenario.strategies):
        k = int(game.type_counts[i])  # the player's own types
        theta = scenario.true_supertypes[i, :k]
        ctx = PlayerContext(player=i, supertype=theta, n_types=k, type_values=game.values_of(i))
        found = stationary_kernel(strategy, ctx)
        if found is None:
            out.append(None)
            continue
        out.append(m.long_run_utility(game, theta, supertype_bids, i, found[1]))
    return out


def joint_test_groups(scenario: Scenario) -> float:
    """prod_{j != 0} K_j (K^(n-1) with K types each): how many profiles of the others the
    joint-independence test tracks for player 0 (infinity beyond floating point)."""
    exact = math.prod(int(k) for k in scenario.game.type_counts[1:])
    return float(exact) if exact.bit_length() < 1000 else math.inf


def truthful_risks(
    scenario: Scenario, supertype_bids: np.ndarray, days: int
) -> list[dict[str, Any]]:
    """Each player's truthful risk over ``days`` days at a declaration (one row per player;
    the reports pass the true supertypes, i.e. truthful bidding): the expected penalty
    a truthful bidder pays through the frequency test (:func:`stochmech.audit.truthful_risk`,
    exact with two types, exact up to day 500 and an upper bound after with more), and a bound
    on P(any flag after day 100). Zero when the scenario's penalties are off. The joint test's
    extra risk is not included (``"joint_test": "not included"``; it is rare for honest
    players, and :func:`stochmech.audit.truthful_risk` with every player's supertype
    simulates and bounds it)."""
    from stochmech.audit.risk import truthful_risk

    m = scenario.mechanism
    cache: dict[bytes, dict[str, Any]] = {}
    out = []
    for row in np.asarray(supertype_bids, dtype=float):
        key = row.tobytes()
        if key not in cache:
            if not m.penalize:
                cache[key] = {
                    "expected_penalty": 0.0,
                    "expected_penalty_per_day": 0.0,
                    "exact": True,
                    "any_flag_after_100": 0.0,
                    "joint_test": "not included",
                }
            else:
                risk = truthful_risk(
                    row[None, :], 0, int(days), gamma=m.gamma, penalty=m.penalty, joint=False
                )
                cache[key] = {
                    "expected_penalty": risk.expected_penalty,
                    "expected_penalty_per_day": risk.expected_penalty_per_day,
                    "exact": risk.exact,
                    "any_flag_after_100": risk.any_flag_after(min(100, int(days))),
                    "joint_test": "not included",
                }
        out.append(dict(cache[key]))
    return out


def _coverage(scenario: Scenario, supertype_bids: np.ndarray, days: int) -> str:
    from stochmech.audit.coalitions import coverage_warning

    n, k = np.shape(supertype_bids)
    return coverage_warning(
        n, k, int(days), supertypes=supertype_bids, gamma=scenario.mechanism.gamma
    )


def run_summary(scenario: Scenario, result: SimulationResult) -> dict[str, Any]:
    """The JSON-ready report of a run."""
    from stochmech.markets.demand_response import DemandResponseMarket

    truthful = truthful_utilities(scenario, result.supertype_bids)
    exact = exact_utilities(scenario, result.supertype_bids)
    groups = joint_test_groups(scenario)
    risks = truthful_risks(scenario, scenario.true_supertypes, result.days)
    m = scenario.mechanism
    market: dict[str, Any] | None = None
    game = scenario.game
    if isinstance(game, DemandResponseMarket):
        best = game.best_posted_price()
        optimum = game.expected_social_cost()
        social = -result.average_welfare
        market = {
            "social_cost": social,
            "optimum_exact": optimum,
            "excess_over_optimum_percent": 100 * (social / optimum - 1),
            "best_posted_price": best.price,
            "best_posted_price_cost_exact": best.social_cost,
            "posted_price_excess_over_optimum_percent": 100 * best.gap / optimum,
            "payment_received": (-result.average_payment).tolist(),
            "payment_received_exact_truthful": game.expected_payments().tolist(),
        }
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
                "exact_utility": _finite_or_none(exact[i]),
                "caught_by_ledger": exact[i] == -np.inf,
                "truthful_risk": risks[i],
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
        "ledger": {"joint_test_groups": groups, "joint_test_has_power": groups <= result.days},
        "market": market,
        "coverage": _coverage(scenario, result.supertype_bids, result.days),
    }


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


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
        f"{'player':<16} {'strategy':<44} {'utility/day':>12} {'exact':>12} "
        f"{'if truthful':>12} {'risk/day':>10} {'paid/day':>11} {'pen. days':>9} "
        f"{'last pen.':>9}",
    ]
    for p in summary["players"]:
        if p["exact_utility"] is not None:
            exact = f"{p['exact_utility']:>12.5g}"
        else:
            exact = f"{'-inf caught' if p['caught_by_ledger'] else '-':>12}"
        risk = p["truthful_risk"]
        mark = "" if risk["exact"] else "<"
        lines.append(
            f"{p['name'][:16]:<16} {p['strategy'][:44]:<44} {p['average_utility']:>12.5g} "
            f"{exact} {p['truthful_utility']:>12.5g} "
            f"{mark + format(risk['expected_penalty_per_day'], '.3g'):>10} "
            f"{p['average_payment']:>11.5g} {p['penalty_days']:>9} {p['last_penalty_day']:>9}"
        )
    gap = summary["optimal_welfare"] - summary["average_welfare"]
    lines += [
        "",
        "'exact': the long-run utility of the player's strategy (stationary strategies; the "
        "others reporting as they declared); '-inf caught': the ledger penalizes it on all but "
        "finitely many days.",
        "'if truthful': the long-run utility of bidding truthfully against the others' "
        "declarations (W*(theta_i, theta_hat_-i) - W*(theta_hat_-i)).",
        "'risk/day': the expected penalty per day the player would pay bidding truthfully "
        f"over {summary['days']} days through the frequency test (exact; '<' an upper bound).",
        f"planner's budget: {summary['planner_budget_per_day']:+.6g} per day (payments received)",
        f"average welfare: {summary['average_welfare']:.6g}; W*(theta) = "
        f"{summary['optimal_welfare']:.6g} (gap {gap:+.3g})",
        "",
        summary["coverage"],
    ]
    mk = summary.get("market")
    if mk is not None:
        lines += [
            "",
            "Social cost per day (demand-response market)",
            f"  this run (simulated)       {mk['social_cost']:.6f}   "
            f"({mk['excess_over_optimum_percent']:+.2f} % vs the optimum)",
            f"  optimum (exact)            {mk['optimum_exact']:.6f}",
            f"  best posted price (exact)  {mk['best_posted_price_cost_exact']:.6f}   "
            f"(p* = {mk['best_posted_price']:.5f}, "
            f"{mk['posted_price_excess_over_optimum_percent']:+.1f} % vs the optimum)",
        ]
    return "\n".join(lines)


def _load(args: argparse.Namespace) -> Scenario:
    try:
        if getattr(args, "scenario", None) is None:
            scenario = default_scenario(
                getattr(args, "players", None),
                getattr(args, "types", None),
                getattr(args, "deviation", None),
                getattr(args, "shift", None),
            )
        else:
            for flag in ("players", "types", "deviation", "shift"):
                if getattr(args, flag, None) is not None:
                    raise ValueError(f"--{flag} applies to the built-in scenario only")
            scenario = load_scenario(args.scenario)
    except ValueError as err:
        raise ValueError(f"{err}") from None
    for flag in ("days", "seed", "checkpoint_every"):
        value = getattr(args, flag, None)
        low = 0 if flag == "seed" else 1
        if value is not None and value < low:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= {low}, got {value}")
    return scenario


def _out_dir(args: argparse.Namespace, scenario: Scenario) -> Path:
    return Path(args.out) if args.out else Path("stochmech-out") / scenario.name


def resume_command(args: argparse.Namespace, days: int, checkpoint: Path) -> str:
    """The command line that continues an interrupted ``stochmech run`` from ``checkpoint``."""
    words = ["stochmech", "run"]
    if getattr(args, "scenario", None) is not None:
        words.append(str(args.scenario))
    else:
        for flag in ("players", "types", "deviation", "shift"):
            value = getattr(args, flag, None)
            if value is not None:
                words += [f"--{flag}", str(value)]
    if args.seed is not None:
        words += ["--seed", str(args.seed)]
    words += ["--days", str(days), "--resume", str(checkpoint), "--checkpoint", str(checkpoint)]
    if getattr(args, "checkpoint_every", None):
        words += ["--checkpoint-every", str(args.checkpoint_every)]
    if args.out:
        words += ["--out", str(args.out)]
    for flag in ("no_plots", "json", "progress"):
        if getattr(args, flag, False):
            words.append("--" + flag.replace("_", "-"))
    return shlex.join(words)


def _simulation(args: argparse.Namespace, scenario: Scenario) -> Simulation:
    if not getattr(args, "resume", None):
        return scenario.simulation(args.seed)
    from stochmech._persist import read_file
    from stochmech._state import players_to_supply

    try:
        data = read_file(args.resume, "checkpoint")
        # strategies that hold code are not in the file: the scenario gives them again
        given = {i: scenario.strategies[i] for i in players_to_supply(data)}
        sim = Simulation.from_bytes(data, strategies=given)
    except (OSError, ValueError, IndexError) as err:
        raise ValueError(f"cannot resume from {args.resume!r}: {err}") from None
    game = scenario.game
    same = (
        (sim.game.n_players, sim.game.n_types) == (game.n_players, game.n_types)
        and np.array_equal(sim.theta, scenario.true_supertypes)
        and [s.describe() for s in sim.strategies] == [s.describe() for s in scenario.strategies]
        and repr(sim.scheme) == repr(scenario.mechanism)
    )
    if not same:
        raise ValueError(f"{args.resume!r} is a checkpoint of a different scenario")
    if args.seed is not None and args.seed != sim.seed:
        raise ValueError(f"{args.resume!r} was run with seed {sim.seed}, not {args.seed}")
    return sim


def run_command(args: argparse.Namespace) -> int:
    """``stochmech run [SCENARIO]``: simulate (or continue a checkpoint), report, plot.

    Ctrl-C saves a checkpoint (``--checkpoint``, default ``<out>/checkpoint.stochmech``),
    prints the day reached and the command that resumes, and returns 130.
    """
    scenario = _load(args)
    days = scenario.days if args.days is None else args.days
    sim = _simulation(args, scenario)
    if sim.day > days:
        raise ValueError(f"the checkpoint is at day {sim.day}, past --days {days}")
    given = getattr(args, "checkpoint", None)
    checkpoint = Path(given) if given else _out_dir(args, scenario) / "checkpoint.stochmech"
    try:
        if days > sim.day:
            sim.run(
                days - sim.day,
                progress=args.progress or None,
                checkpoint=checkpoint if given else None,
                checkpoint_every=getattr(args, "checkpoint_every", None),
            )
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the save
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        sim.save(checkpoint)
        print(
            f"\ninterrupted at day {sim.day:,} of {days:,}; checkpoint saved to {checkpoint}\n"
            f"resume with:\n  {resume_command(args, days, checkpoint)}",
            file=sys.stderr,
        )
        return 130
    result = sim.result()
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
        print(strict_json(summary))
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
            raise ValueError(f"--player must be in 0..{n - 1}, got {p}")
    if args.history_days is not None and args.history_days < 2:
        raise ValueError(f"--history-days must be >= 2, got {args.history_days}")
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
    declared = scenario.true_supertypes
    horizon = args.days if args.days is not None else scenario.days
    risks = truthful_risks(scenario, declared, horizon)
    coverage = _coverage(scenario, declared, horizon)
    if args.json:
        data = {
            "scenario": scenario.name,
            "source": scenario.source,
            "passed": passed,
            "audits": [{**r.to_dict(), "truthful_risk": risks[r.player]} for r in reports],
            "coverage": coverage,
            "plots": plots,
        }
        print(strict_json(data))
    else:
        head = f"Scenario {scenario.name!r}"
        print(head + (f": {scenario.description}" if scenario.description else ""))
        for r in reports:
            print()
            print(str(r))
            risk = risks[r.player]
            bound = "" if risk["exact"] else " (upper bound)"
            print(
                f"Truthful risk of player {r.player} (bidding truthfully): expected penalty "
                f"{risk['expected_penalty']:.4g} over {horizon} days "
                f"({risk['expected_penalty_per_day']:.3g} per day{bound}) through the "
                "frequency test (the joint test's extra risk not included); "
                f"P(any flag after day 100) <= {risk['any_flag_after_100']:.3g}."
            )
        print()
        print(coverage)
        print()
        print(
            f"Overall: {'PASS' if passed else 'FAIL'} ({len(reports)} player"
            f"{'s' if len(reports) != 1 else ''} audited)"
        )
        if plots:
            print("plots: " + ", ".join(plots))
    return 0 if passed else 1
