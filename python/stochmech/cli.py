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
    _register_run(sub)
    register_lqg(sub)
    return parser


def _register_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the built-in default scenario",
        description="Run the built-in default scenario: n players bid their types IID from "
        "their declared supertypes (uniform over K types) except player 0, who always bids "
        "type 0; the bid ledger reports penalty days (eqs. 6-13).",
    )
    p.add_argument("--players", type=int, default=10, help="number of players n (default 10)")
    p.add_argument("--types", type=int, default=5, help="number of types K (default 5)")
    p.add_argument("--days", type=int, default=100_000, help="days to simulate (default 1e5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print machine-readable results")
    p.set_defaults(func=_run_ledger_demo)


def _run_ledger_demo(args: argparse.Namespace) -> int:
    import json
    import time

    import numpy as np

    from stochmech.ledger import BidLedger

    n, k, days = args.players, args.types, args.days
    if n < 1 or k < 1 or days < 1:
        raise SystemExit("players, types and days must be >= 1")
    rng = np.random.default_rng(args.seed)
    ledger = BidLedger(np.full((n, k), 1.0 / k))
    bids = rng.integers(0, k, size=(days, n))
    bids[:, 0] = 0
    start = time.perf_counter()
    result = ledger.record(bids)
    seconds = time.perf_counter() - start
    flagged = result.flags.sum(axis=0)
    last = [int(result.days[f][-1]) if f.any() else 0 for f in result.flags.T]
    report = {
        "players": n,
        "types": k,
        "days": days,
        "seconds": seconds,
        "penalty_days": flagged.tolist(),
        "last_penalty_day": last,
        "total_penalty": result.penalty.sum(axis=0).tolist(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"Bid ledger: {n} players, {k} types, {days} days in {seconds:.3f} s")
    print("player  role        penalty days  last penalty day  total penalty")
    for i in range(n):
        role = "always t=0" if i == 0 else "truthful"
        total = report["total_penalty"][i]
        print(f"{i:>6}  {role:<10}  {flagged[i]:>12}  {last[i]:>16}  {total:>13.4g}")
    return 0


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
