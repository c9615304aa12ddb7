"""The ``stochmech`` command line.

Subcommands register themselves in :func:`build_parser`; each is a function taking the parsed
arguments and returning a process exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stochmech.lqg.cli import register as register_lqg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stochmech",
        description="Design, run and verify incentive-compatible mechanisms for repeated "
        "stochastic markets.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _register_ledger_demo(sub)
    register_lqg(sub)
    return parser


def _register_ledger_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ledger-demo", help="record IID truthful bids in a BidLedger")
    p.add_argument("--players", type=int, default=10)
    p.add_argument("--types", type=int, default=5)
    p.add_argument("--days", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=lambda args: 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
