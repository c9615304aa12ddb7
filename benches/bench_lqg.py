"""Speed of the layered VCG (run with ``python -m pytest benches/bench_lqg.py --benchmark-only``).

These are measurements, not timed assertions: each benchmark prints the figures it measures
(wall times, growth with N and T, speed-up over the dense reference, Monte Carlo throughput).
"""

from __future__ import annotations

import time

import numpy as np

from stochmech.lqg import LayeredVCG, LQGAgents
from stochmech.lqg.reference import reference_layered_run


def agents_for(n: int, seed: int = 0) -> LQGAgents:
    rng = np.random.default_rng(seed)
    return LQGAgents(
        a=rng.uniform(0.8, 1.0, n),
        b=rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.5, n),
        q=-rng.uniform(0.5, 2.0, n),
        r=-rng.uniform(0.2, 2.0, n),
        sigma=rng.uniform(0.1, 1.0, n),
        zeta=rng.uniform(0.1, 1.0, n),
    )


def full_run(agents: LQGAgents, horizon: int, xi: np.ndarray) -> float:
    """Everything a fresh ISO does: Riccati, Clarke pivot values, layered run with payments."""
    run = LayeredVCG(agents, horizon, pivot="clarke").run(xi)
    return run.revenue


def timed(fn, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def slope(xs: list[int], ys: list[float]) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def test_full_run_n50_t200(benchmark, capsys) -> None:
    agents = agents_for(50)
    xi = agents.sample_layer_inputs(200, np.random.default_rng(1))
    benchmark.pedantic(full_run, args=(agents, 200, xi), rounds=3, iterations=1)
    mech_time = timed(lambda: LayeredVCG(agents, 200), repeat=3)
    mech = LayeredVCG(agents, 200)
    pivot_time = timed(lambda: (setattr(mech, "_pivot_values", None), mech.pivot_values()), 2)
    run_time = timed(lambda: mech.run(xi), repeat=3)
    with capsys.disabled():
        print(
            f"\n[N=50, T=200, Clarke] full run (fresh mechanism): "
            f"min {benchmark.stats['min']:.3f} s, mean {benchmark.stats['mean']:.3f} s; "
            f"parts: Riccati {mech_time:.3f} s, pivot values (50 problems without one agent) "
            f"{pivot_time:.3f} s, run with payments {run_time:.3f} s"
        )


def test_scaling_with_n_and_t(benchmark, capsys) -> None:
    rows = []
    ns, n_times = [10, 20, 35, 50, 70], []
    for n in ns:
        agents = agents_for(n)
        xi = agents.sample_layer_inputs(200, np.random.default_rng(1))
        n_times.append(timed(lambda a=agents, x=xi: full_run(a, 200, x), repeat=2))
        rows.append(f"  N={n:>3} T=200: {n_times[-1]:.3f} s")
    ts, t_times = [50, 100, 200, 400], []
    agents = agents_for(50)
    for horizon in ts:
        xi = agents.sample_layer_inputs(horizon, np.random.default_rng(1))
        t_times.append(timed(lambda h=horizon, x=xi: full_run(agents, h, x), repeat=2))
        rows.append(f"  N= 50 T={horizon:>3}: {t_times[-1]:.3f} s")
    # the run alone (precomputation reused), which is what repeated runs cost
    run_ts, run_times = [50, 100, 200, 400], []
    for horizon in run_ts:
        sub = LayeredVCG(agents, horizon)
        sub.pivot_values()
        xi = agents.sample_layer_inputs(horizon, np.random.default_rng(1))
        run_times.append(timed(lambda m=sub, x=xi: m.run(x), repeat=3))
    benchmark.pedantic(full_run, args=(agents_for(20), 100, agents_for(20).sample_layer_inputs(
        100, np.random.default_rng(0))), rounds=1, iterations=1)  # fmt: skip
    with capsys.disabled():
        print("\n[full run with Clarke payments]\n" + "\n".join(rows))
        print(f"  growth: time ~ N^{slope(ns[1:], n_times[1:]):.2f} at T=200 "
              f"(pivot precomputation O(T N^4), run O(T^2 N^2)); "
              f"time ~ T^{slope(ts, t_times):.2f} at N=50")  # fmt: skip
        pairs = zip(run_ts, run_times, strict=True)
        print("  run only (precomputed gains and pivots), N=50: "
              + ", ".join(f"T={h}: {t * 1e3:.1f} ms" for h, t in pairs)
              + f"; growth ~ T^{slope(run_ts, run_times):.2f}")  # fmt: skip


def test_speedup_over_dense_reference(benchmark, capsys) -> None:
    agents = agents_for(4)
    xi = agents.sample_layer_inputs(12, np.random.default_rng(2))
    mech = LayeredVCG(agents, 12)
    benchmark(mech.run, xi)
    ref = timed(lambda: reference_layered_run(agents, xi), repeat=2)
    with capsys.disabled():
        print(f"\n[N=4, T=12] fast run {benchmark.stats['mean'] * 1e3:.2f} ms, dense-KKT "
              f"reference {ref * 1e3:.1f} ms: {ref / benchmark.stats['mean']:.0f}x")  # fmt: skip


def test_monte_carlo_throughput(benchmark, capsys) -> None:
    agents = agents_for(5)
    mech = LayeredVCG(agents, 24)
    xi = agents.sample_layer_inputs(24, np.random.default_rng(3), size=2000)
    benchmark.pedantic(mech.run_batch, args=(xi,), rounds=3, iterations=1)
    with capsys.disabled():
        print(f"\n[N=5, T=24] batched runs with payments: "
              f"{2000 / benchmark.stats['mean']:,.0f} paths/s")  # fmt: skip
