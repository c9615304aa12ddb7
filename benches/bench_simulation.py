"""Speed of simulate() on a finite game: 10^6 days, 3 players, K = 4.

Run with ``python -m pytest benches/bench_simulation.py --benchmark-only -s``. Prints days per
second, where the time goes (the Rust ledger against the Python/numpy per-chunk work), and the
cost of history-dependent Python policies relative to stationary ones.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from stochmech import FiniteGame, simulate
from stochmech.ledger import BidLedger
from stochmech.strategies import HistoryDependent, StationaryMisreport, Truthful, shift_kernel

DAYS = 1_000_000


def make_game() -> tuple[FiniteGame, np.ndarray]:
    rng = np.random.default_rng(0)
    game = FiniteGame(rng.normal(size=(3, 4, 3, 4)), rng.normal(size=(3, 4)))
    return game, rng.dirichlet(np.ones(4) * 2, size=3)


def timed(owner: Any, name: str, totals: dict[str, float]) -> Callable[[], None]:
    """Wraps ``owner.name`` to add its wall time to ``totals[name]``; returns an undo."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - start

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


@pytest.mark.benchmark(group="simulate")
def test_simulate_truthful_and_stationary(benchmark):
    game, theta = make_game()
    strategies = [Truthful(), StationaryMisreport(shift_kernel(4, 1)), Truthful()]
    result = benchmark.pedantic(
        simulate, args=(game, theta, strategies, DAYS), kwargs={"seed": 1}, rounds=3
    )
    best = benchmark.stats.stats.min
    # where the time goes: wrap the pieces of one more run
    totals: dict[str, float] = defaultdict(float)
    undo = [
        timed(BidLedger, "record", totals),
        timed(game, "second_stage", totals),
        timed(game, "valuations", totals),
        timed(game, "cost", totals),
    ]
    start = time.perf_counter()
    simulate(game, theta, strategies, DAYS, seed=1)
    total = time.perf_counter() - start
    for u in undo:
        u()
    rust_only = _ledger_only(theta, DAYS)
    print(
        f"\nsimulate, n=3, K=4, {DAYS:.0e} days (truthful + shift-by-one misreport): "
        f"best {best:.3f} s = {DAYS / best / 1e6:.2f} M days/s"
    )
    print(f"  one instrumented run: {total:.3f} s")
    for name in ("record", "second_stage", "valuations", "cost"):
        print(f"    {name:<13} {totals[name]:.3f} s ({100 * totals[name] / total:4.1f} %)")
    other = total - sum(totals.values())
    print(f"    {'other python':<13} {other:.3f} s ({100 * other / total:4.1f} %)")
    print(
        f"  BidLedger.record = Rust ledger ({rust_only:.3f} s on the same days alone) plus "
        "validation and penalty bookkeeping in Python"
    )
    assert result.days == DAYS


def _ledger_only(theta: np.ndarray, days: int) -> float:
    rng = np.random.default_rng(0)
    bids = np.stack([rng.choice(4, size=days, p=p) for p in theta], axis=1)
    ledger = BidLedger(theta)
    start = time.perf_counter()
    ledger._core.record(np.ascontiguousarray(bids, dtype=np.int64), False)
    return time.perf_counter() - start


@pytest.mark.benchmark(group="simulate")
def test_history_dependent_policy_cost(benchmark):
    game, theta = make_game()
    days = 20_000
    policy = HistoryDependent(lambda t, history, rng: t, name="echo")

    def both() -> tuple[float, float]:
        start = time.perf_counter()
        simulate(game, theta, [Truthful(), Truthful(), Truthful()], days, seed=2)
        stationary = time.perf_counter() - start
        start = time.perf_counter()
        simulate(game, theta, [policy, Truthful(), Truthful()], days, seed=2)
        return stationary, time.perf_counter() - start

    stationary, history = benchmark.pedantic(both, rounds=3)
    print(
        f"\nhistory-dependent Python policy (1 of 3 players), {days} days: {history:.3f} s "
        f"= {history / days * 1e6:.1f} us/day, {history / stationary:.0f}x the stationary run "
        f"({stationary:.3f} s); 10^6 days would take about {history / days * 1e6:.0f} s"
    )
