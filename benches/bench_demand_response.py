"""Benchmark: exact expected payments of a large heterogeneous demand-response market.

Run with ``PYTHONPATH=python pytest benches/bench_demand_response.py``. Reports the time of
``expected_payments()`` for 1,000 providers with 16 beta-prime levels each (distinct laws, so
the type space has 16,000 values) and the accuracy against a second quadrature with half the
step and a wider range. Target: under 1 s. Not a timed test: nothing here asserts a duration.
"""

import numpy as np

from stochmech.markets._inverse_sum import LaplaceQuadrature
from stochmech.markets.demand_response import DemandResponseMarket, betaprime_supertype

N_PROVIDERS = 1000
LEVELS = 16


def _providers(seed=2024):
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.3, 4.0, N_PROVIDERS)
    variances = rng.uniform(0.2, 4.0, N_PROVIDERS)
    return [betaprime_supertype(m, v, LEVELS) for m, v in zip(means, variances, strict=True)]


def test_expected_payments_1000_providers_16_levels(benchmark, capsys):
    providers = _providers()
    reserve = betaprime_supertype(1.0, 2.0, LEVELS)

    def run():
        # a fresh market each round: no cached expectations
        return DemandResponseMarket(providers, reserve).expected_payments()

    payments = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    fine_market = DemandResponseMarket(
        providers, reserve, quadrature=LaplaceQuadrature(step=0.1, eps=1e-20)
    )
    fine = fine_market.expected_payments()
    market = DemandResponseMarket(providers, reserve)
    rel = float(np.max(np.abs(payments / fine - 1)))
    cost_rel = abs(market.expected_social_cost() / fine_market.expected_social_cost() - 1)
    stats = benchmark.stats.stats
    with capsys.disabled():
        print(
            f"\nexpected payments, n={N_PROVIDERS}, K={LEVELS} (|Delta|={market.n_types}): "
            f"median {stats.median * 1e3:.1f} ms, min {stats.min * 1e3:.1f} ms "
            f"(target < 1000 ms); {market.expectations().quadrature_nodes} nodes vs "
            f"{fine_market.expectations().quadrature_nodes} in the reference rule\n"
            f"max relative difference vs step/2 rule: payments {rel:.2e}, "
            f"social cost {cost_rel:.2e}"
        )
    assert rel < 1e-10
