"""The ``stochmech`` command line.

Subcommands register themselves in :func:`build_parser`; each is a function taking the parsed
arguments and returning a process exit code.

Exit status: 0 success; 1 an audit found a profitable deviation (or another check failed);
2 an input error (bad option, scenario or file), reported as one line on stderr; 3 an
internal error (a bug: please report it); 130 interrupted (Ctrl-C). No traceback is shown
unless ``--debug`` is given (anywhere on the command line). ``--json`` output is strict JSON
(numbers that are not finite appear as ``null``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from stochmech import __version__
from stochmech.cli._executors import add_executor_arguments
from stochmech.cli.demand_response import register as register_demand_response
from stochmech.cli.lqg import register as register_lqg

#: exit statuses (see the module docstring)
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: exceptions that mean "the input is wrong" (argument, scenario, file, resources asked for)
_INPUT_ERRORS = (ValueError, TypeError, OSError, OverflowError, MemoryError, RecursionError)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)}\n")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe(err: BaseException) -> str:
    if isinstance(err, MemoryError):
        return "not enough memory for this run (ask for fewer days, players or types)"
    if isinstance(err, RecursionError):
        return "the input is nested too deeply"
    if isinstance(err, OSError) and err.strerror:
        where = f": {err.filename!s}" if err.filename else ""
        return f"{err.strerror}{where}"
    return _one_line(str(err)) or type(err).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stochmech",
        description="Design, run and verify incentive-compatible mechanisms for repeated "
        "stochastic markets.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (anywhere on the line)"
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


DEFAULT_SCENARIO_HELP = (
    "the demand-response market of the first paper (Section IV), shipped as "
    "stochmech/scenarios/demand_response.toml: n providers (default 10) curtail x at cost "
    "delta_i x^2/2; their cost parameters delta_i are IID beta prime(2, 3) (mean 1, variance 2: "
    "the paper's 'beta with unit mean and variance 2' read as beta prime) discretized to K "
    "levels (default 8); the reserve generator's delta_s has the same law; the shortage is "
    "d = 1 every day. Provider 0 deviates (default: reports its cost one level higher every "
    "day and declares the law those reports follow); the others are truthful. 100,000 days."
)


def _register_run(sub: argparse._SubParsersAction) -> None:
    from stochmech.scenario import DEFAULT_DEVIATIONS

    p = sub.add_parser(
        "run",
        help="simulate a scenario file (without one: the built-in demand-response scenario)",
        description="Simulate the DNBE mechanism on a scenario: report each player's average "
        "utility against its exact and truthful long-run utilities, payments, penalty days, "
        "the planner's budget and the welfare, and plot utility convergence and penalty days. "
        "Ctrl-C saves a checkpoint and prints the command that resumes it. Without a "
        "scenario file, the built-in scenario: " + DEFAULT_SCENARIO_HELP,
    )
    p.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    _scenario_options(p)
    ck = p.add_argument_group("checkpoints")
    ck.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="save the simulation here at the end, every --checkpoint-every days, and on "
        "Ctrl-C (default on Ctrl-C: <out>/checkpoint.stochmech)",
    )
    ck.add_argument(
        "--checkpoint-every", type=int, metavar="DAYS", help="save a checkpoint every DAYS days"
    )
    ck.add_argument(
        "--resume", metavar="PATH", help="continue the checkpoint PATH up to --days days"
    )
    d = p.add_argument_group("built-in scenario (no scenario file)")
    d.add_argument("--players", type=int, help="providers n (default 10)")
    d.add_argument("--types", type=int, help="levels K per cost law (default 8)")
    d.add_argument(
        "--deviation",
        choices=sorted(DEFAULT_DEVIATIONS),
        help="what provider 0 does: "
        + "; ".join(f"{k}: {v}" for k, v in DEFAULT_DEVIATIONS.items())
        + " (default inflate)",
    )
    d.add_argument("--shift", type=int, help="levels by which 'inflate' shifts (default 1)")
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
    add_executor_arguments(p, local_default=False)
    p.add_argument("--no-penalty", action="store_true", help="audit with penalties switched off")
    p.add_argument(
        "--no-first-stage-payment",
        action="store_true",
        help="audit with the first-stage VCG payment switched off",
    )
    p.set_defaults(func=_audit)


def _run(args: argparse.Namespace) -> int:
    from stochmech.report import run_command

    return run_command(args)


def _audit(args: argparse.Namespace) -> int:
    from stochmech.report import audit_command

    return audit_command(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (see the module docstring)."""
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words
    words = [w for w in words if w != "--debug"]
    try:
        args = build_parser().parse_args(words)
    except SystemExit as stop:  # --help, or a usage error already printed on one line
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return int(args.func(args))
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        if debug:
            raise
        print("stochmech: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as stop:
        if isinstance(stop.code, str):
            message = _one_line(stop.code).removeprefix("error: ")
            print(f"stochmech: error: {message}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK if stop.code is None else int(stop.code)
    except _INPUT_ERRORS as err:
        if debug:
            raise
        print(f"stochmech: error: {_describe(err)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:
        if debug:
            raise
        print(
            f"stochmech: internal error: {type(err).__name__}: {_describe(err)} "
            "(run again with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
