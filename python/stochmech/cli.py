"""The ``stochmech`` command line.

Subcommands register themselves in :func:`build_parser`; each is a function taking the parsed
arguments and returning a process exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stochmech.lqg.cli import register as register_lqg
from stochmech.markets.demand_response_cli import (
    DEFAULT_SCENARIO_HELP,
    add_default_run_arguments,
    run_default,
)
from stochmech.markets.demand_response_cli import register as register_demand_response


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stochmech",
        description="Design, run and verify incentive-compatible mechanisms for repeated "
        "stochastic markets.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _register_run(sub)
    register_lqg(sub)
    register_demand_response(sub)
    return parser


def _register_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a scenario (default: the built-in demand-response scenario)",
        description="Run a scenario file, or without one the built-in default. "
        + DEFAULT_SCENARIO_HELP,
    )
    p.add_argument(
        "scenario", nargs="?", default=None, help="scenario file (default: the built-in one)"
    )
    p.add_argument("--players", type=int, default=10, help="number of providers n (default 10)")
    p.add_argument("--types", type=int, default=8, help="levels K per cost law (default 8)")
    p.add_argument("--days", type=int, default=100_000, help="days to simulate (default 1e5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="stochmech-out", help="output folder (stochmech-out)")
    p.add_argument("--json", action="store_true", help="print machine-readable results")
    add_default_run_arguments(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.scenario is None:
        return run_default(args)
    raise SystemExit(f"error: scenario files are not supported yet: {args.scenario}")


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
