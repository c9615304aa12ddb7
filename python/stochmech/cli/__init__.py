"""The ``stochmech`` command line.

Subcommands register themselves in :func:`build_parser`; each is a function taking the parsed
arguments and returning a process exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stochmech import __version__
from stochmech.cli.demand_response import (
    DEFAULT_SCENARIO_HELP,
    add_default_run_arguments,
    run_default,
)
from stochmech.cli.demand_response import register as register_demand_response
from stochmech.cli.lqg import register as register_lqg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stochmech",
        description="Design, run and verify incentive-compatible mechanisms for repeated "
        "stochastic markets.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _register_run(sub)
    _register_audit(sub)
    register_lqg(sub)
    register_demand_response(sub)
    return parser


SCENARIO_HELP = "a scenario file (TOML; see stochmech.scenario and the examples/ folder)"


def _scenario_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--days", type=int, help="days to simulate (default: the scenario's)")
    p.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    p.add_argument("--out", help="folder for the PNG plots (default stochmech-out/<scenario name>)")
    p.add_argument("--no-plots", action="store_true", help="do not write plots")
    p.add_argument("--json", action="store_true", help="print machine-readable results")
    p.add_argument("--progress", action="store_true", help="always show a progress bar")


def _register_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="simulate a scenario file (without one: the built-in demand-response scenario)",
        description="Simulate the DNBE mechanism on a scenario: report each player's average "
        "utility against its truthful long-run utility, payments, penalty days, the planner's "
        "budget and the welfare, and plot utility convergence and penalty days. Without a "
        "scenario file, the built-in default: " + DEFAULT_SCENARIO_HELP,
    )
    p.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    _scenario_options(p)
    add_default_run_arguments(p.add_argument_group("built-in default scenario (no scenario file)"))
    p.set_defaults(func=_run)


def _register_audit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="audit the incentives of a scenario's players (exit status 1 if the audit fails)",
        description="Audit Theorem 1 on a scenario: the best stationary and correlated lies "
        "(transport LPs), a catalog of deviations simulated against the truth with common "
        "random numbers, how long the penalty takes to catch each, individual rationality, "
        "efficiency and the planner's budget. Exit status 1 if the audit fails.",
    )
    p.add_argument("scenario", help=SCENARIO_HELP)
    _scenario_options(p)
    p.add_argument("--player", type=int, action="append", help="audit this player (repeatable)")
    p.add_argument("--history-days", type=int, help="horizon of history-dependent deviations")
    p.add_argument("--no-penalty", action="store_true", help="audit with penalties switched off")
    p.add_argument(
        "--no-first-stage-payment",
        action="store_true",
        help="audit with the first-stage VCG payment switched off",
    )
    p.set_defaults(func=_audit)


def _run(args: argparse.Namespace) -> int:
    if args.scenario is None:
        args.days = 100_000 if args.days is None else args.days
        args.seed = 0 if args.seed is None else args.seed
        args.out = "stochmech-out" if args.out is None else args.out
        return int(run_default(args))
    from stochmech.report import run_command

    return run_command(args)


def _audit(args: argparse.Namespace) -> int:
    from stochmech.report import audit_command

    return audit_command(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
