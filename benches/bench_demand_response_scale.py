"""Benchmark: demand-response markets of hundreds to a thousand providers, each on its own levels.

Run with ``PYTHONPATH=python pytest benches/bench_demand_response_scale.py --benchmark-only -s``.

* 200 providers, 16 levels of their own (heterogeneous beta prime laws, means 0.5 to 2), 10^5
  days, provider 0 inflating by one of its own levels;
* the measurement of the issue on scale: 1,000 providers x 16 own levels, 10^6 days end to end
  (sampling, dispatch, payments, the Rust bid ledger, running sums), with its progress bar, in
  a fresh process so that its peak resident memory is its own. Target: <= 60 s and <= 4 GB.
  Set ``STOCHMECH_BENCH_DAYS`` to run fewer days (e.g. 100000) on a busy machine.

Each case prints days/s, player-days/s, the ledger's bytes and the peak RSS. Not a timed
test: nothing here asserts a duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np

from stochmech.markets.demand_response import DemandResponseMarket, betaprime_supertype
from stochmech.markets.demand_response.incentives import Lie
from stochmech.simulation import Simulation
from stochmech.strategies import Truthful

_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from stochmech.simulation import Simulation
    sys.path.insert(0, sys.argv[4])
    from bench_demand_response_scale import heterogeneous_market as default_market
    n, levels, days = (int(x) for x in sys.argv[1:4])
    start = time.perf_counter()
    market = default_market(n, levels)
    sim = Simulation(market, market.supertype_bids(), seed=1)
    sim.run(days, progress=True)
    seconds = time.perf_counter() - start
    result = sim.result()
    print(json.dumps({
        "seconds": seconds,
        "ledger_bytes": sim.market.ledger.nbytes,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "social_cost": -result.average_welfare,
        "optimum": market.expected_social_cost(),
        "penalty_days": int(result.penalty_days.sum()),
    }))
    """
)


def heterogeneous_market(n: int, levels: int) -> DemandResponseMarket:
    """n providers, provider i with the beta prime law of mean 2^(2i/(n-1) - 1) (0.5 to 2),
    variance 2, on ``levels`` levels of its own (no two providers share a level)."""
    theta = betaprime_supertype(1.0, 2.0, levels)
    means = 2.0 ** (2.0 * np.arange(n) / max(n - 1, 1) - 1.0)
    laws = [betaprime_supertype(float(m), 2.0, levels) for m in means]
    return DemandResponseMarket(laws, theta, 1.0)


def _market_run(n: int, levels: int, days: int):
    market = heterogeneous_market(n, levels)
    strategies = [Lie.inflate(1).strategy(market, 0)] + [Truthful() for _ in range(n - 1)]
    sim = Simulation(market, market.supertype_bids(), strategies, seed=1)
    sim.run(days, progress=False)
    return market, sim


def test_two_hundred_providers_on_their_own_levels(benchmark, capsys):
    n, levels, days = 200, 16, 100_000
    market, sim = benchmark.pedantic(
        _market_run, args=(n, levels, days), rounds=1, iterations=1, warmup_rounds=0
    )
    seconds = benchmark.stats.stats.median
    result = sim.result()
    with capsys.disabled():
        print(
            f"\nsimulate: n = {n} providers x {levels} own levels, {days:,} days: {seconds:.2f} s, "
            f"{days / seconds:,.0f} days/s, {n * days / seconds / 1e6:.1f} M player-days/s, "
            f"ledger {sim.market.ledger.nbytes / 2**20:.1f} MiB; social cost "
            f"{-result.average_welfare:.6g} (optimum {market.expected_social_cost():.6g}); "
            f"the liar's penalty days {int(result.penalty_days[0])}"
        )
    assert result.days == days


def _child(n: int, levels: int, days: int) -> subprocess.CompletedProcess[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(n), str(levels), str(days), here],
        check=True,
        stdout=subprocess.PIPE,  # the progress bar goes to the terminal (stderr)
        text=True,
    )


def test_one_thousand_providers_one_million_days(benchmark, capsys):
    n, levels = 1_000, 16
    days = int(os.environ.get("STOCHMECH_BENCH_DAYS", 1_000_000))
    start = time.perf_counter()
    with capsys.disabled():
        done = benchmark.pedantic(
            _child, args=(n, levels, days), rounds=1, iterations=1, warmup_rounds=0
        )
    wall = time.perf_counter() - start
    report = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = report["seconds"]
    with capsys.disabled():
        print(
            f"\nsimulate: n = {n:,} providers x {levels} own levels, {days:,} days end to end: "
            f"{seconds:.1f} s (target <= 60 s for 10^6 days; process wall {wall:.1f} s), "
            f"{days / seconds:,.0f} days/s, {n * days / seconds / 1e6:.1f} M player-days/s, "
            f"peak RSS {report['peak_rss_bytes'] / 2**30:.2f} GiB (target <= 4 GB), ledger "
            f"{report['ledger_bytes'] / 2**20:.1f} MiB; social cost {report['social_cost']:.6g} "
            f"(optimum {report['optimum']:.6g}); penalty days {report['penalty_days']}"
        )
    assert report["social_cost"] > 0
