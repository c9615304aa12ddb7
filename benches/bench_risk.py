"""Benchmark: a truthful participant's exact expected penalty over 10^6 days.

Run with ``pytest benches/bench_risk.py -s``. Reports the time of
``truthful_risk([[0.5, 0.5]], 0, 10**6)`` (exact binomial tails on every day, vectorized) and of
the three-type case (exact multinomial up to day 500, union bound after), and prints the
expected penalty per day for the default gamma = 1 and for the earlier default gamma = 0.5.
Not a timed test: nothing here asserts a duration.
"""

from stochmech.audit import truthful_risk

DAYS = 1_000_000


def test_two_types_one_million_days(benchmark, capsys):
    risk = benchmark.pedantic(
        lambda: truthful_risk([[0.5, 0.5]], 0, DAYS), rounds=3, iterations=1, warmup_rounds=1
    )
    other = truthful_risk([[0.5, 0.5]], 0, DAYS, gamma=0.5)
    with capsys.disabled():
        print(
            f"\n  two types, {DAYS:,} days: {benchmark.stats['mean']:.2f} s; expected penalty per "
            f"day {risk.expected_penalty_per_day:.6f} (gamma 1, the default), "
            f"{other.expected_penalty_per_day:.4f} (gamma 0.5)"
        )


def test_three_types_one_million_days(benchmark, capsys):
    risk = benchmark.pedantic(
        lambda: truthful_risk([[0.2, 0.3, 0.5]], 0, DAYS), rounds=1, iterations=1
    )
    with capsys.disabled():
        print(
            f"\n  three types, {DAYS:,} days: {benchmark.stats['mean']:.2f} s; expected penalty "
            f"per day <= {risk.expected_penalty_per_day:.4f} "
            f"(>= {risk.expected_penalty_lower / DAYS:.4f})"
        )
