"""Benchmark: a Figure 2 sweep on a 2-worker Dask LocalCluster against the same sweep serially.

Run with ``python -m pytest benches/bench_dask.py --benchmark-only -s`` (needs
``dask[distributed]``). The sweep: 15 numbers of providers (1..50) x 4 runs of 50,000 days, K = 8
levels (60 tasks). The cluster has 2 worker processes with one thread each and is started
before the clock starts; the serial sweep runs in this process. Prints both times, the speed-up
and checks that the figure is the same. Not a timed test: nothing here asserts a duration.
"""

import os
import time

import pytest

from stochmech.markets.demand_response.figures import DEFAULT_NS, FigureSetup, figure2

distributed = pytest.importorskip("distributed")

SETUP = FigureSetup(levels=8, days=50_000, replications=4, seed=0)

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def test_figure2_local_cluster_vs_serial(benchmark, capsys):
    start, cpu = time.perf_counter(), time.process_time()
    serial = figure2(SETUP, DEFAULT_NS, executor=None)
    serial_s, serial_cpu = time.perf_counter() - start, time.process_time() - cpu

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.submit(sum, [1, 2]).result()  # workers up and reachable
        before = client.run(time.process_time)
        out = {}

        def run():
            out["fig"] = figure2(SETUP, DEFAULT_NS, executor=client)

        benchmark.pedantic(run, rounds=1, iterations=1)
        after = client.run(time.process_time)
    dask_s = benchmark.stats.stats.mean
    worker_cpu = sum(after[w] - before[w] for w in after)
    assert out["fig"].to_dict() == serial.to_dict()
    with capsys.disabled():
        print(
            f"\nFigure 2 sweep ({len(DEFAULT_NS)} points x {SETUP.replications} runs x "
            f"{SETUP.days:,} days, K = {SETUP.levels}): serial {serial_s:.2f} s, 2-worker "
            f"LocalCluster {dask_s:.2f} s, speed-up {serial_s / dask_s:.2f}x; identical figure\n"
            f"CPU: serial {serial_cpu:.2f} s, the two workers {worker_cpu:.2f} s together; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
