"""Speed of the layered VCG (run with ``python -m pytest benches/bench_lqg.py --benchmark-only``).

These are measurements, not timed assertions: each benchmark prints the figures it measures
(wall times, growth with N and T, speed-up over the dense reference, Monte Carlo throughput).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

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


# ---------------------------------------------------------------------------------- at scale
# Each target runs in a fresh interpreter so that its peak resident memory (ru_maxrss of the
# child, which includes the interpreter and numpy, about 60-100 MB) is its own.
SCALE_SETUP = """
import json, resource, sys, time
sys.path.insert(0, {benches!r})
import numpy as np
import pytest
from bench_lqg import agents_for
from stochmech.lqg import LayeredVCG
from stochmech.lqg.verification import ScaledDeviation, exact_expected_utilities, monte_carlo_gain
"""

SCALE_TARGETS = {
    "monte_carlo": (
        "Monte Carlo gain, N=20, T=100, 2000 paths (exact=False); target <= 10 s, 1 GB; "
        "before: 46-55 s, then 6-23 s with threaded BLAS on a busy machine",
        "mech = LayeredVCG(agents_for(20), 100)\n"
        "est = monte_carlo_gain(mech, 0, ScaledDeviation(0, factor=1.5), n_samples=2000, "
        "exact=False)\nresult = est.mean_gain",
    ),
    "monte_carlo_with_exact": (
        "Monte Carlo gain + exact gain, N=20, T=100, 2000 paths (defaults); before: 55 s, 5.6 GB",
        "mech = LayeredVCG(agents_for(20), 100)\n"
        "est = monte_carlo_gain(mech, 0, ScaledDeviation(0, factor=1.5), n_samples=2000)\n"
        "result = est.exact_gain",
    ),
    "exact": (
        "exact_expected_utilities, truthful, N=20, T=100; target <= 5 s; before: 33 s, "
        "then 7-10 s with threaded BLAS on a busy machine",
        "mech = LayeredVCG(agents_for(20), 100)\n"
        "result = float(exact_expected_utilities(mech).sum())",
    ),
    "run_n100": (
        "fresh LayeredVCG + one run with Clarke payments, N=100, T=200 (pivots by duality); "
        "before (Riccati sweeps): 15 s",
        "ag = agents_for(100)\n"
        "xi = ag.sample_layer_inputs(200, np.random.default_rng(1))\n"
        "mech = LayeredVCG(ag, 200)\n"
        "result = mech.run(xi).revenue",
    ),
    "run_n200": (
        "fresh LayeredVCG + one run with Clarke payments, N=200, T=200 (pivots by duality); "
        "target <= 2 GB; before (Riccati sweeps): not finished after 20 min",
        "ag = agents_for(200)\n"
        "xi = ag.sample_layer_inputs(200, np.random.default_rng(1))\n"
        "mech = LayeredVCG(ag, 200)\n"
        "result = mech.run(xi).revenue",
    ),
    "steps_n200": (
        "a fresh LayeredVCG stepped through its horizon (step mode), N=200, T=200 (by duality)",
        "ag = agents_for(200)\n"
        "xi = ag.sample_layer_inputs(200, np.random.default_rng(1))\n"
        "mech = LayeredVCG(ag, 200)\n"
        "result = sum(float(mech.step(x).payments.sum()) for x in xi)",
    ),
    "diagonals_n200": (
        "pivot_diagonals (expected pivots, individual rationality), N=200, T=200 (by duality)",
        "mech = LayeredVCG(agents_for(200), 200)\nresult = float(mech.pivot_diagonals().sum())",
    ),
}


def measure_in_subprocess(key: str) -> dict[str, float]:
    """Wall time, CPU time and peak RSS of one target, in a fresh interpreter."""
    import json
    import os
    import subprocess
    import sys

    benches = os.path.dirname(os.path.abspath(__file__))
    code = SCALE_SETUP.format(benches=benches) + (
        "t0, c0 = time.perf_counter(), time.process_time()\n"
        + SCALE_TARGETS[key][1]
        + "\nwall, cpu = time.perf_counter() - t0, time.process_time() - c0\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(json.dumps({'wall': wall, 'cpu': cpu, 'peak_bytes': peak, 'result': result}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("key", list(SCALE_TARGETS))
def test_at_scale(benchmark, capsys, key: str) -> None:
    figures: dict[str, float] = {}

    def once() -> None:
        figures.update(measure_in_subprocess(key))

    benchmark.pedantic(once, rounds=1, iterations=1)
    with capsys.disabled():
        print(
            f"\n[{SCALE_TARGETS[key][0]}] wall {figures['wall']:.2f} s, CPU {figures['cpu']:.2f} s"
            f", peak RSS {figures['peak_bytes'] / 2**20:.0f} MiB (whole interpreter)"
        )
