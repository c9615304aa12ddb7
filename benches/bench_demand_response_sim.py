"""Benchmark: 10^6 simulated days of the demand-response market with 10 providers, end to end.

Run with ``PYTHONPATH=python pytest benches/bench_demand_response_sim.py --benchmark-only -s``.
Each round builds the market (10 providers, beta prime (2, 3) costs on 8 levels, the reserve
with the same law, d = 1) and runs :func:`stochmech.simulate` for 10^6 days with provider 0
inflating its reported cost by one level (the other nine truthful): sampling, the optimal
dispatch, payments, the Rust bid ledger and the running averages. Target: under 10 s.

It prints the throughput in days per second and where the time goes, from one extra run under
cProfile (the simulation works in batches of 65,536 days, so the profiler's per-call overhead
is negligible):

* sampling: true types (uniform draws and inverse-CDF lookups), states (d, delta_s) and the
  strategies' reports;
* second stage: the dispatch g2* and the valuations and reserve cost of every day;
* ledger: validation and recording of the bids (frequency and joint-independence statistics,
  penalty flags);
* bookkeeping: everything else (opening the market, payments, running sums, checkpoints).

Not a timed test: nothing here asserts a duration.
"""

from __future__ import annotations

import cProfile
import pstats
import time

from stochmech.markets.demand_response import DemandResponseMarket, betaprime_supertype
from stochmech.simulation import simulate
from stochmech.strategies import StationaryMisreport, Truthful, shift_kernel

DAYS = 1_000_000
PROVIDERS = 10
LEVELS = 8


def _run():
    theta = betaprime_supertype(1.0, 2.0, LEVELS)
    market = DemandResponseMarket([theta] * PROVIDERS, theta, 1.0)
    strategies = [StationaryMisreport(shift_kernel(market.n_types, 1))]
    strategies += [Truthful() for _ in range(PROVIDERS - 1)]
    result = simulate(
        market, market.supertype_bids(), strategies, days=DAYS, seed=1, progress=False
    )
    return market, result


def _breakdown(stats: pstats.Stats) -> dict[str, float]:
    """Seconds per phase, attributed through the call graph (see the module docstring)."""
    table = stats.stats  # type: ignore[attr-defined]

    def key_of(filename: str, name: str):
        hits = [k for k in table if k[0].endswith(filename) and k[2] == name]
        assert len(hits) == 1, (filename, name, hits)
        return hits[0]

    simulate_key = key_of("simulation.py", "simulate")
    clear_key = key_of("mechanism.py", "clear")

    def called_from(caller, match) -> float:
        total = 0.0
        for func, (_, _, _, _, callers) in table.items():
            if match(func) and caller in callers:
                total += callers[caller][3]
        return total

    def named(*names):
        return lambda func: any(func[2] == n or n in func[2] for n in names)

    total = table[simulate_key][3]
    sampling = called_from(
        simulate_key, named("searchsorted", "of 'numpy.random", "sample_states", "type_bids")
    )
    second = called_from(clear_key, named("second_stage", "valuations")) + called_from(
        simulate_key, named("valuations", "cost")
    )
    ledger = called_from(clear_key, named("_as_bids", "check", "record"))
    return {
        "sampling": sampling,
        "second stage": second,
        "ledger": ledger,
        "bookkeeping": total - sampling - second - ledger,
        "total": total,
    }


def test_simulate_one_million_days_ten_providers(benchmark, capsys):
    market, result = benchmark.pedantic(_run, rounds=3, iterations=1, warmup_rounds=0)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    _run()
    profiler.disable()
    profiled = time.perf_counter() - start
    parts = _breakdown(pstats.Stats(profiler))
    stats = benchmark.stats.stats
    exact = market.expected_social_cost()
    with capsys.disabled():
        print(
            f"\nsimulate: {DAYS:,} days, n = {PROVIDERS}, K = {LEVELS}, end to end: median "
            f"{stats.median:.2f} s, min {stats.min:.2f} s (target < 10 s); "
            f"{DAYS / stats.median / 1e6:.2f} M days/s"
        )
        print(f"where the time goes (one profiled run, {profiled:.2f} s wall):")
        for name in ("sampling", "second stage", "ledger", "bookkeeping"):
            share = parts[name] / parts["total"]
            print(f"  {name:<13} {parts[name]:6.3f} s  {100 * share:5.1f} %")
        print(
            f"social cost: simulated {-result.average_welfare:.6f} (provider 0 inflating), "
            f"optimum {exact:.6f}; penalty days of the liar {result.penalty_days[0]}"
        )
    assert result.days == DAYS
    assert abs(sum(parts[k] for k in ("sampling", "second stage", "ledger", "bookkeeping"))
               - parts["total"]) < 1e-9  # fmt: skip
